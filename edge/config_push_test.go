package edge_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// Edits at once (the setup page, a script, an enrolment) each read, change
// and apply the file under one lock: none is lost.
func TestConcurrentEditsAreNotLost(t *testing.T) {
	path, _, cfg := writeRevConfig(t, "ws://127.0.0.1:1/api/v1/edge/ws")
	rev, _ := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	var wg sync.WaitGroup
	const edits = 8
	for i := range edits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			server := fmt.Sprintf("ntp%d.example.org", i)
			if _, err := node.EditConfig(func(c *conf.Config) error { c.NTP = append(c.NTP, server); return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.NTP) != edits {
		t.Fatalf("after %d edits at once the file names %d NTP servers (%v): edits were lost", edits, len(got.NTP), got.NTP)
	}
}
