package engine

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/gates"
)

// TestReplayRebuildsStateQuietly: a grant and an SOS done before a crash
// are replayed quietly (OnReplayed, not OnAlert); the opening journaled
// after the grant but not done is then a passage, not forced, and the
// SOS is not raised again. A door left open by the past events raises its
// held-open alert at the machine time it was due (the past), once.
func TestReplayRebuildsStateQuietly(t *testing.T) {
	cfg := gates.Config{ID: "g", Name: "Gate", Arming: gates.Arming{Always: true},
		GrantGrace: 50 * time.Millisecond, GrantWindow: 10 * time.Second, Debounce: 20 * time.Millisecond, HeldOpenAfter: time.Hour, HeldOpenRedAfter: 2 * time.Hour}
	c := newCollector()
	var replayed []gates.Alert
	var doneSeqs []uint64
	doneCh := make(chan uint64, 10)
	e, err := New(Options{Gates: []gates.Config{cfg}, OnAlert: c.add, Registerer: prometheus.NewRegistry(),
		OnReplayed: func(a gates.Alert) { replayed = append(replayed, a) },
		OnDone:     func(seq uint64) { doneCh <- seq }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-3 * time.Second)
	e.Replay([]Past{
		{Seq: 1, At: t0, Event: gates.Event{Gate: "g", Device: "booth", Kind: gates.Button, Time: t0}},
		{Seq: 2, At: t0.Add(time.Second), Event: gates.Event{Gate: "g", Device: "reader", Kind: gates.Granted, Credential: "card-7", Time: t0.Add(time.Second)}},
	})
	if len(replayed) != 1 || replayed[0].Key != gates.CauseSOS || replayed[0].Seq != 1 {
		t.Fatalf("replayed outputs %+v, want the SOS of seq 1", replayed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); e.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	at := t0.Add(2 * time.Second)
	if err := e.SubmitRecord(ctx, 3, at, gates.Event{Gate: "g", Device: "contact", Kind: gates.Opened, Time: at}); err != nil {
		t.Fatal(err)
	}
	a := c.wait(t, 2*time.Second)
	if a.Key != gates.CausePassage || a.Credential != "card-7" || a.Seq != 3 {
		t.Fatalf("got %+v, want the passage of card-7 for seq 3", a)
	}
	doneSeqs = append(doneSeqs, <-doneCh)
	if doneSeqs[0] != 3 {
		t.Fatalf("done %v, want 3", doneSeqs)
	}
	time.Sleep(300 * time.Millisecond) // past the grace: nothing forced, no SOS again
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.alerts) != 0 {
		t.Fatalf("unexpected alerts after replay: %+v", c.alerts)
	}
}

// TestReplayPastTimersFireAtTheirTime: a door opened (done) long enough
// ago that its held-open limit passed raises held open once Run starts,
// as a timer output (no Seq) timed at the limit, not now.
func TestReplayPastTimersFireAtTheirTime(t *testing.T) {
	cfg := gates.Config{ID: "g", Name: "Gate", Arming: gates.Arming{Always: true},
		GrantGrace: 50 * time.Millisecond, Debounce: 20 * time.Millisecond, HeldOpenAfter: time.Second}
	c := newCollector()
	var replayed []gates.Alert
	e, err := New(Options{Gates: []gates.Config{cfg}, OnAlert: c.add, Registerer: prometheus.NewRegistry(),
		OnReplayed: func(a gates.Alert) { replayed = append(replayed, a) }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-5 * time.Second)
	e.Replay([]Past{
		{Seq: 1, At: t0, Event: gates.Event{Gate: "g", Device: "reader", Kind: gates.Granted, Credential: "c", Time: t0}},
		{Seq: 2, At: t0.Add(100 * time.Millisecond), Event: gates.Event{Gate: "g", Device: "contact", Kind: gates.Opened, Time: t0}},
	})
	for _, a := range replayed {
		if a.Key != gates.CausePassage {
			t.Fatalf("replay output %+v, want only the passage", a)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); e.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	a := c.wait(t, 2*time.Second)
	want := t0.Add(100 * time.Millisecond).Add(time.Second)
	if a.Key != gates.CauseHeldOpen || a.Seq != 0 || !a.Time.Equal(want) {
		t.Fatalf("got %+v, want held open at %v without Seq", a, want)
	}
}
