// Command pki writes the certificates, keys and kubeconfigs of berth's local control plane, with the
// standard library only (no openssl needed).
//
//	pki -dir DIR -server https://127.0.0.1:16443 [-service-ip 10.0.0.1] [-force]
//
// It writes into DIR:
//
//	ca.crt, ca.key                         cluster CA (signs the serving cert and every client cert)
//	apiserver.crt, apiserver.key           kube-apiserver serving cert: 127.0.0.1, ::1, localhost,
//	                                       kubernetes[.default[.svc[.cluster.local]]], the service IP
//	admin.crt, admin.key                   CN=kubernetes-admin, O=system:masters
//	kube-controller-manager.crt/.key       CN=system:kube-controller-manager
//	kube-scheduler.crt/.key                CN=system:kube-scheduler
//	kwok.crt, kwok.key                     CN=kwok-controller, O=system:masters
//	front-proxy-ca.crt, front-proxy-ca.key front-proxy (request header) CA
//	front-proxy-client.crt/.key            CN=front-proxy-client, signed by the front-proxy CA
//	sa.key, sa.pub                         service-account token signing key pair
//	admin.kubeconfig, kube-controller-manager.kubeconfig, kube-scheduler.kubeconfig, kwok.kubeconfig
//
// Keys and certificates that already exist are kept (so a restarted cluster keeps its identity) unless
// -force is given; kubeconfigs are always rewritten, since the server address may have changed.
// Keys are ECDSA P-256, which every component accepts.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const validity = 10 * 365 * 24 * time.Hour

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func main() {
	dir := flag.String("dir", "", "directory to write into (created if missing)")
	server := flag.String("server", "https://127.0.0.1:16443", "kube-apiserver URL written into the kubeconfigs")
	serviceIP := flag.String("service-ip", "10.0.0.1", "first IP of --service-cluster-ip-range, added to the serving cert")
	extraSANs := flag.String("extra-sans", "", "comma-separated extra DNS names or IPs for the serving cert")
	force := flag.Bool("force", false, "regenerate keys and certificates even if they exist")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "pki: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *server, *serviceIP, *extraSANs, *force); err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
}

func run(dir, server, serviceIP, extraSANs string, force bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if force {
		for _, n := range []string{"ca", "apiserver", "admin", "kube-controller-manager", "kube-scheduler", "kwok", "front-proxy-ca", "front-proxy-client"} {
			_ = os.Remove(filepath.Join(dir, n+".crt"))
			_ = os.Remove(filepath.Join(dir, n+".key"))
		}
		_ = os.Remove(filepath.Join(dir, "sa.key"))
		_ = os.Remove(filepath.Join(dir, "sa.pub"))
	}

	ca, err := loadOrCreate(dir, "ca", nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "berth-local-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	})
	if err != nil {
		return err
	}

	serving := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	sans := []string{serviceIP}
	if extraSANs != "" {
		sans = append(sans, strings.Split(extraSANs, ",")...)
	}
	for _, s := range sans {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			serving.IPAddresses = append(serving.IPAddresses, ip)
		} else {
			serving.DNSNames = append(serving.DNSNames, s)
		}
	}
	if _, err := loadOrCreate(dir, "apiserver", ca, serving); err != nil {
		return err
	}

	clients := []struct {
		file, cn string
		orgs     []string
	}{
		{"admin", "kubernetes-admin", []string{"system:masters"}},
		{"kube-controller-manager", "system:kube-controller-manager", nil},
		{"kube-scheduler", "system:kube-scheduler", nil},
		// kwok plays the kubelet of every fake node and edits Pod and Node status freely.
		{"kwok", "kwok-controller", []string{"system:masters"}},
	}
	for _, c := range clients {
		if _, err := loadOrCreate(dir, c.file, ca, clientTemplate(c.cn, c.orgs)); err != nil {
			return err
		}
	}

	fpca, err := loadOrCreate(dir, "front-proxy-ca", nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "berth-local-front-proxy-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	})
	if err != nil {
		return err
	}
	if _, err := loadOrCreate(dir, "front-proxy-client", fpca, clientTemplate("front-proxy-client", nil)); err != nil {
		return err
	}

	if err := serviceAccountKeys(dir); err != nil {
		return err
	}

	for _, c := range clients {
		if err := writeKubeconfig(dir, c.file, server); err != nil {
			return err
		}
	}
	return nil
}

func clientTemplate(cn string, orgs []string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: orgs},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// loadOrCreate returns the pair NAME.crt/NAME.key from dir, or creates it from tmpl, signed by parent
// (self-signed when parent is nil).
func loadOrCreate(dir, name string, parent *keyPair, tmpl *x509.Certificate) (*keyPair, error) {
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if kp, err := load(certPath, keyPath); err == nil {
		return kp, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (use -force to regenerate)", name, err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour).UTC()
	tmpl.NotAfter = tmpl.NotBefore.Add(validity)

	signerCert, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	// Key first, certificate last: a pair whose certificate exists is complete.
	if err := writePEM(keyPath, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

func load(certPath, keyPath string) (*keyPair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s is not PEM", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	return &keyPair{cert: cert, key: signer}, nil
}

func serviceAccountKeys(dir string) error {
	keyPath, pubPath := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if _, err := os.Stat(pubPath); err == nil {
		if _, err := os.Stat(keyPath); err == nil {
			return nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pubDER, 0o644)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// writeFile writes atomically (temp file + rename), so a reader never sees half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeKubeconfig(dir, name, server string) error {
	read := func(n string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, n))
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	crt, err := read(name + ".crt")
	if err != nil {
		return err
	}
	key, err := read(name + ".key")
	if err != nil {
		return err
	}
	user := name
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: berth-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: berth-local
  context:
    cluster: berth-local
    user: %s
current-context: berth-local
`, server, ca, user, crt, key, user)
	return writeFile(filepath.Join(dir, name+".kubeconfig"), []byte(kc), 0o600)
}
