// Package deploy_test checks that the example configurations shipped in
// deploy/ load through the same code as the real programs.
package deploy_test

import (
	"testing"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
)

func TestExampleConfigsLoad(t *testing.T) {
	t.Setenv("VIGIL_EDGE_TOKEN", "example") // the example reads a token file that exists only on a box
	if _, err := edge.LoadConfig("edge.example.yaml"); err != nil {
		t.Errorf("edge.example.yaml: %v", err)
	}
	if _, err := central.LoadConfig("central.example.yaml"); err != nil {
		t.Errorf("central.example.yaml: %v", err)
	}
}
