package central

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-perimeter/vigil/central/notify"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

// eventLog collects events a receiver got, in arrival order.
type eventLog struct {
	mu  sync.Mutex
	evs []notify.Event
}

func (l *eventLog) add(b []byte) error {
	var e notify.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return err
	}
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
	return nil
}

func (l *eventLog) get() []notify.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]notify.Event(nil), l.evs...)
}

// signedWebhook is a generic webhook receiver that verifies signatures
// and answers 503 to its first down requests (down, then up).
func signedWebhook(t *testing.T, secret []byte, down int) (*httptest.Server, *eventLog) {
	log := &eventLog{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, r.Header.Get("X-Vigil-Timestamp"), r.Header.Get("X-Vigil-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		refuse := down > 0
		down--
		mu.Unlock()
		if refuse {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := log.add(body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

// Raise, escalate, acknowledge, resolve: the events reach a real broker
// and a signed webhook in order; the webhook being down at first loses
// nothing.
func TestNotifyEndToEnd(t *testing.T) {
	broker := mosquitto.Start(t)
	secret := []byte("webhook-secret")
	secretFile := filepath.Join(t.TempDir(), "hook.key")
	if err := os.WriteFile(secretFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	hook, hooked := signedWebhook(t, secret, 2)

	sub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("test-sub").SetAutoReconnect(false))
	if tok := sub.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	t.Cleanup(func() { sub.Disconnect(0) })
	mqtt := &eventLog{}
	if tok := sub.Subscribe("vigil/alerts", 1, func(_ paho.Client, m paho.Message) {
		if err := mqtt.add(m.Payload()); err != nil {
			t.Errorf("mqtt payload: %v", err)
		}
	}); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	cfg := testConfig(t.TempDir())
	after := config.Duration(300 * time.Millisecond)
	cfg.Alarms.EscalateAfter = &after
	cfg.Notify = &notify.Config{
		MQTT:     &notify.MQTTConfig{URL: broker.URL(), ClientID: "vigil-central-test", Timeout: config.Duration(2 * time.Second)},
		Webhooks: []notify.WebhookConfig{{Name: "soc", URL: hook.URL, SecretFile: secretFile}},
	}
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	e := connectEdge(t, s, northID, northToken)
	guard := signIn(t, s, "nora", RoleGuard)
	e.sendAlert(forcedAlert("n-1"))
	eventually(t, "escalation", func() bool { r, err := s.store.Get("n-1"); return err == nil && !r.EscalatedAt.IsZero() })
	for _, step := range []string{"acknowledge", "resolve"} {
		if resp, body := guard.do(http.MethodPost, "/api/v1/alerts/n-1/"+step, map[string]string{"note": "done"}); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", step, resp.StatusCode, body)
		}
	}

	want := []struct{ typ, state, prev, by string }{
		{notify.TypeNew, StateRaised, "", ""},
		{notify.TypeEscalated, StateRaised, "", actorSystem},
		{notify.TypeState, StateAcknowledged, StateRaised, "nora"},
		{notify.TypeState, StateResolved, StateAcknowledged, "nora"},
	}
	for name, got := range map[string]*eventLog{"mqtt": mqtt, "webhook": hooked} {
		deadline := time.Now().Add(15 * time.Second)
		for len(got.get()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		evs := got.get()
		if len(evs) != len(want) {
			t.Fatalf("%s: %d events, want %d: %+v", name, len(evs), len(want), evs)
		}
		for i, w := range want {
			ev := evs[i]
			if ev.Type != w.typ || ev.State != w.state || ev.PrevState != w.prev || ev.By != w.by || ev.AlertID != "n-1" ||
				ev.Priority != 2 || ev.Count != 1 || ev.Summary == "" || ev.Severity != "red" || (i > 0 && ev.Seq <= evs[i-1].Seq) {
				t.Errorf("%s event %d: %+v, want %+v", name, i, ev, w)
			}
		}
	}
	if v := metricValue(t, s, "vigil_notify_failed_attempts_total", "sink", "soc"); v < 2 {
		t.Errorf("webhook failures counted: %v", v)
	}
}
