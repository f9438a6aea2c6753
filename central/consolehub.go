package central

import (
	"sync"
)

// consoleQueue bounds the live records waiting for one console. A console
// that falls this far behind is cut off and catches up by reconnecting with
// its cursor, which costs it nothing and never slows anyone else down.
const consoleQueue = 256

// consoleHub fans new records out to subscribed consoles. publish never
// blocks: it only does non-blocking channel sends under its lock.
type consoleHub struct {
	met   *metrics
	queue int // per-subscriber capacity; consoleQueue except in tests

	mu   sync.Mutex
	subs map[*consoleSub]struct{}
}

// consoleSub is one console's live feed.
type consoleSub struct {
	records chan Record   // live records in sequence order
	dropped chan struct{} // closed when the hub cut the console off
}

func newConsoleHub(met *metrics, queue int) *consoleHub {
	return &consoleHub{met: met, queue: queue, subs: map[*consoleSub]struct{}{}}
}

func (h *consoleHub) subscribe() *consoleSub {
	sub := &consoleSub{records: make(chan Record, h.queue), dropped: make(chan struct{})}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub
}

func (h *consoleHub) unsubscribe(sub *consoleSub) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// publish hands rec to every console. Callers publish in sequence order,
// which lets each console skip what its backlog already covered.
func (h *consoleHub) publish(rec Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.records <- rec:
		default:
			delete(h.subs, sub)
			close(sub.dropped)
			h.met.consoleDropped.Inc()
		}
	}
}

// count returns the number of subscribed consoles.
func (h *consoleHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
