package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnwrapYAML(t *testing.T) {
	in := `spec:
  port:
    description: |-
      Port is the TCP port the container listens on. When set, berth creates a Service of the App's name that
      sends this port to the Pods; when unset, there is no Service.

      A second paragraph,
      on two lines:
      - an item
      - another
        continued by indentation
      1. a numbered item
    format: int32
  replicas:
    description: One line already.
    type: integer
  last:
    description: |-
      Ends the file
      here.
`
	want := `spec:
  port:
    description: |-
      Port is the TCP port the container listens on. When set, berth creates a Service of the App's name that sends this port to the Pods; when unset, there is no Service.

      A second paragraph, on two lines:
      - an item
      - another
        continued by indentation
      1. a numbered item
    format: int32
  replicas:
    description: One line already.
    type: integer
  last:
    description: |-
      Ends the file here.
`
	assert.Equal(t, want, unwrapYAML(in))
	assert.Equal(t, want, unwrapYAML(want), "unwrapping twice changes nothing")
}
