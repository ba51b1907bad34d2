package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var testMeta = metadata{
	version:  "v0.1.0-3-gabc1234",
	revision: "abc1234abc1234abc1234abc1234abc1234abc12",
	source:   "https://github.com/berthdev/berth",
	created:  time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC),
}

// testBinaries stand for berth: this test binary, which has build info as berth does, once per platform, with a
// byte appended for arm64 so that the two images differ.
func testBinaries(t *testing.T) []platformBinary {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	arm := append(bytes.Clone(content), 0)
	return []platformBinary{
		{platform: v1.Platform{OS: "linux", Architecture: "amd64"}, binary: content},
		{platform: v1.Platform{OS: "linux", Architecture: "arm64"}, binary: arm},
	}
}

var (
	built      sync.Once
	builtDir   string
	builtRes   *result
	builtInput []platformBinary
	builtErr   error
)

// buildLayout builds the layout of testBinaries once for the tests that read it.
func buildLayout(t *testing.T) (string, *result, []platformBinary) {
	t.Helper()
	built.Do(func() {
		builtInput = testBinaries(t)
		builtDir, builtErr = os.MkdirTemp("", "berth-image-test-")
		if builtErr == nil {
			builtRes, builtErr = build(builtDir, builtInput, testMeta)
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtDir, builtRes, builtInput
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// Two builds of the same binaries at the same time give the same bytes, file for file.
func TestBuildIsReproducible(t *testing.T) {
	first, res, input := buildLayout(t)
	second := t.TempDir()
	again, err := build(second, input, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if res.index.Digest != again.index.Digest {
		t.Errorf("index digests differ: %s and %s", res.index.Digest, again.index.Digest)
	}
	if a, b := treeOf(t, first), treeOf(t, second); !equalTrees(a, b) {
		t.Errorf("the layouts differ:\n%v\n%v", keys(a), keys(b))
	}

	// A later commit time changes every digest: the time is in the layers and the config.
	later := testMeta
	later.created = later.created.Add(time.Second)
	other, err := build(t.TempDir(), input, later)
	if err != nil {
		t.Fatal(err)
	}
	if other.index.Digest == res.index.Digest {
		t.Errorf("another commit time gave the same index %s", res.index.Digest)
	}
}

func TestImageContents(t *testing.T) {
	dir, res, input := buildLayout(t)
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	// index.json: the image index, then an SBOM per platform.
	if len(top.Manifests) != 1+len(input) {
		t.Fatalf("index.json lists %d manifests, want %d", len(top.Manifests), 1+len(input))
	}
	if got := top.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != testMeta.version {
		t.Errorf("the image index is named %q in index.json, want %q", got, testMeta.version)
	}
	images, err := index.ImageIndex(top.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(images); err != nil {
		t.Fatalf("the image index is not valid: %v", err)
	}
	manifest, err := images.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if manifest.Annotations["org.opencontainers.image.revision"] != testMeta.revision {
		t.Errorf("index annotations: %v", manifest.Annotations)
	}

	for i, want := range input {
		desc := manifest.Manifests[i]
		if desc.Platform == nil || !desc.Platform.Equals(want.platform) || desc.Digest != res.platforms[i].manifest.Digest {
			t.Fatalf("manifest %d of the index: %+v, want %s %s", i, desc, want.platform, res.platforms[i].manifest.Digest)
		}
		img, err := images.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		config, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if config.OS != want.platform.OS || config.Architecture != want.platform.Architecture {
			t.Errorf("%s: config says %s/%s", want.platform, config.OS, config.Architecture)
		}
		if config.Config.User != "65532:65532" || strings.Join(config.Config.Entrypoint, " ") != "/berth" {
			t.Errorf("%s: user %q, entrypoint %q", want.platform, config.Config.User, config.Config.Entrypoint)
		}
		if !config.Created.Time.Equal(testMeta.created) {
			t.Errorf("%s: created %s, want %s", want.platform, config.Created.Time, testMeta.created)
		}
		for key, value := range map[string]string{
			"org.opencontainers.image.version":  testMeta.version,
			"org.opencontainers.image.revision": testMeta.revision,
			"org.opencontainers.image.source":   testMeta.source,
			"org.opencontainers.image.created":  "2026-11-20T10:30:00Z",
		} {
			if config.Config.Labels[key] != value {
				t.Errorf("%s: label %s is %q, want %q", want.platform, key, config.Config.Labels[key], value)
			}
		}

		files := filesOf(t, img)
		if !bytes.Equal(files["berth"].content, want.binary) {
			t.Errorf("%s: /berth is not the binary", want.platform)
		}
		if files["berth"].mode != 0o755 {
			t.Errorf("%s: /berth has mode %o", want.platform, files["berth"].mode)
		}
		for path, f := range files {
			if !f.mtime.Equal(testMeta.created) {
				t.Errorf("%s: /%s has time %s, want the commit's", want.platform, path, f.mtime)
			}
		}
		if got := string(files["etc/passwd"].content); !strings.Contains(got, "\nnonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd lacks nonroot 65532:\n%s", want.platform, got)
		}
		if got := string(files["etc/group"].content); !strings.Contains(got, "\nnonroot:x:65532:") {
			t.Errorf("%s: /etc/group lacks nonroot 65532:\n%s", want.platform, got)
		}
		if home := files["home/nonroot"]; !home.dir || home.uid != 65532 {
			t.Errorf("%s: /home/nonroot: %+v", want.platform, home)
		}
		roots := parseCertificates(t, files[caFilePath].content)
		if roots < 100 || roots != res.caRoots {
			t.Errorf("%s: %d CA certificates in /%s, want the %d of the bundle (over 100)", want.platform, roots,
				caFilePath, res.caRoots)
		}
	}
}

// Pushed as crane push --index pushes the layout, each SBOM is a referrer of its platform's image, as a registry
// with the OCI 1.1 referrers API lists it.
func TestSBOMsAreReferrersOfTheirImages(t *testing.T) {
	dir, res, _ := buildLayout(t)
	server := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	defer server.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(server.URL, "http://") + "/berth")
	if err != nil {
		t.Fatal(err)
	}
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(repo.Tag("layout"), index); err != nil {
		t.Fatal(err)
	}

	for _, pr := range res.platforms {
		referrers, err := remote.Referrers(repo.Digest(pr.manifest.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		refs, err := referrers.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(refs.Manifests) != 1 || refs.Manifests[0].Digest != pr.sbomManifest.Digest {
			t.Fatalf("%s: the referrers of %s are %+v, want the SBOM %s", pr.platform, pr.manifest.Digest,
				refs.Manifests, pr.sbomManifest.Digest)
		}
		// The registry's referrers list gives the config's media type as artifactType, not the manifest's
		// artifactType as the distribution spec says (go-containerregistry v0.22.1's pkg/registry): read the
		// manifest itself.
		got, err := remote.Get(repo.Digest(pr.sbomManifest.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		var artifact v1.Manifest
		if err := json.Unmarshal(got.Manifest, &artifact); err != nil {
			t.Fatal(err)
		}
		if artifact.ArtifactType != sbomArtifactType || artifact.Subject == nil ||
			artifact.Subject.Digest != pr.manifest.Digest || len(artifact.Layers) != 1 ||
			artifact.Layers[0].Digest != pr.sbomBlob.Digest {
			t.Errorf("%s: the SBOM's manifest: %s", pr.platform, got.Manifest)
		}
		layer, err := remote.Layer(repo.Digest(pr.sbomBlob.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		sbom, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sbom, pr.sbom) {
			t.Errorf("%s: the registry's SBOM differs from the one written", pr.platform)
		}
		var doc spdxDocument
		if err := json.Unmarshal(sbom, &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" {
			t.Errorf("%s: the SBOM is not an SPDX 2.3 document (%v)", pr.platform, err)
		}
	}
}

type tarFile struct {
	dir     bool
	mode    int64
	uid     int
	mtime   time.Time
	content []byte
}

// filesOf reads the image's layers, the later over the earlier.
func filesOf(t *testing.T, img v1.Image) map[string]tarFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]tarFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			content, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(h.Name, "/")] = tarFile{dir: h.Typeflag == tar.TypeDir, mode: h.Mode, uid: h.Uid,
				mtime: h.ModTime, content: content}
		}
		_ = rc.Close()
	}
	return files
}

func parseCertificates(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Errorf("certificate %d: %v", n, err)
		}
		n++
	}
	if len(bytes.TrimSpace(data)) > 0 {
		t.Errorf("the CA file ends with something that is not PEM: %q", data)
	}
	return n
}

// treeOf maps each file under dir to its content.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := os.ReadFile(path)
		tree[strings.TrimPrefix(path, dir)] = string(content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
