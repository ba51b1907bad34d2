package v1alpha1

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestEveryFieldIsDescribed walks the generated CRD: every field of the App must carry a description, which
// kubectl explain prints, so that a user never meets a field it cannot read about.
func TestEveryFieldIsDescribed(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "artifacts", "crds", "berth.dev_apps.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%d versions, want 1", len(crd.Spec.Versions))
	}
	var undescribed []string
	fields := 0
	var walk func(path string, schema map[string]any)
	walk = func(path string, schema map[string]any) {
		properties, _ := schema["properties"].(map[string]any)
		for name, p := range properties {
			property := p.(map[string]any)
			fields++
			if d, _ := property["description"].(string); d == "" && path+"."+name != ".metadata" {
				undescribed = append(undescribed, path+"."+name)
			}
			walk(path+"."+name, property)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			walk(path+"[]", items)
		}
	}
	walk("", crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
	sort.Strings(undescribed)
	if fields < 50 {
		t.Fatalf("walked only %d fields: is the schema where this test looks?", fields)
	}
	if len(undescribed) > 0 {
		t.Errorf("fields without a description (kubectl explain shows nothing for them):\n%v", undescribed)
	}
}
