package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/internal/demo"
)

// TestRunSimGate: `vigil sim gate --scenario sos` signs its events so that
// a real webhook handler accepts them.
func TestRunSimGate(t *testing.T) {
	got := make(chan gates.Event, 10)
	h, err := webhook.New(webhook.Config{Controllers: []webhook.Controller{{ID: "booth", Secrets: []string{"cli-test-secret-0123456789"}, Gates: []string{"east-gate"}}}},
		func(_ context.Context, ev gates.Event) error { got <- ev; return nil }, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	t.Setenv("VIGIL_GATE_SECRET", "cli-test-secret-0123456789")
	var stdout, stderr bytes.Buffer
	err = runSimGate(context.Background(), []string{"--webhook", srv.URL, "--controller", "booth", "--gate", "east-gate", "--scenario", "sos", "--pause", "10ms"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for i := 0; i < 2; i++ {
		select {
		case ev := <-got:
			if ev.Kind != gates.Button || ev.Gate != "east-gate" {
				t.Fatalf("event %+v", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
	if !strings.Contains(stdout.String(), "scenario sos sent") {
		t.Fatalf("stdout %q", stdout.String())
	}
	if err := runSimGate(context.Background(), []string{"--scenario", "sos"}, &stdout, &stderr); err == nil {
		t.Fatal("no target accepted")
	}

	// --demo reads the target from the demo's demo.json.
	t.Setenv("VIGIL_GATE_SECRET", "")
	info, _ := json.Marshal(demo.Info{EdgeAPI: srv.URL, GateID: "east-gate", WebhookURL: srv.URL, Controller: "booth", Secret: "cli-test-secret-0123456789"})
	path := filepath.Join(t.TempDir(), "demo.json")
	os.WriteFile(path, info, 0o600)
	if err := runSimGate(context.Background(), []string{"--demo", path, "--scenario", "sos", "--pause", "10ms"}, &stdout, &stderr); err != nil {
		t.Fatalf("--demo: %v\n%s", err, stderr.String())
	}
	for i := 0; i < 2; i++ {
		select {
		case ev := <-got:
			if ev.Gate != "east-gate" {
				t.Fatalf("event %+v", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event with --demo")
		}
	}
}
