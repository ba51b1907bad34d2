package main

import (
	"reflect"
	"testing"
)

func TestBehindShared(t *testing.T) {
	lists := map[string]map[string]string{
		".": {
			"k8s.io/client-go":           "v0.37.2",
			"golang.org/x/net":           "v0.59.0",
			"google.golang.org/protobuf": "v1.36.12-0.20260120151049-f2248ac996af", // a pseudo-version before v1.36.12
			"github.com/only/here":       "v1.0.0",
		},
		"hack/tools/helm": {
			"k8s.io/client-go":           "v0.37.1",
			"golang.org/x/net":           "v0.61.0",
			"google.golang.org/protobuf": "v1.36.12",
		},
		"hack/tools/image": {
			"golang.org/x/net": "v0.61.0",
		},
	}
	want := map[string][]moduleVersion{
		".": {
			{"golang.org/x/net", "v0.61.0"},
			{"google.golang.org/protobuf", "v1.36.12"},
		},
		"hack/tools/helm": {
			{"k8s.io/client-go", "v0.37.2"},
		},
	}
	if got := behindShared(lists); !reflect.DeepEqual(got, want) {
		t.Errorf("behindShared:\n got %v\nwant %v", got, want)
	}
}
