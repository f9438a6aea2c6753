// Package repeats tells a first occurrence from its repeats within a
// window: the audit logs of central and of the edge record a view once
// per window per viewer and thing, not every poll of a console.
package repeats

import (
	"sync"
	"time"
)

// maxKeys bounds the memory: past it, keys older than the window are
// swept at the next First.
const maxKeys = 10000

// Window remembers when each key was last let through. The zero value is
// not usable; make one with New. It is safe for concurrent use.
type Window struct {
	span time.Duration
	mu   sync.Mutex
	seen map[string]time.Time // key → when let through
}

// New returns a window of span.
func New(span time.Duration) *Window {
	return &Window{span: span, seen: map[string]time.Time{}}
}

// First reports whether key was not let through within the window before
// now, and if so notes it.
func (w *Window) First(key string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t, ok := w.seen[key]; ok && now.Sub(t) < w.span {
		return false
	}
	if len(w.seen) > maxKeys {
		for k, t := range w.seen {
			if now.Sub(t) >= w.span {
				delete(w.seen, k)
			}
		}
	}
	w.seen[key] = now
	return true
}

// Forget drops key (its recording failed: the next occurrence tries again).
func (w *Window) Forget(key string) {
	w.mu.Lock()
	delete(w.seen, key)
	w.mu.Unlock()
}
