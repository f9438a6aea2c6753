package edge_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// TestHealthzSaysCentralIsUnreachable: a box whose central does not answer
// says so — central_connected false and status degraded with the reason —
// instead of "ok".
func TestHealthzSaysCentralIsUnreachable(t *testing.T) {
	_, _, cfg := writeRevConfig(t, "ws://127.0.0.1:1/api/v1/edge/ws")
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	resp, err := http.Get("http://" + node.Addr() + "/api/v1/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Status    string   `json:"status"`
		Reasons   []string `json:"reasons"`
		Connected bool     `json:"central_connected"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || h.Status != "degraded" || h.Connected || len(h.Reasons) == 0 {
		t.Errorf("healthz with central unreachable: %d %+v", resp.StatusCode, h)
	}
	t.Logf("healthz: %+v", h)
}
