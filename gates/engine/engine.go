// Package engine runs the state machines of an edge's gates: one goroutine
// owns every machine, takes events from the adapters, fires the machines'
// timers at the instant they are due and hands each alert to the edge.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/wire"
)

// Errors Submit returns.
var (
	ErrUnknownGate = errors.New("unknown gate")
	ErrStopped     = errors.New("gate engine stopped")
)

// Options configure an Engine.
type Options struct {
	Gates []gates.Config
	// OnAlert receives every alert, in order, on the engine's goroutine;
	// it should hand the alert on (the edge's outbox) and return.
	OnAlert func(gates.Alert)
	// OnDone is called, on the engine's goroutine, after the machine step
	// of an event submitted with a sequence number (SubmitRecord) has
	// handed all its alerts to OnAlert.
	OnDone func(seq uint64)
	// OnReplayed receives, on the goroutine calling Replay, every output
	// of a replayed past event (and the timers that fired between them):
	// outputs already delivered before a restart, for the caller to
	// rebuild its own state from (which wire alert is open), not to send.
	OnReplayed func(gates.Alert)
	// Now is the clock (default time.Now); tests may slow or skew it.
	Now func() time.Time
	// Queue is how many events may wait for the engine (default 256);
	// Submit blocks beyond that, which slows adapters instead of losing events.
	Queue int
	Log   *slog.Logger
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Engine owns the machines of all gates.
type Engine struct {
	opts     Options
	log      *slog.Logger
	machines map[string]*gates.Machine
	order    []string // gate IDs in configuration order
	events   chan item
	last     time.Time // the machine clock of the latest step
	status   chan chan []gates.Status
	forget   chan forgetReq
	done     chan struct{}
	// snap is every gate's state as of the latest step, published by the
	// engine's goroutine (Replay's before Run) for Snapshot; arming is
	// each gate's schedule, to re-evaluate an old snapshot's arming.
	snap   atomic.Pointer[[]gates.Status]
	arming map[string]gates.Arming

	eventsTotal *prometheus.CounterVec
	alertsTotal *prometheus.CounterVec
}

// New builds a machine per gate; Run must be called to process events.
func New(opts Options) (*Engine, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.OnAlert == nil {
		opts.OnAlert = func(gates.Alert) {}
	}
	if opts.OnDone == nil {
		opts.OnDone = func(uint64) {}
	}
	if opts.OnReplayed == nil {
		opts.OnReplayed = func(gates.Alert) {}
	}
	e := &Engine{
		opts: opts, log: opts.Log.With("component", "gates"),
		machines: map[string]*gates.Machine{},
		arming:   map[string]gates.Arming{},
		events:   make(chan item, opts.Queue),
		status:   make(chan chan []gates.Status),
		forget:   make(chan forgetReq),
		done:     make(chan struct{}),
		eventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gate_events_total", Help: "Gate events taken by the state machines, by gate and type.",
		}, []string{"gate", "type"}),
		alertsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gate_alerts_total", Help: "Gate alerts and updates produced, by gate, cause and severity.",
		}, []string{"gate", "cause", "severity"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(e.eventsTotal); err != nil {
			return nil, fmt.Errorf("gates engine: metrics: %w", err)
		}
		if err := opts.Registerer.Register(e.alertsTotal); err != nil {
			return nil, fmt.Errorf("gates engine: metrics: %w", err)
		}
	}
	now := opts.Now()
	e.last = now
	for _, c := range opts.Gates {
		if _, dup := e.machines[c.ID]; dup {
			return nil, fmt.Errorf("gate %q is configured twice", c.ID)
		}
		m, err := gates.New(c, now)
		if err != nil {
			return nil, err
		}
		e.machines[c.ID] = m
		e.order = append(e.order, c.ID)
		e.arming[c.ID] = m.Config().Arming
	}
	e.publish()
	// Every gate's series exist from start-up, at 0 until they happen:
	// a rate or an alert rule ("no forced door in 5 minutes") then sees
	// the series before its first event.
	for _, id := range e.order {
		for _, k := range gates.Kinds() {
			e.eventsTotal.WithLabelValues(id, string(k)).Add(0)
		}
		for _, c := range gates.Causes() {
			for _, sev := range []wire.Severity{wire.Red, wire.Yellow, wire.Green} {
				e.alertsTotal.WithLabelValues(id, string(c), string(sev)).Add(0)
			}
		}
	}
	return e, nil
}

// item is an event on its way to a machine.
type item struct {
	ev  gates.Event
	seq uint64    // journal sequence number; 0: none
	at  time.Time // when it was received; zero: when the engine takes it
}

// Past is an event whose outputs were delivered before a restart: a
// journal record already done.
type Past struct {
	Seq   uint64
	At    time.Time // when it was received
	Event gates.Event
}

// Replay rebuilds the machines' state from past events, in order, before
// Run: each is stepped at its receipt time (the machine clock, clamped to
// never run backwards), so a grant given before a restart admits an
// opening journaled after it, and a door opened before it is known to be
// open. Their outputs, and those of the timers due between them, go to
// OnReplayed, not OnAlert: they were delivered already. When the first
// past event is older than the engine, the machines start over at its
// receipt time. Timers due after the last past event fire as usual once
// Run starts (a jump of the clock to now), raised without a sequence
// number as any timer output is, with the same times as before the
// restart. Invalid events and those of unknown gates are skipped. It must
// not be called once Run has started.
func (e *Engine) Replay(past []Past) {
	if len(past) == 0 {
		return
	}
	if start := past[0].At; !start.IsZero() && start.Before(e.last) {
		for _, c := range e.opts.Gates {
			if m, err := gates.New(c, start); err == nil {
				e.machines[c.ID] = m
			}
		}
		e.last = start
	}
	for _, p := range past {
		m := e.machines[p.Event.Gate]
		if m == nil || p.Event.Validate() != nil {
			continue
		}
		now := e.clock(p.At)
		for _, a := range m.Tick(now) {
			e.opts.OnReplayed(a)
		}
		for _, a := range m.Step(p.Event, now) {
			a.Seq = p.Seq
			e.opts.OnReplayed(a)
		}
	}
	e.publish()
}

// Submit queues an event for its gate's machine; it is a gates.Sink. It
// fails at once for an invalid event or an unknown gate.
func (e *Engine) Submit(ctx context.Context, ev gates.Event) error {
	return e.SubmitRecord(ctx, 0, time.Time{}, ev)
}

// SubmitRecord queues a journaled event: seq (non-zero) is passed to
// OnDone after its step, and its alerts carry it (Alert.Seq); at is when
// it was received, which the machine takes as the step's clock (not the
// moment the engine gets to it, so a backlog or a replay does not stretch
// a grant's grace), clamped to never run backwards.
func (e *Engine) SubmitRecord(ctx context.Context, seq uint64, at time.Time, ev gates.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if _, ok := e.machines[ev.Gate]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownGate, ev.Gate)
	}
	select {
	case <-e.done:
		return ErrStopped
	default:
	}
	select {
	case e.events <- item{ev: ev, seq: seq, at: at}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return ErrStopped
	}
}

// forgetReq asks the engine's goroutine to forget an open alert.
type forgetReq struct {
	gate, device string
	cause        gates.Cause
	reply        chan bool
}

// Forget drops gate's open alert of cause from device (gates.Machine.Forget)
// on the engine's goroutine: central says a guard closed it, so a
// recurrence raises a new alert. It reports whether one was open. The
// forgetting is not journaled: after a restart the replayed journal may
// fold into the closed alert again, and central then opens a new one for
// the recurrence itself (wire.AlertUpdate.Count).
func (e *Engine) Forget(ctx context.Context, gate string, cause gates.Cause, device string) (bool, error) {
	if _, ok := e.machines[gate]; !ok {
		return false, fmt.Errorf("%w %q", ErrUnknownGate, gate)
	}
	r := forgetReq{gate: gate, device: device, cause: cause, reply: make(chan bool, 1)}
	select {
	case e.forget <- r:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-e.done:
		return false, ErrStopped
	}
	select {
	case ok := <-r.reply:
		return ok, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Known reports whether gate is configured.
func (e *Engine) Known(gate string) bool { _, ok := e.machines[gate]; return ok }

// Status snapshots every gate, in configuration order.
func (e *Engine) Status(ctx context.Context) ([]gates.Status, error) {
	reply := make(chan []gates.Status, 1)
	select {
	case e.status <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.done:
		return nil, ErrStopped
	}
	select {
	case s := <-reply:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Snapshot is every gate's state, in configuration order, as the engine
// published it after its latest step, without a round trip to the
// engine's goroutine: it answers at once even while the engine waits
// (OnAlert blocked on a full queue) or has stopped. The arming is
// re-evaluated at the engine's clock now (a schedule window that began
// since the step arms the gate; a keypad override that ran out gives way
// to the schedule), as Status would say it. The slice is the caller's;
// its elements' Alerts, Devices and Override are shared and must not be
// modified.
func (e *Engine) Snapshot() []gates.Status {
	p := e.snap.Load()
	if p == nil {
		return nil
	}
	out := slices.Clone(*p)
	now := e.opts.Now()
	for i := range out {
		st := &out[i]
		if o := st.Override; o != nil && (o.Until.IsZero() || now.Before(o.Until)) {
			st.Armed = o.Armed
			continue
		}
		st.Override = nil
		st.Armed = e.arming[st.Gate].ArmedAt(now)
	}
	return out
}

// publish stores every gate's state for Snapshot; it runs on the goroutine
// that owns the machines (Run's, or Replay's before Run).
func (e *Engine) publish() {
	now := e.opts.Now()
	out := make([]gates.Status, 0, len(e.order))
	for _, id := range e.order {
		out = append(out, e.machines[id].Status(now))
	}
	e.snap.Store(&out)
}

// Run processes events and timers until ctx ends; it returns nil then.
// Events still queued when it stops are dropped (the adapters' sources
// resend: webhook callers get no 2xx, MQTT QoS 1 is not acknowledged).
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.arm(timer)
		select {
		case <-ctx.Done():
			return nil
		case it := <-e.events:
			ev := it.ev
			now := e.clock(it.at)
			e.eventsTotal.WithLabelValues(ev.Gate, string(ev.Kind)).Inc()
			// Never ev.Code: a keypad code is a secret.
			e.log.Debug("gate event", "gate", ev.Gate, "device", ev.Device, "type", ev.Kind, "sensor", ev.Sensor, "mode", ev.Mode, "source", ev.Source, "initial", ev.Initial)
			m := e.machines[ev.Gate]
			// Timers due by now fire first, as timer outputs (no Seq),
			// whether the engine's timer or an event gets there first.
			// The new state is published before the alerts are handed
			// on: OnAlert may wait (the edge's queue full), Snapshot not.
			ticks := m.Tick(now)
			alerts := m.Step(ev, now)
			for i := range alerts {
				alerts[i].Seq = it.seq
			}
			e.publish()
			e.emit(ticks)
			e.emit(alerts)
			if it.seq != 0 {
				e.opts.OnDone(it.seq)
			}
		case <-timer.C:
			now := e.clock(time.Time{})
			var alerts []gates.Alert
			for _, id := range e.order {
				alerts = append(alerts, e.machines[id].Tick(now)...)
			}
			e.publish()
			e.emit(alerts)
		case r := <-e.forget:
			r.reply <- e.machines[r.gate].Forget(r.cause, r.device)
		case reply := <-e.status:
			now := e.opts.Now()
			var out []gates.Status
			for _, id := range e.order {
				out = append(out, e.machines[id].Status(now))
			}
			reply <- out
		}
	}
}

// clock is the machine clock for an event received at at: at itself when
// it lies between the previous step and now, else the nearer bound.
func (e *Engine) clock(at time.Time) time.Time {
	now := e.opts.Now()
	if !at.IsZero() && at.Before(now) {
		now = at
	}
	if now.Before(e.last) {
		now = e.last
	}
	e.last = now
	return now
}

// arm sets the timer to the earliest machine deadline.
func (e *Engine) arm(timer *time.Timer) {
	var next time.Time
	found := false
	for _, m := range e.machines {
		if t, ok := m.Next(); ok && (!found || t.Before(next)) {
			next, found = t, true
		}
	}
	if !found {
		timer.Stop()
		return
	}
	timer.Reset(max(0, next.Sub(e.opts.Now())))
}

func (e *Engine) emit(alerts []gates.Alert) {
	for _, a := range alerts {
		e.alertsTotal.WithLabelValues(a.Gate, string(a.Key), string(a.Severity)).Inc()
		e.log.Info("gate alert", "gate", a.Gate, "cause", a.Key, "device", a.Device, "severity", a.Severity, "count", a.Count, "update", a.Update, "cleared", a.Cleared, "summary", a.Summary)
		e.opts.OnAlert(a)
	}
}
