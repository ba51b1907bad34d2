package scale

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bucketRequests counts the requests that take their token from the one bucket that berth's kube and berth
// clientsets share (and that the floor's share): every request but those of Events and of the Lease, which go
// through clients with limits of their own.
func bucketRequests(r requests) float64 {
	return r.sum(func(req request) bool { return req.resource != "events" && req.resource != "leases" })
}

// bound is the least time in which a client limited to l.qps with a burst of l.burst can send the requests of
// r that share its bucket: the burst goes at once, and the rest at l.qps. No controller that makes those
// requests through that client converges sooner.
func bound(l limits, r requests) time.Duration {
	rest := bucketRequests(r) - float64(l.burst)
	if rest <= 0 {
		return 0
	}
	return time.Duration(rest / l.qps * float64(time.Second))
}

// spread is the median of a figure over the runs, and its least and greatest values.
type spread struct {
	median, min, max float64
}

func spreadOf(values []float64) spread {
	if len(values) == 0 {
		return spread{}
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + median) / 2
	}
	return spread{median: median, min: sorted[0], max: sorted[len(sorted)-1]}
}

// of is the spread of one figure over the runs rs.
func of(rs []result, figure func(result) float64) spread {
	values := make([]float64, 0, len(rs))
	for _, r := range rs {
		values = append(values, figure(r))
	}
	return spreadOf(values)
}

// cpuTimes are the machine's CPU times since boot, from /proc/stat, in clock ticks.
type cpuTimes struct {
	busy, total uint64
}

// readCPUTimes reads the first line of /proc/stat: user, nice, system, idle, iowait, irq, softirq, steal, ...
func readCPUTimes() (cpuTimes, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat starts with %q", line)
	}
	var t cpuTimes
	for i, field := range fields[1:] {
		v, err := strconv.ParseUint(field, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %w", err)
		}
		// guest and guest_nice (9th and 10th) are already counted in user and nice.
		if i >= 8 {
			break
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t, nil
}

// busySince is the share of the machine's CPU time since before that was not idle; NaN if it cannot be read.
func busySince(before cpuTimes) float64 {
	now, err := readCPUTimes()
	if err != nil || now.total <= before.total {
		return math.NaN()
	}
	return float64(now.busy-before.busy) / float64(now.total-before.total)
}

// cpuProfile takes a CPU profile of berth for the given time (it needs --profiling) and writes it to path. berth
// may have just started: it waits up to 10 s for its metrics server to listen.
func cpuProfile(ctx context.Context, metricsAddress, path string, d time.Duration) error {
	err := waitFor(ctx, "berth's metrics server listens", 50*time.Millisecond, 10*time.Second, func() (bool, error) {
		conn, err := net.DialTimeout("tcp", metricsAddress, time.Second)
		if err != nil {
			return false, nil
		}
		return true, conn.Close()
	})
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", metricsAddress, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("taking berth's CPU profile: %w", err)
	}
	profile, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading berth's CPU profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s (is --profiling on?)", resp.Status)
	}
	return os.WriteFile(path, profile, 0o644)
}

// profileTop is the top of a CPU profile of berth as `go tool pprof -top` prints it. It runs go tool pprof, which
// may build it first: not while a runner is being measured.
func profileTop(ctx context.Context, binary, path string) (string, error) {
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", binary, path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof -top %s: %w: %s", path, err, top)
	}
	return string(top), nil
}

func TestBound(t *testing.T) {
	l := limits{qps: 50, burst: 100}
	for _, tc := range []struct {
		name string
		r    requests
		want time.Duration
	}{
		{"within the burst", requests{{"create", "deployments"}: 100}, 0},
		{"3 writes for each of 1,001 Apps", requests{
			{"create", "deployments"}: 1001, {"create", "services"}: 1001, {"apply", "apps/status"}: 1001,
		}, 58060 * time.Millisecond},
		{"Events and the Lease have buckets of their own", requests{
			{"create", "deployments"}: 150, {"create", "events"}: 5000, {"update", "leases"}: 30,
		}, time.Second},
		{"reads and watches take tokens too", requests{
			{"list", "apps"}: 1, {"watch", "apps"}: 1, {"create", "deployments"}: 148,
		}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, bound(l, tc.r))
		})
	}
}

func TestSpreadOf(t *testing.T) {
	require.Equal(t, spread{median: 2, min: 1, max: 9}, spreadOf([]float64{9, 1, 2}))
	require.Equal(t, spread{median: 2.5, min: 1, max: 9}, spreadOf([]float64{9, 1, 3, 2}))
	require.Equal(t, "58.1 s (57.9-60.0)", secondsSpread(spreadOf([]float64{57.9, 58.1, 60})))
	require.Equal(t, "58.1 s", secondsSpread(spreadOf([]float64{58.1})))
}
