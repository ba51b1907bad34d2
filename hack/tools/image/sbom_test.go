package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestBuildSBOM(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binary, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := debug.ReadBuildInfo()
	if !ok || len(info.Deps) == 0 {
		t.Fatal("the test binary has no build info with modules")
	}
	created := time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC)
	doc, err := buildSBOM(sbomInput{binary: binary, platform: "linux/arm64", version: "v0.1.0",
		source: "https://github.com/berthdev/berth", created: created})
	if err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" ||
		doc.Name != "berth-v0.1.0-linux-arm64" || doc.CreationInfo.Created != "2026-11-20T10:30:00Z" ||
		!strings.HasPrefix(doc.DocumentNamespace, "https://github.com/berthdev/berth/spdx/berth-v0.1.0-linux-arm64-") {
		t.Errorf("document fields: %+v", doc)
	}

	byName := map[string]spdxPackage{}
	ids := map[string]bool{}
	for _, p := range doc.Packages {
		byName[p.Name] = p
		if ids[p.SPDXID] {
			t.Errorf("SPDXID %s is used twice", p.SPDXID)
		}
		ids[p.SPDXID] = true
		if strings.Trim(strings.TrimPrefix(p.SPDXID, "SPDXRef-"), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
			t.Errorf("SPDXID %q has characters SPDX does not allow", p.SPDXID)
		}
	}
	berth := byName[info.Main.Path]
	if berth.VersionInfo != "v0.1.0" || berth.PrimaryPackagePurpose != "APPLICATION" || len(berth.ExternalRefs) != 1 ||
		berth.ExternalRefs[0].ReferenceLocator != "pkg:golang/"+info.Main.Path+"@v0.1.0" {
		t.Errorf("the main package: %+v", berth)
	}
	if stdlib := byName["stdlib"]; stdlib.VersionInfo != runtime.Version() {
		t.Errorf("stdlib: %+v", stdlib)
	}
	for _, dep := range info.Deps {
		if dep.Replace != nil {
			dep = dep.Replace
		}
		p, ok := byName[dep.Path]
		if !ok {
			t.Errorf("module %s is missing", dep.Path)
			continue
		}
		if p.VersionInfo != dep.Version || len(p.Checksums) != 1 || p.Checksums[0].Algorithm != "SHA256" ||
			len(p.Checksums[0].ChecksumValue) != 64 {
			t.Errorf("module %s: %+v", dep.Path, p)
			continue
		}
		if _, err := hex.DecodeString(p.Checksums[0].ChecksumValue); err != nil {
			t.Errorf("module %s: checksum %q", dep.Path, p.Checksums[0].ChecksumValue)
		}
		if !strings.HasPrefix(p.ExternalRefs[0].ReferenceLocator, "pkg:golang/") {
			t.Errorf("module %s: purl %q", dep.Path, p.ExternalRefs[0].ReferenceLocator)
		}
	}
	if len(doc.Packages) != 2+len(info.Deps) {
		t.Errorf("%d packages, want the main module, stdlib and %d modules", len(doc.Packages), len(info.Deps))
	}
	// Everything is described by the document, or a dependency of what is.
	if len(doc.Relationships) != len(doc.Packages) {
		t.Errorf("%d relationships for %d packages", len(doc.Relationships), len(doc.Packages))
	}
	for _, r := range doc.Relationships {
		if !ids[r.RelatedSPDXElement] || (r.SPDXElementID != "SPDXRef-DOCUMENT" && !ids[r.SPDXElementID]) {
			t.Errorf("relationship %+v names an unknown element", r)
		}
	}

	encoded, err := encodeSBOM(doc)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(encoded, &fields); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo", "packages", "relationships"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("the JSON lacks %q", key)
		}
	}
}

func TestPurl(t *testing.T) {
	for path, want := range map[[2]string]string{
		{"github.com/BurntSushi/toml", "v1.4.1-0.20240526193622-a339e1f7089c"}: "pkg:golang/github.com/BurntSushi/toml@v1.4.1-0.20240526193622-a339e1f7089c",
		{"github.com/docker/cli", "v29.7.2+incompatible"}:                      "pkg:golang/github.com/docker/cli@v29.7.2%2Bincompatible",
		{"stdlib", "go1.26.8"}:  "pkg:golang/stdlib@go1.26.8",
		{"example.com/a b", ""}: "pkg:golang/example.com/a%20b",
	} {
		if got := purlRef(path[0], path[1]).ReferenceLocator; got != want {
			t.Errorf("purl of %s %s: %s, want %s", path[0], path[1], got, want)
		}
	}
}

func TestModuleChecksum(t *testing.T) {
	got, err := moduleChecksum("h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	if err != nil || got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("got %q, %v", got, err)
	}
	if got, err := moduleChecksum(""); got != "" || err != nil {
		t.Errorf("no checksum: got %q, %v", got, err)
	}
	for _, bad := range []string{"h2:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "h1:notbase64!", "h1:AAAA"} {
		if _, err := moduleChecksum(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
