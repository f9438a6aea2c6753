package edge

import (
	"context"
	"errors"
	"sync"

	"github.com/vigil-perimeter/vigil/edge/outbox"
)

// tasks are the node's goroutines: each watches ctx, which ends when
// Close begins, and Close waits for them all (wait).
type tasks struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closing bool // stop has been called: spawn refuses
}

func newTasks() *tasks {
	t := &tasks{}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// spawn runs f on a goroutine that wait waits for; f must end once ctx
// ends. Once stop has been called it refuses: f does not run and spawn
// returns false.
func (t *tasks) spawn(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// stop refuses new goroutines and ends ctx.
func (t *tasks) stop() {
	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
	t.cancel()
}

// wait waits for every goroutine spawn started.
func (t *tasks) wait() { t.wg.Wait() }

// errNodeClosed is what a write to the outbox gets after Close.
var errNodeClosed = errors.New("edge: node closed")

// guardedBox is the outbox guarded against Close: writers that may run
// while the node closes (an alert raised on the alert owner, an access
// record from a request) use it through use; Close closes it once they
// are done.
type guardedBox struct {
	mu     sync.RWMutex
	box    *outbox.Outbox // set once it is open
	closed bool
}

// use runs f with the outbox, unless close has closed it
// (errNodeClosed); close waits for f to return.
func (b *guardedBox) use(f func(*outbox.Outbox) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errNodeClosed
	}
	return f(b.box)
}

// close closes the outbox once every use has returned.
func (b *guardedBox) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.box.Close()
}
