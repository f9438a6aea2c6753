package notify

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

// TestMQTTTopicsAndPayloads publishes an alert's life through a real
// mosquitto and reads it back with paho, as a home-automation system
// would.
func TestMQTTTopicsAndPayloads(t *testing.T) {
	b := mosquitto.Start(t)
	all := newReceiver(t, b, "all", "vigil/#", false)
	n := start(t, Config{MQTT: mqttConfig(b)}, testOptions(t))

	for _, name := range []string{"vigil_notify_sent_total", "vigil_notify_failed_attempts_total", "vigil_notify_queue_depth"} {
		if v := metric(t, n, name, map[string]string{"sink": "mqtt"}); v != 0 {
			t.Errorf("%s = %v before anything was sent", name, v)
		}
	}
	for _, r := range dropReasons {
		if v := metric(t, n, "vigil_notify_dropped_total", map[string]string{"sink": "mqtt", "reason": r}); v != 0 {
			t.Errorf("dropped{%s} = %v at start", r, v)
		}
	}

	a := alert(1, "a1", TypeNew, SeverityRed, StateNew)
	a.SummaryZH = "3号门被强行打开"
	a.SnapshotURL = "https://central.example/alerts/a1"
	ack := alert(2, "a1", TypeState, SeverityRed, StateAcknowledged)
	ack.PrevState, ack.By, ack.StateTime = StateNew, "alice", a.Time.Add(time.Minute)
	esc := alert(3, "a2/x+#", TypeEscalated, SeverityRed, StateNew) // hostile id: must stay one topic level
	done := alert(4, "a1", TypeState, SeverityRed, StateResolved)
	done.PrevState, done.By = StateAcknowledged, "bob"
	open := alert(5, "a3", TypeNew, SeverityYellow, StateNew)
	open.Kind = "motion"
	for _, e := range []Event{a, ack, esc, done, open} {
		n.Publish(e)
	}

	top := Topics{Prefix: "vigil"}
	waitUntil(t, "5 events on vigil/alerts", func() bool { return len(all.on(top.Alerts())) >= 5 })
	got := all.events(t, top.Alerts())
	if s, dups := seqs(got); !slices.Equal(s, []uint64{1, 2, 3, 4, 5}) || dups != 0 {
		t.Fatalf("seqs on %s: %v (%d repeated), want 1..5 once each", top.Alerts(), s, dups)
	}

	// The payload is snake_case JSON with a version, times in UTC.
	var raw map[string]any
	if err := json.Unmarshal(all.on(top.Alerts())[1].Payload, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": 1.0, "type": "state", "seq": 2.0, "alert_id": "a1", "site": "north-village",
		"edge": "edge-1", "source": "gate-3", "kind": "forced", "severity": "red", "priority": 1.0,
		"state": "acknowledged", "prev_state": "new", "count": 1.0, "by": "alice",
		"time": "2026-12-07T05:00:00Z", "state_time": "2026-12-07T05:01:00Z",
		"summary": "gate-3 forced open (2)",
	}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("payload[%q] = %#v, want %#v", k, raw[k], v)
		}
	}
	for k := range raw {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %q = %v", k, raw[k])
		}
	}
	if got[0].SummaryZH != a.SummaryZH || got[0].SnapshotURL != a.SnapshotURL {
		t.Errorf("first event lost summary_zh/snapshot_url: %+v", got[0])
	}

	// Per-alert state topics; the hostile id is one level.
	escTopic := "vigil/alerts/north-village/a2_x__/state"
	if top.State(esc.Site, esc.AlertID) != escTopic {
		t.Fatalf("state topic %q", top.State(esc.Site, esc.AlertID))
	}
	waitUntil(t, "escalation on its state topic", func() bool { return len(all.on(escTopic)) == 1 })
	a1 := all.on(top.State("north-village", "a1"))
	waitUntil(t, "a1's state messages", func() bool { a1 = all.on(top.State("north-village", "a1")); return len(a1) == 4 })
	if len(a1[3].Payload) != 0 || len(a1[2].Payload) == 0 {
		t.Errorf("a resolved alert's state topic should get the event then an empty (clearing) message, got %q, %q", a1[2].Payload, a1[3].Payload)
	}
	if on := all.on(top.Available()); len(on) == 0 || string(on[0].Payload) != AvailableOnline {
		t.Errorf("%s: %v, want online", top.Available(), on)
	}

	// A subscriber that comes later sees the open alerts' states and
	// availability, retained; the resolved alert is gone.
	late := newReceiver(t, b, "late", "vigil/#", false)
	late.c.Publish("vigil/zz-marker", 1, false, "m").WaitTimeout(5 * time.Second)
	waitUntil(t, "marker", func() bool { return len(late.on("vigil/zz-marker")) == 1 })
	var retained []string
	for _, m := range late.all() {
		if m.Retained {
			retained = append(retained, m.Topic+"="+string(m.Payload[:min(len(m.Payload), 24)]))
		}
	}
	slices.Sort(retained)
	wantRetained := []string{
		"vigil/alerts/north-village/a2_x__/state={\"version\":1,\"type\":\"esc",
		"vigil/alerts/north-village/a3/state={\"version\":1,\"type\":\"new",
		"vigil/available=online",
	}
	if !slices.Equal(retained, wantRetained) {
		t.Errorf("retained messages:\n%q\nwant\n%q", retained, wantRetained)
	}
	waitUntil(t, "the queue to empty", func() bool { return stats(t, n, "mqtt").Queued == 0 })
	if v := metric(t, n, "vigil_notify_sent_total", map[string]string{"sink": "mqtt"}); v != 5 {
		t.Errorf("sent = %v, want 5", v)
	}

	// Closing says offline, retained.
	n.Close()
	waitUntil(t, "offline", func() bool {
		av := all.on(top.Available())
		return len(av) > 0 && string(av[len(av)-1].Payload) == AvailableOffline
	})
}

// TestMQTTBrokerDown takes the broker down, publishes 50 events, brings it
// back on the same port and checks that all 50 arrive, in order.
func TestMQTTBrokerDown(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Persistent())
	// A persistent session: the broker keeps what arrives for the
	// receiver while it is reconnecting, so the test does not race it.
	r := newReceiver(t, b, "soc", "vigil/alerts", true)
	n := start(t, Config{MQTT: mqttConfig(b)}, testOptions(t))

	n.Publish(alert(1, "warmup", TypeNew, SeverityGreen, StateNew))
	waitUntil(t, "warm-up event", func() bool { return len(r.on("vigil/alerts")) == 1 })

	b.Stop()
	for i := range 50 {
		sev := SeverityYellow
		if i%7 == 0 {
			sev = SeverityRed
		}
		n.Publish(alert(uint64(100+i), "down", TypeUpdate, sev, StateNew))
	}
	waitUntil(t, "failed attempts while the broker is down", func() bool { return stats(t, n, "mqtt").FailedAttempts >= 3 })
	if q := metric(t, n, "vigil_notify_queue_depth", map[string]string{"sink": "mqtt"}); q != 50 {
		t.Errorf("queue depth %v while down, want 50", q)
	}
	b.Start()

	waitUntil(t, "all 50 after the restart", func() bool {
		s, _ := seqs(r.events(t, "vigil/alerts"))
		return len(s) >= 51
	})
	waitUntil(t, "the queue to empty", func() bool { return stats(t, n, "mqtt").Queued == 0 })
	s, dups := seqs(r.events(t, "vigil/alerts"))
	want := []uint64{1}
	for i := range 50 {
		want = append(want, uint64(100+i))
	}
	if !slices.Equal(s, want) {
		t.Fatalf("arrived %v\nwant %v", s, want)
	}
	st := stats(t, n, "mqtt")
	t.Logf("after the outage: %+v, %d repeated", st, dups)
	if st.Sent != 51 || st.Queued != 0 || st.Dropped[DropQueueFull] != 0 {
		t.Errorf("stats %+v, want 51 sent, none queued or dropped", st)
	}
	if v := metric(t, n, "vigil_notify_failed_attempts_total", map[string]string{"sink": "mqtt"}); v < 3 {
		t.Errorf("failed attempts metric %v", v)
	}
}

// TestQueueBound fills a 10-event queue while the receiver is away: 20
// are dropped, oldest non-red first, so every red one is delivered.
func TestQueueBound(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Persistent())
	r := newReceiver(t, b, "soc", "vigil/alerts", true)
	b.Stop()
	n := start(t, Config{MQTT: mqttConfig(b), Queue: 10}, testOptions(t))

	var reds []uint64
	for i := range 30 {
		sev := SeverityGreen
		if i%5 == 2 {
			sev = SeverityRed
			reds = append(reds, uint64(i))
		}
		n.Publish(alert(uint64(i), "flood", TypeUpdate, sev, StateNew))
	}
	st := stats(t, n, "mqtt")
	if st.Dropped[DropQueueFull] != 20 || st.Queued != 10 {
		t.Fatalf("after 30 into a queue of 10: %+v, want 20 dropped, 10 queued", st)
	}
	if v := metric(t, n, "vigil_notify_dropped_total", map[string]string{"sink": "mqtt", "reason": DropQueueFull}); v != 20 {
		t.Errorf("dropped metric %v", v)
	}
	b.Start()
	waitUntil(t, "the 10 kept events", func() bool { s, _ := seqs(r.events(t, "vigil/alerts")); return len(s) >= 10 })
	got, _ := seqs(r.events(t, "vigil/alerts"))
	if !slices.IsSorted(got) || len(got) != 10 {
		t.Fatalf("delivered %v: want 10, in order", got)
	}
	for _, red := range reds {
		if !slices.Contains(got, red) {
			t.Errorf("red event %d was dropped (delivered %v)", red, got)
		}
	}
}

func TestQueuePolicy(t *testing.T) {
	ev := func(seq uint64, sev string) Event { return Event{Seq: seq, Severity: sev} }
	q := newQueue(3)
	q.push(ev(1, SeverityGreen))
	if e, _ := q.peek(); e.Seq != 1 {
		t.Fatal("peek")
	}
	q.push(ev(2, SeverityRed))
	q.push(ev(3, SeverityYellow))
	// Full, head in flight: the oldest non-red not in flight is 3.
	if d, ok := q.push(ev(4, SeverityRed)); !ok || d.Seq != 3 {
		t.Fatalf("dropped %v %v, want 3", d, ok)
	}
	// Only reds left besides the head: the new green one goes.
	if d, ok := q.push(ev(5, SeverityGreen)); !ok || d.Seq != 5 {
		t.Fatalf("dropped %v %v, want 5 (itself)", d, ok)
	}
	// A new red with only reds: the oldest red not in flight goes.
	if d, ok := q.push(ev(6, SeverityRed)); !ok || d.Seq != 2 {
		t.Fatalf("dropped %v %v, want 2", d, ok)
	}
	q.pop()
	var left []uint64
	for {
		e, ok := q.peek()
		if !ok {
			break
		}
		left = append(left, e.Seq)
		q.pop()
	}
	if !slices.Equal(left, []uint64{4, 6}) {
		t.Fatalf("left %v", left)
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 20; n++ {
		d := backoff(time.Second, time.Minute, n)
		hi := min(time.Second<<(n-1), time.Minute)
		if d < hi/2 || d > hi {
			t.Errorf("attempt %d: %v outside [%v, %v]", n, d, hi/2, hi)
		}
	}
}
