// Command unwrap-descriptions rewrites the descriptions of a CRD that controller-gen wrote, so that each
// paragraph is one line: controller-gen keeps the line breaks of the Go comments it reads them from, and
// `kubectl explain` then breaks its sentences where the comment's lines happened to end. Lists and indented
// lines keep their own lines, and blank lines still separate paragraphs.
//
// Usage: go run ./hack/unwrap-descriptions FILE...   (each FILE is rewritten in place)
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: unwrap-descriptions FILE...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := rewrite(path); err != nil {
			fmt.Fprintf(os.Stderr, "unwrap-descriptions: %v\n", err)
			os.Exit(1)
		}
	}
}

func rewrite(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(unwrapYAML(string(data))), 0o644)
}

// unwrapYAML rewrites every `description: |-` block scalar of a YAML document, as controller-gen writes them.
func unwrapYAML(doc string) string {
	lines := strings.Split(doc, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out = append(out, line)
		if strings.TrimSpace(line) != "description: |-" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		// The block is every following line indented deeper, and the blank lines among them.
		var block []string
		j := i + 1
		for ; j < len(lines); j++ {
			l := lines[j]
			if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= indent {
				break
			}
			block = append(block, l)
		}
		// Blank lines after the block belong to what follows it.
		for len(block) > 0 && strings.TrimSpace(block[len(block)-1]) == "" {
			block = block[:len(block)-1]
			j--
		}
		if len(block) == 0 {
			continue
		}
		prefix := block[0][:len(block[0])-len(strings.TrimLeft(block[0], " "))]
		text := make([]string, len(block))
		for k, l := range block {
			text[k] = strings.TrimPrefix(l, prefix)
		}
		for _, l := range unwrap(text) {
			if l == "" {
				out = append(out, "")
			} else {
				out = append(out, prefix+l)
			}
		}
		i = j - 1
	}
	return strings.Join(out, "\n")
}

// unwrap joins each line of text to the one before it, but for blank lines, the lines that follow them, and
// lines that start a list item or are indented.
func unwrap(text []string) []string {
	var out []string
	startsLine := true
	for _, l := range text {
		switch {
		case strings.TrimSpace(l) == "":
			out = append(out, "")
			startsLine = true
		case startsLine || keepsItsLine(l):
			out = append(out, l)
			startsLine = false
		default:
			out[len(out)-1] += " " + l
		}
	}
	return out
}

// keepsItsLine tells whether a line of a comment starts a list item or is indented: its line break is meant.
func keepsItsLine(l string) bool {
	if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
		return true
	}
	for _, bullet := range []string{"- ", "* ", "+ "} {
		if strings.HasPrefix(l, bullet) {
			return true
		}
	}
	// "1. " or "2) "
	digits := len(l) - len(strings.TrimLeft(l, "0123456789"))
	return digits > 0 && len(l) > digits+1 && (l[digits] == '.' || l[digits] == ')') && l[digits+1] == ' '
}
