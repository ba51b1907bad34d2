package framework

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ImageDir is where `make image` (hack/image.sh) writes berth's image: the OCI layout oci/, the SBOMs sbom/, and
// from-image/berth, the binary taken out of the image of this machine's platform.
func ImageDir() string { return filepath.Join(RepoRoot(), ".cache", "image") }

// ImageBerth is the berth binary that the end-to-end suites run: the one `make image` took out of the image's
// layer, or $BERTH_BINARY when set. It fails when that binary is missing, or when the image was built from
// another commit than the checkout's (it cannot tell changes not yet committed: `make e2e` builds the image
// first, every time).
func ImageBerth(ctx context.Context) (string, error) {
	if bin := os.Getenv("BERTH_BINARY"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("BERTH_BINARY: %w", err)
		}
		return bin, nil
	}
	bin := filepath.Join(ImageDir(), "from-image", "berth")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("berth's image has not been built: run `make image` (make e2e does), which takes "+
			"berth out of it to %s: %w", bin, err)
	}
	img, err := ReadImage("linux/" + runtime.GOARCH)
	if err != nil {
		return "", err
	}
	head, err := exec.CommandContext(ctx, "git", "-C", RepoRoot(), "rev-parse", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse HEAD: %w", err)
	}
	if revision := img.Labels[RevisionLabel]; revision != strings.TrimSpace(string(head)) {
		return "", fmt.Errorf("the image in %s is of commit %s, the checkout is at %s: run `make image`",
			ImageDir(), revision, strings.TrimSpace(string(head)))
	}
	return bin, nil
}

// RevisionLabel is the image's label that holds the commit it was built from.
const RevisionLabel = "org.opencontainers.image.revision"

// Image is one platform's image of the layout that `make image` wrote.
type Image struct {
	// Manifest is the image's manifest digest.
	Manifest string
	// Labels are the labels of its config (org.opencontainers.image.version, .revision, ...).
	Labels map[string]string
	// User and Entrypoint are those of its config.
	User       string
	Entrypoint []string
	// BinarySHA256 is the SHA-256, in hex, of /berth in its layers.
	BinarySHA256 string
}

// ociDescriptor, ociIndex, ociManifest and ociConfig are the parts of the OCI image spec's JSON that ReadImage
// reads.
type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform,omitempty"`
}

type ociIndex struct {
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	Config ociDescriptor   `json:"config"`
	Layers []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	Config struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

const ociIndexMediaType = "application/vnd.oci.image.index.v1+json"

// ReadImage reads the image of platform (linux/amd64) from the OCI layout of ImageDir: index.json, the image index
// it lists, the image of that platform, its config and its layers.
func ReadImage(platform string) (*Image, error) {
	dir := filepath.Join(ImageDir(), "oci")
	var top ociIndex
	if err := readJSON(filepath.Join(dir, "index.json"), &top); err != nil {
		return nil, fmt.Errorf("reading the image layout (make image writes it): %w", err)
	}
	var index ociIndex
	found := false
	for _, d := range top.Manifests {
		if d.MediaType == ociIndexMediaType {
			if err := readJSON(blobPath(dir, d.Digest), &index); err != nil {
				return nil, err
			}
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%s lists no image index", filepath.Join(dir, "index.json"))
	}
	for _, d := range index.Manifests {
		if d.Platform == nil || d.Platform.OS+"/"+d.Platform.Architecture != platform {
			continue
		}
		var manifest ociManifest
		if err := readJSON(blobPath(dir, d.Digest), &manifest); err != nil {
			return nil, err
		}
		var config ociConfig
		if err := readJSON(blobPath(dir, manifest.Config.Digest), &config); err != nil {
			return nil, err
		}
		img := &Image{Manifest: d.Digest, Labels: config.Config.Labels, User: config.Config.User,
			Entrypoint: config.Config.Entrypoint}
		for _, layer := range manifest.Layers {
			sum, err := fileInLayer(blobPath(dir, layer.Digest), "berth")
			if err != nil {
				return nil, err
			}
			if sum != "" {
				img.BinarySHA256 = sum // a later layer's wins, as in a container's file system
			}
		}
		if img.BinarySHA256 == "" {
			return nil, fmt.Errorf("the %s image %s has no /berth", platform, d.Digest)
		}
		return img, nil
	}
	return nil, fmt.Errorf("the image index of %s has no image for %s", dir, platform)
}

// fileInLayer is the SHA-256 of the file name in the gzipped tar layer, or "" when the layer lacks it.
func fileInLayer(path, name string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("layer %s: %w", path, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", path, err)
		}
		if strings.TrimPrefix(h.Name, "./") != name {
			continue
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			return "", fmt.Errorf("layer %s: %w", path, err)
		}
		return hex.EncodeToString(sum.Sum(nil)), nil
	}
}

func blobPath(layout, digest string) string {
	algorithm, encoded, _ := strings.Cut(digest, ":")
	return filepath.Join(layout, "blobs", algorithm, encoded)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// FileSHA256 is the SHA-256 of a file, in hex.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
