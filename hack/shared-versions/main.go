// Command shared-versions keeps berth's module and the modules of its tools (hack/tools/...) at the same version of
// every module that two or more of them use. The Go build cache shares a compiled package between builds only
// when the package and everything it imports are the same: with client-go at one version everywhere, go vet, the
// tests, helm and promtool compile it once, which on a machine with empty caches is minutes of `make test`.
//
// Usage: go run ./hack/shared-versions [-w]
//
// It lists each module that is behind the highest version another of them requires, and fails when there is one.
// With -w it raises those (go get, then go mod tidy) until none is behind.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"golang.org/x/mod/semver"
)

// builds are the modules whose builds share the Go build cache in `make test`, and the packages `make test` builds
// in each (the tools' modules: their tools, and their own tests). hack/kube is left out: the control plane is built
// at the versions Kubernetes was released with.
var builds = []struct{ dir, patterns string }{
	{".", "./..."},
	{"hack/tools", "tool"},
	{"hack/tools/helm", "tool"},
	{"hack/tools/image", "tool ./..."},
	{"hack/tools/promtool", "tool ./..."},
}

const maxRounds = 5

func main() {
	write := flag.Bool("w", false, "raise the modules that are behind (go get, go mod tidy)")
	flag.Parse()
	if err := run(*write, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shared-versions:", err)
		os.Exit(1)
	}
}

func run(write bool, out io.Writer) error {
	for round := 1; ; round++ {
		lists := make(map[string]map[string]string, len(builds))
		for _, b := range builds {
			versions, err := compiledModules(b.dir, strings.Fields(b.patterns))
			if err != nil {
				return err
			}
			lists[b.dir] = versions
		}
		behind := behindShared(lists)
		if len(behind) == 0 {
			fmt.Fprintln(out, "Every module compiled in more than one of the builds is at one version.")
			return nil
		}
		for _, b := range builds {
			dir := b.dir
			for _, target := range behind[dir] {
				fmt.Fprintf(out, "%s: %s is at %s, another module requires %s\n", dir, target.path,
					lists[dir][target.path], target.version)
			}
		}
		if !write {
			return errors.New("run `go run ./hack/shared-versions -w` to raise them")
		}
		if round == maxRounds {
			return fmt.Errorf("still behind after %d rounds of go get", maxRounds)
		}
		for _, b := range builds {
			dir := b.dir
			if len(behind[dir]) == 0 {
				continue
			}
			args := []string{"get"}
			for _, target := range behind[dir] {
				args = append(args, target.path+"@"+target.version)
			}
			if err := goCommand(dir, args...); err != nil {
				return err
			}
			if err := goCommand(dir, "mod", "tidy"); err != nil {
				return err
			}
		}
	}
}

type moduleVersion struct{ path, version string }

// behindShared returns, for each module directory, the modules of its build list that another directory's build
// list has at a higher version.
func behindShared(lists map[string]map[string]string) map[string][]moduleVersion {
	highest := map[string]string{}
	for _, versions := range lists {
		for path, version := range versions {
			if semver.Compare(version, highest[path]) > 0 {
				highest[path] = version
			}
		}
	}
	behind := map[string][]moduleVersion{}
	for dir, versions := range lists {
		for path, version := range versions {
			if semver.Compare(version, highest[path]) < 0 {
				behind[dir] = append(behind[dir], moduleVersion{path, highest[path]})
			}
		}
		sort.Slice(behind[dir], func(i, j int) bool { return behind[dir][i].path < behind[dir][j].path })
	}
	return behind
}

// compiledModules returns the version of each module whose packages are compiled when the packages of patterns
// (and their tests) are built in dir, but for dir's own module and replaced modules.
func compiledModules(dir string, patterns []string) (map[string]string, error) {
	// The build tag of promtool (see the Makefile's PROMTOOL); no other module has files behind it.
	args := append([]string{"list", "-deps", "-test", "-tags=remove_all_sd",
		"-f", "{{with .Module}}{{if not .Main}}{{if not .Replace}}{{.Path}} {{.Version}}{{end}}{{end}}{{end}}"},
		patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list in %s: %w: %s", dir, err, stderr.String())
	}
	versions := map[string]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		path, version, ok := strings.Cut(line, " ")
		if ok && semver.IsValid(version) {
			versions[path] = version
		}
	}
	return versions, nil
}

func goCommand(dir string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Println("in", dir+":", "go", args)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v in %s: %w", args, dir, err)
	}
	return nil
}
