package edge_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/journal"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestGateJournalDoneGrantAdmitsPendingOpening: a crash left the journal
// with a signed SOS and a grant done (their outputs in the outbox) and the
// opening after the grant journaled but not done. On restart the done
// records are replayed quietly: the opening is a passage of the grant,
// not a forced door on an always-armed gate, and the SOS is not raised
// again.
func TestGateJournalDoneGrantAdmitsPendingOpening(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "gates", "journal"), journal.Options{Window: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().Add(-2 * time.Second)
	ev := func(id string, kind gates.Kind, device, cred string, at time.Time) gates.Event {
		return gates.Event{ID: id, Source: "webhook/ctrl", Gate: "side-gate", Device: device, Kind: kind, Credential: cred, Time: at}
	}
	done, err := j.Append(ctx, now, []gates.Event{
		ev("sos-1", gates.Button, "booth", "", now),
		ev("grant-1", gates.Granted, "reader", "card-7", now),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range done {
		j.Done(r.Seq)
	}
	at := now.Add(time.Second)
	if _, err := j.Append(ctx, at, []gates.Event{ev("open-1", gates.Opened, "contact", "", at)}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil { // writes the done mark: up to the grant
		t.Fatal(err)
	}

	var mu sync.Mutex
	var raised []wire.Alert
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: dir,
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: token},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", URL: "rtsp://127.0.0.1:1/none"}},
		Gates: []conf.GateConfig{{ID: "side-gate", Name: "Side gate", Cameras: []string{"gate-cam"},
			Arming: conf.ArmingConfig{Always: true}}},
		GateInputs: conf.GateInputsConfig{
			Webhook: conf.WebhookInputConfig{Enabled: true, Controllers: []conf.WebhookControllerConfig{{ID: "ctrl", Secret: randomSecret(t), Gates: []string{"side-gate"}}}},
		},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), OnAlert: func(a wire.Alert) {
		mu.Lock()
		raised = append(raised, a)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	time.Sleep(1500 * time.Millisecond) // well past the grant grace
	mu.Lock()
	defer mu.Unlock()
	for _, a := range raised {
		if a.Kind == "gate.forced" || a.Kind == "gate.sos" {
			t.Errorf("raised %s (%s) after restart: want the opening a passage and no SOS again", a.Kind, a.Summary)
		}
	}
}
