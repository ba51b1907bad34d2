package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The user berth runs as: not root, and the uid and gid that distroless images call nonroot.
const (
	nonrootID   = 65532
	nonrootName = "nonroot"
)

// The paths of the image.
const (
	binaryPath = "berth" // entrypoint /berth
	caFilePath = "etc/ssl/certs/ca-certificates.crt"
)

// file is one entry of a layer.
type file struct {
	path     string // relative, without a leading "/"
	dir      bool
	mode     int64
	uid, gid int
	content  []byte
}

// baseFiles are what the image holds besides berth: what a static Go binary may look for on Linux. /etc/passwd and
// /etc/group name root and nonroot, so that tools and the kubelet can resolve the image's user; the CA
// certificates are where crypto/x509 looks first on Linux; /tmp and nonroot's home are writable places, as a
// program may expect them (berth itself writes nothing).
func baseFiles(caBundle []byte) []file {
	return []file{
		{path: "etc", dir: true, mode: 0o755},
		{path: "etc/group", mode: 0o644, content: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", nonrootName, nonrootID))},
		{path: "etc/passwd", mode: 0o644, content: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n",
			nonrootName, nonrootID, nonrootID, nonrootName, nonrootName))},
		{path: "etc/ssl", dir: true, mode: 0o755},
		{path: "etc/ssl/certs", dir: true, mode: 0o755},
		{path: caFilePath, mode: 0o644, content: caBundle},
		{path: "home", dir: true, mode: 0o755},
		{path: "home/" + nonrootName, dir: true, mode: 0o700, uid: nonrootID, gid: nonrootID},
		{path: "tmp", dir: true, mode: 0o1777},
	}
}

// caBundlePEM is the Mozilla root store as golang.org/x/crypto/x509roots/fallback carries it (a Go module, so
// pinned by go.mod and go.sum, and the same on every machine), in PEM. The roots that the store trusts only for
// certificates issued before a date are left out: a PEM file cannot carry that constraint.
func caBundlePEM() (certificates []byte, count, constrained int) {
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			constrained++
			continue
		}
		writePEM(&b, root.Certificate)
		count++
	}
	return b.Bytes(), count, constrained
}

func writePEM(b *bytes.Buffer, der []byte) {
	// Encode only fails on invalid headers, and there are none.
	_ = pem.Encode(b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newLayer is an OCI layer (gzipped tar) of files, whose every timestamp is mtime and whose bytes depend on
// nothing else: the same files give the same digest.
func newLayer(files []file, mtime time.Time) (v1.Layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.path,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		if _, err := tw.Write(f.content); err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}

	// compress/gzip writes no name and no time in its header unless told to: its output depends on the input
	// and the level only.
	var compressed bytes.Buffer
	zw, err := gzip.NewWriterLevel(&compressed, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := compressed.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
