package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
)

// InstallCRDs creates (or replaces) the CRDs of artifacts/crds and waits until Apps can be listed: a CRD that
// reports Established can still be refused for a moment while discovery catches up.
func InstallCRDs(ctx context.Context, config *rest.Config) error {
	// The CRDs are the generated files of artifacts/crds: all but the kustomization that lists them.
	files, err := filepath.Glob(filepath.Join(RepoRoot(), "artifacts", "crds", "*_*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRD in artifacts/crds (%v)", err)
	}
	if err := installCRDFiles(ctx, config, files); err != nil {
		return err
	}
	berthClient, err := versioned.NewForConfig(config)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := berthClient.BerthV1alpha1().Apps("default").List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
}

// InstallGatewayAPI creates (or replaces) the CRDs of Gateway API's standard channel, from the Go module
// sigs.k8s.io/gateway-api at the version go.mod names, and waits until HTTPRoutes can be listed.
func InstallGatewayAPI(ctx context.Context, config *rest.Config) error {
	out, err := exec.CommandContext(ctx, "go", "-C", RepoRoot(), "list", "-m", "-f", "{{.Dir}}",
		"sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return fmt.Errorf("finding the module sigs.k8s.io/gateway-api: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRD in the module sigs.k8s.io/gateway-api (%v)", err)
	}
	if err := installCRDFiles(ctx, config, files); err != nil {
		return err
	}
	gatewayClient, err := gatewayversioned.NewForConfig(config)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := gatewayClient.GatewayV1().HTTPRoutes("default").List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
}

// installCRDFiles creates (or replaces) the CRD of each file; files of other kinds are left out.
func installCRDFiles(ctx context.Context, config *rest.Config, files []string) error {
	client, err := apiextensionsclient.NewForConfig(config)
	if err != nil {
		return err
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var kind metav1.TypeMeta
		if err := yaml.Unmarshal(data, &kind); err != nil {
			return fmt.Errorf("decoding %s: %w", file, err)
		}
		if kind.Kind != "CustomResourceDefinition" {
			continue // Gateway API's ValidatingAdmissionPolicy, for one
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &crd); err != nil {
			return fmt.Errorf("decoding %s: %w", file, err)
		}
		crds := client.ApiextensionsV1().CustomResourceDefinitions()
		if _, err := crds.Create(ctx, &crd, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			existing, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			crd.ResourceVersion = existing.ResourceVersion
			_, err = crds.Update(ctx, &crd, metav1.UpdateOptions{})
			if err != nil {
				return fmt.Errorf("updating CRD %s: %w", crd.Name, err)
			}
		} else if err != nil {
			return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
		}
	}
	return nil
}
