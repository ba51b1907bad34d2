package framework

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ServiceAccountDir is where a Pod finds its ServiceAccount's token, the cluster's CA and its namespace, and where
// rest.InClusterConfig reads them.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// CAFile is the cluster CA, which signs the API server's serving certificate.
func (c *Cluster) CAFile() string { return filepath.Join(c.Dir, "pki", "ca.crt") }

// ServiceAccountToken asks the API server for a token of the ServiceAccount namespace/name with the TokenRequest
// API, as the kubelet does for a Pod, valid for expiration (at least 10 minutes).
func (c *Cluster) ServiceAccountToken(ctx context.Context, namespace, name string, expiration time.Duration) (string, error) {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return "", err
	}
	seconds := int64(expiration.Seconds())
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// WriteKubeconfig writes a kubeconfig file to path that reaches this cluster's API server, trusts its CA, and
// authenticates with token and nothing else.
func (c *Cluster) WriteKubeconfig(path, token string) error {
	ca, err := os.ReadFile(c.CAFile())
	if err != nil {
		return err
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["local"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: ca}
	config.AuthInfos["token"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "token"}
	config.CurrentContext = "local"
	return clientcmd.WriteToFile(*config, path) // mode 0600
}

// inClusterScript runs in a private mount namespace, as root in it: it mounts a tmpfs on /var/run (on /run, where
// /var/run usually points; so nothing is written to this machine's folders), copies the token, CA and namespace
// from the folder $1 to where a Pod sees them, and execs the rest of its arguments: one process from unshare to
// berth.
const inClusterScript = `set -eu
mount -t tmpfs -o mode=0755 tmpfs "$(readlink -f /var/run)"
mkdir -p "` + ServiceAccountDir + `"
cp "$1/token" "$1/ca.crt" "$1/namespace" "` + ServiceAccountDir + `/"
shift
exec "$@"
`

// StartBerthInCluster runs the berth binary as it runs in a Pod of ServiceAccount namespace (token from
// ServiceAccountToken): without --kubeconfig and without KUBECONFIG, with KUBERNETES_SERVICE_HOST and
// KUBERNETES_SERVICE_PORT set to the API server, and the token, the cluster CA and the namespace in
// ServiceAccountDir of a private mount namespace (unshare; as root, or in a user namespace of its own otherwise),
// so that rest.InClusterConfig is what connects it. The three files are first written to dir/name-serviceaccount/
// (mode 0600), never on a command line. It logs to dir/name.log.
func (c *Cluster) StartBerthInCluster(binary, dir, name, token, namespace string, args ...string) (*Process, error) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("running berth in-cluster needs unshare (util-linux) for a private mount namespace: %w", err)
	}
	server, err := url.Parse(c.Config.Host)
	if err != nil {
		return nil, fmt.Errorf("the API server's address %q: %w", c.Config.Host, err)
	}
	if server.Hostname() == "" || server.Port() == "" {
		return nil, fmt.Errorf("the API server's address %q has no host and port", c.Config.Host)
	}

	secrets := filepath.Join(dir, name+"-serviceaccount")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(c.CAFile())
	if err != nil {
		return nil, err
	}
	for file, content := range map[string][]byte{"token": []byte(token), "ca.crt": ca, "namespace": []byte(namespace)} {
		if err := os.WriteFile(filepath.Join(secrets, file), content, 0o600); err != nil {
			return nil, err
		}
	}

	unshareArgs := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		// Mounting needs root: a user namespace maps this user to root inside.
		unshareArgs = append([]string{"--user", "--map-root-user"}, unshareArgs...)
	}
	unshareArgs = append(unshareArgs, "sh", "-c", inClusterScript, "berth-in-cluster", secrets, binary)
	cmd := exec.Command(unshare, append(unshareArgs, args...)...)
	cmd.Env = append(withoutEnv(os.Environ(), "KUBECONFIG"),
		"KUBERNETES_SERVICE_HOST="+server.Hostname(),
		"KUBERNETES_SERVICE_PORT="+server.Port())
	return StartCommand(dir, name, cmd)
}

// withoutEnv is env without the variables named.
func withoutEnv(env []string, names ...string) []string {
	var kept []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			kept = append(kept, kv)
		}
	}
	return kept
}

// Pid is the process's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// ProcFile reads a file of the process's /proc entry, such as "environ", "cmdline" or
// "root/var/run/secrets/kubernetes.io/serviceaccount/namespace" (a path as the process sees it, in its own mount
// namespace).
func (p *Process) ProcFile(name string) (string, error) {
	if p.Exited() {
		return "", errors.New(p.Name + " has exited")
	}
	data, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(p.Pid()), name))
	return string(data), err
}
