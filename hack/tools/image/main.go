// Command image builds berth's container image without a container engine (make image; hack/image.sh runs it):
// an OCI image layout holding an image index with an image for each berth binary it is given, and an SPDX SBOM
// for each image, written beside the layout and attached to the image in the layout as an OCI 1.1 referrer.
//
// Each image is two layers on nothing: a base (/etc/passwd and /etc/group with the user nonroot, 65532; the
// Mozilla CA certificates of a pinned Go module; /tmp) and the static binary at /berth, run as 65532:65532.
// Nothing is pulled from a registry. Every timestamp is SOURCE_DATE_EPOCH (the commit's time): the same binaries
// give the same digests.
//
//	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) go run . -layout DIR -sbom-dir DIR \
//	    -binary linux/amd64=PATH -binary linux/arm64=PATH -version V -revision COMMIT -source URL
//
// It prints each image's digest and size, and writes them to -summary for scripts.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// binaryFlags is the repeated -binary PLATFORM=PATH.
type binaryFlags []string

func (b *binaryFlags) String() string     { return strings.Join(*b, " ") }
func (b *binaryFlags) Set(v string) error { *b = append(*b, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var binaries binaryFlags
	fs.Var(&binaries, "binary", "PLATFORM=PATH: a berth binary and its platform (linux/amd64); repeat for each platform")
	layoutDir := fs.String("layout", "", "the OCI image layout folder to write: it must be missing or empty")
	sbomDir := fs.String("sbom-dir", "", "the folder to write each platform's SBOM to (berth-OS-ARCH.spdx.json)")
	summary := fs.String("summary", "", "a file to write the digests and sizes to, tab-separated, for scripts")
	var meta metadata
	fs.StringVar(&meta.version, "version", "", "berth's version (git describe --tags --always --dirty)")
	fs.StringVar(&meta.revision, "revision", "", "the commit the binaries were built from (git rev-parse HEAD)")
	fs.StringVar(&meta.source, "source", "", "the project's address, for the labels and the SBOMs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *layoutDir == "" || *sbomDir == "" || len(binaries) == 0 || meta.version == "" || meta.revision == "" ||
		meta.source == "" {
		return errors.New("-layout, -sbom-dir, -binary, -version, -revision and -source are required")
	}
	epoch, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH must be the commit's time in seconds since 1970 (git log -1 "+
			"--format=%%ct): %w", err)
	}
	meta.created = time.Unix(epoch, 0).UTC()

	var inputs []platformBinary
	for _, b := range binaries {
		platform, path, ok := strings.Cut(b, "=")
		if !ok {
			return fmt.Errorf("-binary %q: want PLATFORM=PATH", b)
		}
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			return fmt.Errorf("-binary %q: %w", b, err)
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		inputs = append(inputs, platformBinary{platform: *p, binary: content})
	}

	res, err := build(*layoutDir, inputs, meta)
	if err != nil {
		return err
	}
	if err := writeSBOMFiles(*sbomDir, res.platforms); err != nil {
		return err
	}
	if *summary != "" {
		if err := os.WriteFile(*summary, []byte(summaryTSV(res)), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "image index %s (%s, %s) in %s; %d CA certificates\n", res.index.Digest, meta.version,
		meta.revision, *layoutDir, res.caRoots)
	for _, pr := range res.platforms {
		fmt.Fprintf(stdout, "  %-12s %s  %s compressed, %s unpacked; SBOM %s (%s)\n", pr.platform.String(),
			pr.manifest.Digest, mib(pr.compressed), mib(pr.uncompressed), pr.sbomManifest.Digest, sbomFileName(pr.platform))
	}
	return nil
}

// summaryTSV is a line for the index and one per platform:
//
//	index DIGEST
//	image PLATFORM MANIFEST-DIGEST COMPRESSED-BYTES UNCOMPRESSED-BYTES SBOM-MANIFEST-DIGEST SBOM-BLOB-DIGEST
func summaryTSV(res *result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "index\t%s\n", res.index.Digest)
	for _, pr := range res.platforms {
		fmt.Fprintf(&b, "image\t%s\t%s\t%d\t%d\t%s\t%s\n", pr.platform.String(), pr.manifest.Digest, pr.compressed,
			pr.uncompressed, pr.sbomManifest.Digest, pr.sbomBlob.Digest)
	}
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// caBundleSource names the module that the CA certificates come from, with its version, as this program was
// built with it.
func caBundleSource() string {
	const module = "golang.org/x/crypto/x509roots/fallback"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == module {
				return module + "@" + dep.Version
			}
		}
	}
	return module
}
