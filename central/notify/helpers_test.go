package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

// deadline bounds every wait in these tests; they poll, never sleep a
// guessed time.
const deadline = 15 * time.Second

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testOptions retry fast and log to the test.
func testOptions(t *testing.T) Options {
	return Options{
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffMin:   5 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		DrainTimeout: 2 * time.Second,
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// start builds and runs a notifier, closed at the end of the test.
func start(t *testing.T, cfg Config, opt Options) *Notifier {
	t.Helper()
	n, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func mqttConfig(b *mosquitto.Broker) *MQTTConfig {
	return &MQTTConfig{URL: b.URL(), ClientID: "vigil-test", Timeout: config.Duration(2 * time.Second)}
}

func writeSecret(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// metric reads one series from the notifier through a registry, as a
// scrape would.
func metric(t *testing.T, n *Notifier, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(n)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func stats(t *testing.T, n *Notifier, sink string) Stats {
	t.Helper()
	s, ok := n.Stats(sink)
	if !ok {
		t.Fatalf("no sink %q", sink)
	}
	return s
}

// msg is one message a subscriber received.
type msg struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// receiver is an MQTT subscriber written with paho, standing in for a
// home-automation system. With a fixed id and a persistent session it
// gets, on reconnecting, what was published while it was away.
type receiver struct {
	c  paho.Client
	mu sync.Mutex
	ms []msg
}

func newReceiver(t *testing.T, b *mosquitto.Broker, id, filter string, persistent bool) *receiver {
	t.Helper()
	r := &receiver{}
	subscribed := make(chan struct{}, 16)
	opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).
		SetCleanSession(!persistent).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(100 * time.Millisecond).
		SetOrderMatters(true).
		SetOnConnectHandler(func(c paho.Client) {
			c.Subscribe(filter, 1, nil).WaitTimeout(5 * time.Second)
			subscribed <- struct{}{}
		}).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			r.mu.Lock()
			r.ms = append(r.ms, msg{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
			r.mu.Unlock()
		})
	r.c = paho.NewClient(opts)
	if tok := r.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("receiver connect: %v", tok.Error())
	}
	select {
	case <-subscribed:
	case <-time.After(deadline):
		t.Fatal("receiver did not subscribe")
	}
	t.Cleanup(r.close)
	return r
}

func (r *receiver) close() { r.c.Disconnect(0) }

// all returns every message received.
func (r *receiver) all() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ms)
}

// on returns the messages received on topic, in order.
func (r *receiver) on(topic string) []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []msg
	for _, m := range r.ms {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// events decodes the messages on topic.
func (r *receiver) events(t *testing.T, topic string) []Event {
	t.Helper()
	var out []Event
	for _, m := range r.on(topic) {
		var e Event
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			t.Fatalf("%s: %v: %s", topic, err, m.Payload)
		}
		out = append(out, e)
	}
	return out
}

// seqs lists the distinct seqs of events in arrival order; delivery is at
// least once, so a repeat is allowed but must not reorder.
func seqs(es []Event) ([]uint64, int) {
	seen := map[uint64]bool{}
	var out []uint64
	dups := 0
	for _, e := range es {
		if seen[e.Seq] {
			dups++
			continue
		}
		seen[e.Seq] = true
		out = append(out, e.Seq)
	}
	return out, dups
}

func alert(seq uint64, id, typ, sev, state string) Event {
	return Event{
		Type: typ, Seq: seq, AlertID: id, Site: "north-village", Edge: "edge-1", Source: "gate-3",
		Kind: "forced", Severity: sev, Priority: 1, State: state, Count: 1,
		Time:    time.Date(2026, 12, 7, 13, 0, 0, 0, time.FixedZone("CST", 8*3600)),
		Summary: fmt.Sprintf("gate-3 forced open (%d)", seq),
	}
}

func startBroker(t *testing.T) *mosquitto.Broker { return mosquitto.Start(t) }
