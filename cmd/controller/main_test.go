package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/version"
)

// runMainEnv makes the test binary run berth's main instead of the tests, so that a test can run berth as a
// process.
const runMainEnv = "BERTH_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// berth --version prints its version and exits, without looking for a cluster.
func TestVersionFlag(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "--version")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "KUBECONFIG=/nonexistent")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	assert.Equal(t, version.Get().String()+"\n", string(out))
	assert.Empty(t, stderr.String())
	assert.Regexp(t, `^berth devel \(commit \S+, go1\.\S+ linux/\w+\)\n$`, string(out),
		"the test binary has no version from the linker")
}

func parse(t *testing.T, args ...string) options {
	t.Helper()
	opts := defaultOptions()
	fs := flag.NewFlagSet("berth", flag.ContinueOnError)
	opts.addFlags(fs)
	require.NoError(t, fs.Parse(args))
	return opts
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"--leader-elect", "--workers=8", "--logging-format=json"}, ""},
		{[]string{"--workers=0"}, "--workers"},
		{[]string{"--kube-api-qps=0"}, "--kube-api-qps"},
		{[]string{"--backoff-base=1s", "--backoff-max=10ms"}, "--backoff-max"},
		{[]string{"--drain-timeout=0"}, "--drain-timeout"},
		{[]string{"--leader-elect", "--leader-election-renew-deadline=20s"}, "--leader-election-renew-deadline"},
		{[]string{"--leader-elect", "--leader-election-renew-deadline=14500ms"},
			"--leader-election-renew-deadline (14.5s) must be at least 1s shorter than --leader-election-lease-duration (15s)"},
		{[]string{"--leader-elect", "--leader-election-renew-deadline=14s"}, ""},
		{[]string{"--leader-elect", "--leader-election-id="}, "--leader-election-id"},
		{[]string{"--profiling", "--metrics-bind-address=0"}, "--profiling"},
		{[]string{"--logging-format=xml"}, "xml"},
		{[]string{"--namespace=shop"}, ""},
		{[]string{"--namespace=shop,web-1,b"}, ""},
		{[]string{"--namespace=shop,Web"}, `"Web" is not a namespace name: a lowercase RFC 1123 label`},
		{[]string{"--namespace=shop,x.y"}, `"x.y" is not a namespace name: must not contain dots`},
		{[]string{"--namespace=shop,,web"}, "name 2 of the list is empty"},
		{[]string{"--namespace=shop,"}, "name 2 of the list is empty"},
		{[]string{"--namespace=shop,web,shop"}, `namespace "shop" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			opts := parse(t, tt.args...)
			err := opts.validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestParseNamespaces(t *testing.T) {
	tests := []struct {
		flag string
		want []string
	}{
		{"", nil},
		{" ", nil},
		{"shop", []string{"shop"}},
		{"shop,web,b", []string{"shop", "web", "b"}},
		{"shop, web", []string{"shop", "web"}},
	}
	for _, tt := range tests {
		got, err := parseNamespaces(tt.flag)
		require.NoError(t, err, tt.flag)
		assert.Equal(t, tt.want, got, "--namespace=%q", tt.flag)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestProbes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	synced := false
	h := probeHandler(ctx, func() error {
		if synced {
			return nil
		}
		return cachesNotSynced([]controller.NamespaceNotSynced{{Namespace: "shop"},
			{Namespace: "web", Err: errors.New(`pods is forbidden: User "berth" cannot list resource "pods"`)}})
	}, nil, nil)

	code, body := get(t, h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "not ready before the caches sync")
	assert.Equal(t, "informer caches not synced yet: namespace shop: not listed yet; namespace web: pods is "+
		"forbidden: User \"berth\" cannot list resource \"pods\"\n", body, "which namespaces, and why")
	code, _ = get(t, h, "/healthz")
	assert.Equal(t, http.StatusOK, code, "alive all the same")

	synced = true
	code, _ = get(t, h, "/readyz")
	assert.Equal(t, http.StatusOK, code)

	cancel()
	code, body = get(t, h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "not ready while shutting down")
	assert.Contains(t, body, "shutting down")
}

func TestMetricsHandler(t *testing.T) {
	code, body := get(t, metricsHandler(false), "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "go_goroutines")
	code, _ = get(t, metricsHandler(false), "/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, code, "pprof is opt-in")
	code, _ = get(t, metricsHandler(true), "/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
}

func TestServeStopsAndReportsBusyPorts(t *testing.T) {
	ctx := context.Background()
	stop, err := serve(ctx, "test", "127.0.0.1:0", http.NotFoundHandler())
	require.NoError(t, err)
	stop()

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	_, err = serve(ctx, "test", busy.Addr().String(), http.NotFoundHandler())
	require.Error(t, err)
	assert.Contains(t, err.Error(), busy.Addr().String())
}

func TestStartServersServesBothEndpoints(t *testing.T) {
	opts := defaultOptions()
	ports := make([]string, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ports[i] = l.Addr().String()
		require.NoError(t, l.Close())
	}
	opts.metricsBindAddress, opts.healthProbeBindAddress = ports[0], ports[1]
	stop, err := startServers(context.Background(), opts, func() error { return nil }, nil, nil)
	require.NoError(t, err)
	defer stop()

	client := &http.Client{Timeout: 5 * time.Second}
	for _, url := range []string{"http://" + ports[0] + "/metrics", "http://" + ports[1] + "/readyz"} {
		resp, err := client.Get(url)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, url)
	}
}
