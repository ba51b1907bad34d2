package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The media types of an SBOM attached to an image (OCI 1.1 referrers): an artifact manifest of this
// artifactType, with the empty config and the SPDX document as its one layer.
const (
	sbomArtifactType     = "application/spdx+json"
	emptyConfigMediaType = "application/vnd.oci.empty.v1+json"
)

// emptyConfig is the config blob of an artifact that has none.
var emptyConfig = []byte("{}")

// metadata is what the image says about itself, in its config's labels and the index's annotations.
type metadata struct {
	version  string // git describe
	revision string // the commit
	source   string // the project's address
	created  time.Time
}

func (m metadata) annotations() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    "berth",
		"org.opencontainers.image.version":  m.version,
		"org.opencontainers.image.revision": m.revision,
		"org.opencontainers.image.source":   m.source,
		"org.opencontainers.image.created":  m.created.UTC().Format(time.RFC3339),
	}
}

// platformBinary is berth built for one platform.
type platformBinary struct {
	platform v1.Platform
	binary   []byte
}

// platformResult is what was written for one platform.
type platformResult struct {
	platform     v1.Platform
	manifest     v1.Descriptor // the image's manifest
	compressed   int64         // manifest, config and layers as stored: what a pull transfers
	uncompressed int64         // the layers unpacked
	sbom         []byte
	sbomManifest v1.Descriptor // the SBOM's artifact manifest, whose subject is manifest
	sbomBlob     v1.Descriptor
}

// result is what build wrote.
type result struct {
	index     v1.Descriptor
	platforms []platformResult
	caRoots   int
}

// build writes the OCI image layout dir: an image index with one image per binary, each with the base layer and
// the binary's layer, and an SBOM artifact for each image, referring to it. Every timestamp is meta.created, so
// the same binaries and metadata give the same digests.
func build(dir string, binaries []platformBinary, meta metadata) (*result, error) {
	caBundle, caRoots, _ := caBundlePEM()
	base, err := newLayer(baseFiles(caBundle), meta.created)
	if err != nil {
		return nil, fmt.Errorf("the base layer: %w", err)
	}
	baseHistory := v1.History{
		Created: v1.Time{Time: meta.created},
		CreatedBy: fmt.Sprintf("berth hack/tools/image: /etc/passwd and /etc/group with %s (%d), /%s with %d CA "+
			"certificates of %s", nonrootName, nonrootID, caFilePath, caRoots, caBundleSource()),
	}

	res := &result{caRoots: caRoots}
	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range binaries {
		img, err := newImage(b, base, baseHistory, meta)
		if err != nil {
			return nil, fmt.Errorf("the %s image: %w", b.platform, err)
		}
		platform := b.platform
		index = mutate.AppendManifests(index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})

		pr := platformResult{platform: b.platform}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return nil, err
		}
		pr.manifest = v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}
		if pr.compressed, pr.uncompressed, err = imageSizes(img); err != nil {
			return nil, err
		}
		doc, err := buildSBOM(sbomInput{binary: b.binary, platform: b.platform.String(), version: meta.version,
			source: meta.source, created: meta.created})
		if err != nil {
			return nil, err
		}
		if pr.sbom, err = encodeSBOM(doc); err != nil {
			return nil, err
		}
		res.platforms = append(res.platforms, pr)
	}
	index = mutate.Annotations(index, meta.annotations()).(v1.ImageIndex)

	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: remove it first", dir)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendIndex(index, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": meta.version,
	})); err != nil {
		return nil, fmt.Errorf("writing the image index: %w", err)
	}
	indexDesc, err := partial.Descriptor(index)
	if err != nil {
		return nil, err
	}
	res.index = v1.Descriptor{MediaType: indexDesc.MediaType, Size: indexDesc.Size, Digest: indexDesc.Digest}

	// The SBOMs go into the layout's index.json beside the image index: that is where a reader of the layout
	// looks for the manifests whose subject is an image (OCI 1.1 has no other place for referrers in a layout).
	for i := range res.platforms {
		pr := &res.platforms[i]
		if pr.sbomManifest, pr.sbomBlob, err = appendSBOM(p, pr.manifest, pr.sbom, pr.platform, meta); err != nil {
			return nil, fmt.Errorf("the %s SBOM: %w", pr.platform, err)
		}
	}
	return res, nil
}

// newImage is one platform's image: the base layer, then the binary at /berth, run as nonroot.
func newImage(b platformBinary, base v1.Layer, baseHistory v1.History, meta metadata) (v1.Image, error) {
	binaryLayer, err := newLayer([]file{{path: binaryPath, mode: 0o755, content: b.binary}}, meta.created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: b.platform.Architecture,
		OS:           b.platform.OS,
		Created:      v1.Time{Time: meta.created},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", nonrootID, nonrootID),
			Entrypoint: []string{"/" + binaryPath},
			WorkingDir: "/",
			Labels:     meta.annotations(),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, History: baseHistory},
		mutate.Addendum{Layer: binaryLayer, History: v1.History{
			Created:   v1.Time{Time: meta.created},
			CreatedBy: "berth hack/tools/image: /" + binaryPath + " " + meta.version + " for " + b.platform.String(),
		}},
	)
}

// imageSizes are the bytes of an image as a registry stores it, and its layers unpacked.
func imageSizes(img v1.Image) (compressed, uncompressed int64, err error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return 0, 0, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return 0, 0, err
	}
	compressed = int64(len(manifest) + len(config))
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			return 0, 0, err
		}
		compressed += size
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		_ = rc.Close()
		if err != nil {
			return 0, 0, err
		}
		uncompressed += n
	}
	return compressed, uncompressed, nil
}

// appendSBOM writes an SBOM to the layout as an OCI 1.1 artifact whose subject is the image's manifest, and
// lists it in index.json.
func appendSBOM(p layout.Path, subject v1.Descriptor, sbom []byte, platform v1.Platform, meta metadata) (manifest, blob v1.Descriptor, err error) {
	blob = v1.Descriptor{
		MediaType: sbomArtifactType,
		Size:      int64(len(sbom)),
		Digest:    digestOf(sbom),
		Annotations: map[string]string{
			"org.opencontainers.image.title": sbomFileName(platform),
		},
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  sbomArtifactType,
		Config:        v1.Descriptor{MediaType: emptyConfigMediaType, Size: int64(len(emptyConfig)), Digest: digestOf(emptyConfig), Data: emptyConfig},
		Layers:        []v1.Descriptor{blob},
		Subject:       &subject,
		Annotations:   map[string]string{"org.opencontainers.image.created": meta.created.UTC().Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return manifest, blob, err
	}
	for _, content := range [][]byte{emptyConfig, sbom, raw} {
		if err := p.WriteBlob(digestOf(content), io.NopCloser(bytes.NewReader(content))); err != nil {
			return manifest, blob, err
		}
	}
	manifest = v1.Descriptor{
		MediaType:    types.OCIManifestSchema1,
		Size:         int64(len(raw)),
		Digest:       digestOf(raw),
		ArtifactType: sbomArtifactType,
	}
	return manifest, blob, p.AppendDescriptor(manifest)
}

// writeSBOMFiles writes each platform's SBOM to dir, as sbomFileName names it.
func writeSBOMFiles(dir string, platforms []platformResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, pr := range platforms {
		if err := os.WriteFile(filepath.Join(dir, sbomFileName(pr.platform)), pr.sbom, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sbomFileName is e.g. berth-linux-amd64.spdx.json.
func sbomFileName(platform v1.Platform) string {
	return "berth-" + strings.ReplaceAll(platform.String(), "/", "-") + ".spdx.json"
}

func digestOf(content []byte) v1.Hash {
	sum := sha256.Sum256(content)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
