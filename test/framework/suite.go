package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Suite is what an end-to-end test binary works with: the local cluster, with the App CRD installed, and the
// berth binary of the image that `make image` built from this checkout.
type Suite struct {
	Cluster *Cluster
	// Binary is the berth binary.
	Binary string
	// Dir is for berth's logs and files: inside the cluster's folder, so it goes with it.
	Dir string
}

// StartSuite starts the local cluster (with an audit log of writes), finds berth (ImageBerth) and installs the CRD. If one of those fails, the cluster
// is stopped again. Stop the cluster (Suite.Cluster.Stop) when done.
func StartSuite(ctx context.Context) (*Suite, error) {
	cluster, err := StartCluster(ctx, WithAuditLog())
	if err != nil {
		return nil, fmt.Errorf("starting the local cluster: %w", err)
	}
	s, err := setUpSuite(ctx, cluster)
	if err != nil {
		if stopErr := cluster.Stop(); stopErr != nil {
			err = fmt.Errorf("%w (and stopping the cluster: %v)", err, stopErr)
		}
		return nil, err
	}
	return s, nil
}

func setUpSuite(ctx context.Context, cluster *Cluster) (*Suite, error) {
	dir := filepath.Join(cluster.Dir, "berth")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	binary, err := ImageBerth(ctx)
	if err != nil {
		return nil, err
	}
	if err := cluster.ApplyCRDs(ctx); err != nil {
		return nil, fmt.Errorf("installing the CRD: %w", err)
	}
	return &Suite{Cluster: cluster, Binary: binary, Dir: dir}, nil
}
