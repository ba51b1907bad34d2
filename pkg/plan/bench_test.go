package plan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/pkg/plan/plantest"
)

func BenchmarkDesiredDeployment(b *testing.B) {
	app := plantest.NewApp(plantest.WithPort(8080))
	b.ReportAllocs()
	for b.Loop() {
		Deployment(app)
	}
}

func BenchmarkDesiredService(b *testing.B) {
	app := plantest.NewApp(plantest.WithPort(8080))
	b.ReportAllocs()
	for b.Loop() {
		Service(app)
	}
}

// BenchmarkComputeStatus computes the status of a converged App from its rolled-out Deployment, as every sync
// does before it compares the result with the App's status.
func BenchmarkComputeStatus(b *testing.B) {
	app := plantest.NewApp(plantest.WithPort(8080))
	d := plantest.DeploymentStatus()
	now := metav1.NewTime(time.Now())
	app.Status = Status(app, Observed{Deployment: d}, "cluster.local", now)
	b.ReportAllocs()
	for b.Loop() {
		Status(app, Observed{Deployment: d}, "cluster.local", now)
	}
}
