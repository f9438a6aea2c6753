package central

import (
	"context"
	"net/http"
	"sync"
)

// lifecycle is what Close ends and waits for: the server's context, the
// background goroutines started under it (spawn) and the websocket
// handlers (http.Server does not wait for hijacked connections). Once it
// has ended it refuses new ones, so nothing starts behind Close's back.
type lifecycle struct {
	ctx    context.Context // cancelled by end; every websocket and goroutine watches it
	cancel context.CancelFunc

	mu      sync.Mutex
	ended   bool
	bg      sync.WaitGroup // goroutines started by spawn
	sockets sync.WaitGroup // websocket handlers
}

func newLifecycle() *lifecycle {
	l := &lifecycle{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// spawn runs f on a goroutine that Close waits for (before it closes the
// store); f must end once l.ctx is cancelled. Once Close has begun it
// refuses: f does not run and spawn returns false.
func (l *lifecycle) spawn(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return false
	}
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		f()
	}()
	return true
}

// socket wraps a websocket handler: Close waits for it, and once closing
// it answers 503 instead. serve gets the server's context.
func (l *lifecycle) socket(serve func(ctx context.Context, w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		ok := !l.ended
		if ok {
			l.sockets.Add(1)
		}
		l.mu.Unlock()
		if !ok {
			writeError(w, http.StatusServiceUnavailable, "", "central is shutting down")
			return
		}
		defer l.sockets.Done()
		serve(l.ctx, w, r)
	})
}

// end refuses new goroutines and sockets and cancels the context.
func (l *lifecycle) end() {
	l.mu.Lock()
	l.ended = true
	l.mu.Unlock()
	l.cancel()
}

// waitSockets waits for the websocket handlers (after end).
func (l *lifecycle) waitSockets() { l.sockets.Wait() }

// waitSpawned waits for the spawned goroutines (after end).
func (l *lifecycle) waitSpawned() { l.bg.Wait() }
