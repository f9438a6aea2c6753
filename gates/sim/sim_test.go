package sim

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/engine"
	"github.com/vigil-perimeter/vigil/gates/mqtt"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

const secret = "sim-test-secret-0123456789abcdef"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// pipeline is an edge's gate side on 127.0.0.1: webhook handler on a real
// HTTP server, MQTT adapter on a real mosquitto, one engine.
type pipeline struct {
	webhookURL, broker string
	mu                 sync.Mutex
	alerts             []gates.Alert
}

func (p *pipeline) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, a := range p.alerts {
		s := string(a.Key) + " " + string(a.Severity)
		if a.Cleared {
			s += " cleared"
		}
		out = append(out, s)
	}
	return out
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	p := &pipeline{}
	broker := mosquitto.Start(t)
	p.broker = broker.URL()
	eng, err := engine.New(engine.Options{
		Gates: []gates.Config{{
			ID: "north-gate", Name: "North gate", Arming: gates.Arming{Always: true},
			GrantGrace: 50 * time.Millisecond, Debounce: 20 * time.Millisecond, UpdateEvery: -1,
			HeldOpenAfter: 250 * time.Millisecond, HeldOpenRedAfter: 400 * time.Millisecond,
		}},
		OnAlert: func(a gates.Alert) { p.mu.Lock(); p.alerts = append(p.alerts, a); p.mu.Unlock() },
		Log:     quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.New(webhook.Config{Controllers: []webhook.Controller{{ID: "sim-controller", Secrets: []string{secret}, Gates: []string{"north-gate"}}}}, eng.Submit, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p.webhookURL = srv.URL + "/api/v1/gates/events"
	ad, err := mqtt.New(mqtt.Config{Broker: broker.URL(), Devices: []mqtt.Device{{Name: "north-gate-smoke", Gate: "north-gate"}}}, eng.Submit, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); eng.Run(ctx) }()
	go func() { defer wg.Done(); ad.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := 0; i < 500 && !ad.Connected(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	// The subscription follows the connection within milliseconds; the
	// first MQTT scenario starts seconds later.
	return p
}

// TestAllScenariosEndToEnd: every scenario, sent over a signed webhook and
// a real MQTT broker, ends as the alerts a guard should see.
func TestAllScenariosEndToEnd(t *testing.T) {
	p := startPipeline(t)
	s, err := New(Config{WebhookURL: p.webhookURL, Secret: secret, MQTTBroker: p.broker, Pause: 100 * time.Millisecond, HoldOpen: 500 * time.Millisecond, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Run(ctx, "all"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"passage green",                                                                 // passage
		"forced red",                                                                    // forced
		"passage green", "held_open yellow", "held_open red", "held_open green cleared", // held
		"sos red", "sos red", // sos, pressed twice: new alert, then the folded update
		"smoke red", "smoke green cleared", // smoke
		"silent yellow", "silent green cleared", // offline
	}
	var got []string
	for i := 0; i < 100; i++ {
		if got = p.seen(); len(got) >= len(want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestScenarioNeedsItsTransport(t *testing.T) {
	s, err := New(Config{WebhookURL: "http://127.0.0.1:1/x", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), "smoke"); err == nil || !strings.Contains(err.Error(), "MQTT") {
		t.Fatalf("smoke without a broker: %v", err)
	}
	if err := s.Run(context.Background(), "fire"); err == nil {
		t.Fatal("unknown scenario accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("no target accepted")
	}
	if _, err := New(Config{WebhookURL: "http://x"}); err == nil {
		t.Fatal("webhook without secret accepted")
	}
}
