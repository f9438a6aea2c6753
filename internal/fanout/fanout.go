// Package fanout hands every published value to every subscriber without
// ever blocking the publisher. It is the one broadcaster of the project:
// the console feed and the live view at central, the gate events of an
// edge's setup page. Nothing else keeps its own map of subscriber channels.
//
// Guarantees, whatever the policy:
//
//   - Publish never blocks (a subscriber's buffer is a buffered channel,
//     written only by Publish under the hub's lock) and never waits for a
//     subscriber to read.
//   - Each subscriber gets values in the order they were published (with
//     gaps where it dropped some); publishes from several goroutines are
//     ordered by the hub's lock.
//   - A slow subscriber never delays or costs anything to the others: what
//     happens to it is decided by the hub's Policy alone, and counted in its
//     Dropped counter (and the hub's drop hook, for metrics).
//   - A subscription ends exactly once: by Sub.Close, by the end of the
//     context it was made with, by the hub's Close, or (CloseSlow) by falling
//     behind. Then its channel C is closed after the values already in it,
//     Done is closed, and Err says why. A subscriber therefore never needs
//     to unsubscribe from inside a publish and never leaks a goroutine.
//   - After Close, Publish does nothing and Subscribe returns an ended
//     subscription.
package fanout

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Policy is what a hub does with a subscriber whose buffer is full when a
// value is published.
type Policy int

const (
	// DropNewest: the subscriber misses the value being published and stays
	// subscribed; it gets later values once it has made room. What it sees
	// is the published sequence with gaps. The zero Policy.
	DropNewest Policy = iota
	// DropOldest: the oldest value waiting in the subscriber's buffer is
	// discarded to make room, so a slow subscriber always holds the most
	// recent values. It stays subscribed.
	DropOldest
	// CloseSlow: the subscriber is cut off. Its channel is closed (after
	// the values already in it) and Err returns ErrSlow: what it received is
	// a gap-free run of what was published since it subscribed, and it must
	// resynchronise on its own (a console resumes from its cursor, a live
	// viewer reconnects).
	CloseSlow
)

func (p Policy) String() string {
	switch p {
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	case CloseSlow:
		return "close-slow"
	}
	return "policy(?)"
}

// Why a subscription ended (Sub.Err).
var (
	// ErrSlow: the subscriber fell behind a CloseSlow hub and was cut off.
	ErrSlow = errors.New("fanout: subscriber fell behind and was cut off")
	// ErrClosed: the hub was closed.
	ErrClosed = errors.New("fanout: hub closed")
	// ErrUnsubscribed: Sub.Close was called or the subscription's context
	// ended.
	ErrUnsubscribed = errors.New("fanout: unsubscribed")
)

// Option configures a hub made by New.
type Option func(*options)

type options struct {
	onDrop func()
}

// WithDropHook has f called for every value a subscriber misses (DropNewest,
// DropOldest) and for every subscriber cut off (CloseSlow); for metrics. It
// runs inside Publish with the hub's lock held: it must be quick and must
// not call the hub.
func WithDropHook(f func()) Option { return func(o *options) { o.onDrop = f } }

// Hub fans values of type T out to its subscribers under one Policy. Make
// it with New; the zero Hub is also ready to use, with policy DropNewest.
// A Hub must not be copied after first use.
type Hub[T any] struct {
	mu     sync.Mutex
	policy Policy
	onDrop func()
	subs   map[*Sub[T]]struct{}
	closed bool
}

// New makes a hub with the given policy.
func New[T any](policy Policy, opts ...Option) *Hub[T] {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return &Hub[T]{policy: policy, onDrop: o.onDrop}
}

// Policy is the hub's drop policy.
func (h *Hub[T]) Policy() Policy { return h.policy }

// SubOptions are the optional parts of a subscription (SubscribeWith).
type SubOptions[T any] struct {
	// Buffer is how many values may wait for the subscriber (at least 1,
	// and at least len(Initial)).
	Buffer int
	// Initial values are queued for this subscriber ahead of everything
	// published after it subscribed (a stored init segment, say).
	Initial []T
	// Filter, if not nil, is asked in Publish, for this subscriber alone,
	// whether it wants v: false skips v for it, which is not a drop. It
	// runs under the hub's lock, one call at a time, so it may keep
	// per-subscriber state without locking of its own; it must be quick
	// and must not call the hub.
	Filter func(v T) bool
}

// Subscribe adds a subscriber with room for buffer values (at least 1). It
// ends when ctx does (use context.Background and Sub.Close to end it
// explicitly), when the hub closes, or (CloseSlow) when it falls behind.
func (h *Hub[T]) Subscribe(ctx context.Context, buffer int) *Sub[T] {
	return h.SubscribeWith(ctx, SubOptions[T]{Buffer: buffer})
}

// SubscribeWith is Subscribe with initial values or a filter.
func (h *Hub[T]) SubscribeWith(ctx context.Context, o SubOptions[T]) *Sub[T] {
	n := max(o.Buffer, len(o.Initial), 1)
	s := &Sub[T]{hub: h, ch: make(chan T, n), done: make(chan struct{}), filter: o.Filter}
	for _, v := range o.Initial {
		s.ch <- v // fits: n >= len(Initial) and nobody else has s yet
	}
	h.mu.Lock()
	if h.closed {
		h.endLocked(s, ErrClosed)
		h.mu.Unlock()
		return s
	}
	if h.subs == nil {
		h.subs = map[*Sub[T]]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, s.Close)
		h.mu.Lock()
		if s.err == nil {
			s.stop = stop
		} else {
			stop() // already ended: forget ctx
		}
		h.mu.Unlock()
	}
	return s
}

// Publish hands v to every subscriber, applying the policy to those whose
// buffer is full, and returns how many subscribers v was queued for. It
// never blocks. After Close it does nothing.
func (h *Hub[T]) Publish(v T) (delivered int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.filter != nil && !s.filter(v) {
			continue
		}
		select {
		case s.ch <- v:
			delivered++
			continue
		default:
		}
		s.dropped.Add(1)
		if h.onDrop != nil {
			h.onDrop()
		}
		switch h.policy {
		case DropOldest:
			select {
			case <-s.ch:
			default: // the subscriber made room meanwhile
			}
			// Only Publish sends, under h.mu: there is room now.
			select {
			case s.ch <- v:
				delivered++
			default:
			}
		case CloseSlow:
			h.endLocked(s, ErrSlow)
		}
	}
	return delivered
}

// Len is the number of current subscribers.
func (h *Hub[T]) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close ends every subscription (Err: ErrClosed) and makes later Publish
// calls do nothing and later subscriptions end at once. Calling it again
// does nothing.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.endLocked(s, ErrClosed)
	}
}

// endLocked ends s with err; h.mu is held.
func (h *Hub[T]) endLocked(s *Sub[T], err error) {
	if s.err != nil {
		return
	}
	delete(h.subs, s)
	s.err = err
	close(s.ch)
	close(s.done)
	if s.stop != nil {
		s.stop() // does not wait for a running AfterFunc
		s.stop = nil
	}
}

// Sub is one subscription to a Hub.
type Sub[T any] struct {
	hub     *Hub[T]
	ch      chan T
	done    chan struct{}
	filter  func(T) bool
	dropped atomic.Uint64
	err     error       // why it ended; guarded by hub.mu
	stop    func() bool // forgets the context; guarded by hub.mu
}

// C delivers the values, in publish order. It is closed when the
// subscription ends, after the values already queued.
func (s *Sub[T]) C() <-chan T { return s.ch }

// Done is closed as soon as the subscription ends, even while values are
// still queued in C: a subscriber that must stop at once (a viewer cut
// off for being slow) selects on it.
func (s *Sub[T]) Done() <-chan struct{} { return s.done }

// Err is nil while the subscription lasts, then ErrSlow, ErrClosed or
// ErrUnsubscribed.
func (s *Sub[T]) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Dropped counts the values this subscriber missed: under DropNewest the
// values it never got, under DropOldest the queued values discarded for
// newer ones, under CloseSlow the one value that did not fit (so 0 or 1).
func (s *Sub[T]) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription (Err: ErrUnsubscribed) unless it has already
// ended. Safe to call more than once and from any goroutine.
func (s *Sub[T]) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.endLocked(s, ErrUnsubscribed)
}
