package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// ShippedLeaderElectionArgs are the leader-election flags of the Deployment of artifacts/deploy, so that a test's
// berth elects a leader as it does in a cluster: its Lease, its timings.
func ShippedLeaderElectionArgs() ([]string, error) {
	path := filepath.Join(RepoRoot(), "artifacts", "deploy", "base", "deployment.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var args []string
	for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(arg, "--leader-elect") {
			args = append(args, arg)
		}
	}
	for _, arg := range args {
		if arg == "--leader-elect" {
			return args, nil
		}
	}
	return nil, fmt.Errorf("the berth container of %s does not run with --leader-elect", path)
}
