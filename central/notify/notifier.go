package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Drop reasons, the reason label of vigil_notify_dropped_total.
const (
	// DropQueueFull: the sink's queue was full (receiver down too long).
	DropQueueFull = "queue_full"
	// DropRejected: the receiver refused the event for good (a 4xx other
	// than 408 and 429); retrying would never succeed.
	DropRejected = "rejected"
	// DropShutdown: still queued when the notifier closed.
	DropShutdown = "shutdown"
)

var dropReasons = []string{DropQueueFull, DropRejected, DropShutdown}

// Options are the notifier's non-config settings; the zero value is the
// production default.
type Options struct {
	Logger *slog.Logger // default slog.Default()
	// BackoffMin and BackoffMax bound the wait between attempts to deliver
	// the same event: it doubles from min to max, each wait jittered
	// (default 1s and 60s).
	BackoffMin, BackoffMax time.Duration
	// DrainTimeout is how long Close keeps delivering what is queued
	// before it gives up on it (default 5s).
	DrainTimeout time.Duration
	// HTTPClient sends webhooks (default: a client with each webhook's
	// timeout). Tests pass one that trusts their TLS server.
	HTTPClient *http.Client
	// Now is the clock (default time.Now); tests pin it.
	Now func() time.Time
}

// Notifier sends every event to every configured sink (MQTT, webhooks),
// each with its own bounded queue and goroutine, so a slow or dead
// receiver delays nobody else and never the caller.
type Notifier struct {
	log   *slog.Logger
	opt   Options
	sinks []*sinkState

	mu      sync.RWMutex // Publish holds it for reading while it queues
	started bool
	closed  bool
	ctx     context.Context // Run's, until Close cancels it
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// sink is one receiver. deliver sends one event and returns nil only once
// the receiver acknowledged it; a *permanentError means retrying is
// pointless. Only the sink's own goroutine calls it.
type sink interface {
	deliver(ctx context.Context, e Event) error
	// close ends the sink's connection (the MQTT sink says "offline").
	close()
}

// permanentError is a refusal that retrying cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// sinkState is a sink with its queue, filter and counters.
type sinkState struct {
	name   string
	minSev int
	sink   sink
	q      *queue

	sent, failed atomic.Uint64
	dropped      map[string]*atomic.Uint64 // by reason; keys fixed at New
	dropLogged   atomic.Int64              // Unix ns of the last "queue full" log line
}

// New builds a notifier from a validated config, reading its secret
// files. It sends nothing until Run.
func New(cfg Config, opt Options) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.BackoffMin <= 0 {
		opt.BackoffMin = time.Second
	}
	if opt.BackoffMax <= 0 {
		opt.BackoffMax = time.Minute
	}
	opt.BackoffMax = max(opt.BackoffMax, opt.BackoffMin)
	if opt.DrainTimeout <= 0 {
		opt.DrainTimeout = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	n := &Notifier{log: opt.Logger.With("component", "notify"), opt: opt}
	add := func(name string, minSev int, s sink) {
		st := &sinkState{name: name, minSev: minSev, sink: s, q: newQueue(cfg.Queue), dropped: map[string]*atomic.Uint64{}}
		for _, r := range dropReasons {
			st.dropped[r] = new(atomic.Uint64)
		}
		n.sinks = append(n.sinks, st)
	}
	if cfg.MQTT != nil {
		s, err := newMQTTSink(*cfg.MQTT, n.log.With("sink", "mqtt"))
		if err != nil {
			return nil, err
		}
		add("mqtt", 0, s)
	}
	for i, w := range cfg.Webhooks {
		s, err := newWebhookSink(w, opt.HTTPClient, opt.Now)
		if err != nil {
			return nil, fmt.Errorf("notify.webhooks[%d].%w", i, err)
		}
		add(w.Name, severityRank(w.MinSeverity), s)
	}
	return n, nil
}

// Sinks lists the sinks' names, as in the metrics' sink label.
func (n *Notifier) Sinks() []string {
	out := make([]string, len(n.sinks))
	for i, s := range n.sinks {
		out[i] = s.name
	}
	return out
}

// Publish queues e for every sink that wants it and returns at once. A
// full queue drops its oldest non-red event (else its oldest), counted in
// vigil_notify_dropped_total{reason="queue_full"}. Times are sent in UTC;
// a zero Time is set to now.
func (n *Notifier) Publish(e Event) {
	e = e.normalised(n.opt.Now().UTC())
	// Held across the pushes so that Close, which sets closed under the
	// write lock, cannot count a queue empty while an event goes in.
	n.mu.RLock()
	defer n.mu.RUnlock()
	closed := n.closed
	for _, s := range n.sinks {
		if severityRank(e.Severity) < s.minSev {
			continue
		}
		if closed {
			s.dropped[DropShutdown].Add(1)
			continue
		}
		if d, ok := s.q.push(e); ok {
			total := s.dropped[DropQueueFull].Add(1)
			// A flood into a full queue logs once a second, with the
			// total; the counter has every drop.
			now, last := time.Now().UnixNano(), s.dropLogged.Load()
			if now-last >= int64(time.Second) && s.dropLogged.CompareAndSwap(last, now) {
				n.log.Warn("queue full, dropping events", "sink", s.name, "dropped_total", total,
					"alert", d.AlertID, "type", d.Type, "seq", d.Seq, "severity", d.Severity)
			}
		}
	}
}

// Run starts one goroutine per sink and returns. They deliver until ctx
// is done or Close is called; Close waits for them. Run may be called
// once.
func (n *Notifier) Run(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.closed {
		return errors.New("notify: Run called twice or after Close")
	}
	n.started = true
	ctx, n.cancel = context.WithCancel(ctx)
	n.ctx = ctx
	for _, s := range n.sinks {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.loop(ctx, s)
		}()
	}
	return nil
}

// Close stops taking events, keeps delivering what is queued for up to
// Options.DrainTimeout (unless Run's context already ended), then stops
// every sink's goroutine and waits for it. Events still queued are
// counted as dropped with reason "shutdown".
func (n *Notifier) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	started, ctx, cancel := n.started, n.ctx, n.cancel
	n.mu.Unlock()
	if started {
		deadline := time.Now().Add(n.opt.DrainTimeout)
		for n.queued() > 0 && ctx.Err() == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		n.wg.Wait()
	}
	for _, s := range n.sinks {
		if left := s.q.drain(); left > 0 {
			s.dropped[DropShutdown].Add(uint64(left))
			n.log.Warn("closed with undelivered events", "sink", s.name, "events", left)
		}
		if !started {
			s.sink.close()
		}
	}
}

// queued is the number of events waiting in all queues.
func (n *Notifier) queued() int {
	total := 0
	for _, s := range n.sinks {
		total += s.q.len()
	}
	return total
}

// loop delivers s's queue in order until ctx ends: the head is retried
// with capped, jittered exponential backoff until the receiver takes it
// or refuses it for good.
func (n *Notifier) loop(ctx context.Context, s *sinkState) {
	defer s.sink.close()
	log := n.log.With("sink", s.name)
	failures := 0 // consecutive failed attempts (on any event)
	for {
		e, ok := s.q.peek()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.q.ready:
				continue
			}
		}
		err := s.sink.deliver(ctx, e)
		if ctx.Err() != nil {
			s.q.release()
			return
		}
		var perm *permanentError
		switch {
		case err == nil:
			s.q.pop()
			s.sent.Add(1)
			if failures > 0 {
				log.Info("delivering again", "failed_attempts", failures)
			}
			failures = 0
			continue
		case errors.As(err, &perm):
			s.q.pop()
			s.failed.Add(1)
			s.dropped[DropRejected].Add(1)
			log.Error("receiver refused event, dropped", "alert", e.AlertID, "type", e.Type, "seq", e.Seq, "err", err)
			continue
		}
		s.q.release()
		s.failed.Add(1)
		failures++
		wait := backoff(n.opt.BackoffMin, n.opt.BackoffMax, failures)
		// Log the first failure and then every tenth, not every retry of
		// a receiver that is down for an hour.
		if failures == 1 || failures%10 == 0 {
			log.Warn("delivery failed, retrying", "failed_attempts", failures, "retry_in", wait.Round(time.Millisecond), "queued", s.q.len(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// backoff is the wait after the n-th consecutive failure (n ≥ 1): min
// doubled n-1 times, capped at max, then jittered down by up to half so
// many senders do not retry in step.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}
