package main

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// The SPDX 2.3 document, with the fields we fill in. The JSON names are those of the SPDX 2.3 JSON schema.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
	Comment           string             `json:"comment,omitempty"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	Supplier              string            `json:"supplier,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	LicenseConcluded      string            `json:"licenseConcluded"`
	LicenseDeclared       string            `json:"licenseDeclared"`
	CopyrightText         string            `json:"copyrightText"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// noAssertion is SPDX's "this document says nothing about it".
const noAssertion = "NOASSERTION"

// sbomInput is what an SBOM describes: one binary of one platform.
type sbomInput struct {
	binary   []byte
	platform string // e.g. linux/amd64
	version  string // berth's version, which the build info does not carry (the main module is "(devel)")
	source   string // the project's address, e.g. https://github.com/berthdev/berth
	created  time.Time
}

// buildSBOM describes the binary from the build info the go command embedded in it: the main module, the Go
// toolchain (as the package "stdlib", the name vulnerability scanners look for), and every module linked in, with
// its version, its go.sum checksum and its package URL. It reads no source and no network: what the build info
// does not say (licenses, suppliers) is NOASSERTION.
func buildSBOM(in sbomInput) (*spdxDocument, error) {
	info, err := buildinfo.Read(bytes.NewReader(in.binary))
	if err != nil {
		return nil, fmt.Errorf("reading the build info of the %s binary: %w", in.platform, err)
	}
	binarySum := sha256.Sum256(in.binary)
	name := "berth-" + in.version + "-" + strings.ReplaceAll(in.platform, "/", "-")

	berth := spdxPackage{
		SPDXID:                "SPDXRef-Package-berth",
		Name:                  info.Main.Path,
		VersionInfo:           in.version,
		DownloadLocation:      in.source,
		Checksums:             []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: hex.EncodeToString(binarySum[:])}},
		ExternalRefs:          []spdxExternalRef{purlRef(info.Main.Path, in.version)},
		PrimaryPackagePurpose: "APPLICATION",
		Comment: fmt.Sprintf("The %s binary /berth of the image, built with %s; its checksum is the binary's.",
			in.platform, strings.Join(buildFlags(info), " ")),
	}
	stdlib := spdxPackage{
		SPDXID:           "SPDXRef-Package-stdlib",
		Name:             "stdlib",
		VersionInfo:      info.GoVersion,
		DownloadLocation: noAssertion,
		ExternalRefs:     []spdxExternalRef{purlRef("stdlib", info.GoVersion)},
		Comment:          "The Go toolchain and standard library that built the binary.",
	}
	packages := []spdxPackage{berth, stdlib}
	relationships := []spdxRelationship{
		{SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: berth.SPDXID},
		{SPDXElementID: berth.SPDXID, RelationshipType: "DEPENDS_ON", RelatedSPDXElement: stdlib.SPDXID},
	}
	for i, dep := range info.Deps {
		module := dep
		if dep.Replace != nil {
			module = dep.Replace
		}
		p := spdxPackage{
			// Numbered, since two paths can map to the same identifier (a/b and a-b).
			SPDXID:                fmt.Sprintf("SPDXRef-Package-go-%d-%s", i+1, spdxIDPart(module.Path)),
			Name:                  module.Path,
			VersionInfo:           module.Version,
			DownloadLocation:      noAssertion,
			ExternalRefs:          []spdxExternalRef{purlRef(module.Path, module.Version)},
			PrimaryPackagePurpose: "LIBRARY",
		}
		if dep.Replace != nil {
			p.Comment = fmt.Sprintf("Replaces %s %s (a replace directive of go.mod).", dep.Path, dep.Version)
		}
		sum, err := moduleChecksum(module.Sum)
		if err != nil {
			return nil, fmt.Errorf("module %s %s: %w", module.Path, module.Version, err)
		}
		if sum != "" {
			p.Checksums = []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: sum}}
		}
		packages = append(packages, p)
		relationships = append(relationships,
			spdxRelationship{SPDXElementID: berth.SPDXID, RelationshipType: "DEPENDS_ON", RelatedSPDXElement: p.SPDXID})
	}
	for i := range packages {
		packages[i].LicenseConcluded, packages[i].LicenseDeclared = noAssertion, noAssertion
		packages[i].CopyrightText = noAssertion
	}

	return &spdxDocument{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        name,
		// Unique for each binary, and the same for the same binary: the document is part of a reproducible build.
		DocumentNamespace: in.source + "/spdx/" + name + "-" + hex.EncodeToString(binarySum[:8]),
		CreationInfo: spdxCreationInfo{
			Created:  in.created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: berth-hack-tools-image", "Organization: berth"},
		},
		Packages:      packages,
		Relationships: relationships,
		Comment: "Made from the Go build info embedded in the binary. A module's SHA256 checksum is its go.sum " +
			"hash (h1:, the SHA-256 of the module's file list) in hex.",
	}, nil
}

// encodeSBOM is the document as written to the layout and beside it.
func encodeSBOM(doc *spdxDocument) ([]byte, error) {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// moduleChecksum turns a go.sum hash "h1:BASE64" into hex; a module without one (a directory replacement) has "".
func moduleChecksum(sum string) (string, error) {
	if sum == "" {
		return "", nil
	}
	encoded, ok := strings.CutPrefix(sum, "h1:")
	if !ok {
		return "", fmt.Errorf("checksum %q is not an h1: hash", sum)
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(raw) != sha256.Size {
		return "", fmt.Errorf("checksum %q is not a base64 SHA-256", sum)
	}
	return hex.EncodeToString(raw), nil
}

// purlRef is the package URL of a Go module (or of "stdlib"): pkg:golang/PATH@VERSION. The purl spec asks for
// lowercase names, but Go module paths are case-sensitive (github.com/BurntSushi/toml is not
// github.com/burntsushi/toml): the path is kept as it is, as Go's own tools write it.
func purlRef(path, version string) spdxExternalRef {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		segments[i] = purlEscape(s)
	}
	locator := "pkg:golang/" + strings.Join(segments, "/")
	if version != "" {
		locator += "@" + purlEscape(version)
	}
	return spdxExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: locator}
}

// purlEscape percent-encodes all but the characters that a purl component may carry as they are.
func purlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// spdxIDPart makes s fit in an SPDX identifier, which allows letters, digits, "." and "-".
func spdxIDPart(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// buildFlags are the build settings that say how the binary was built, as "key=value".
func buildFlags(info *debug.BuildInfo) []string {
	var flags []string
	for _, s := range info.Settings {
		switch s.Key {
		case "-trimpath", "-ldflags", "CGO_ENABLED", "GOOS", "GOARCH", "GOAMD64", "GOARM64":
			flags = append(flags, s.Key+"="+s.Value)
		}
	}
	return flags
}
