package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// liveWatch is one console watching the camera live on central's live
// websocket (as central/web/live.js does): for every fragment, when it
// arrived and how long after the camera's clock time of its first
// sample.
type liveWatch struct {
	mu       sync.Mutex
	arrivals []liveArrival
	ends     []time.Time // the connection ended (cut off or lost), then redialled
	lastErr  error
}

type liveArrival struct {
	at      time.Time
	latency time.Duration // arrival − the fragment's first sample (camera wall clock)
}

// watchLive watches until ctx ends, redialling whenever the connection
// ends.
func watchLive(ctx context.Context, api, cookie string) *liveWatch {
	w := &liveWatch{}
	go func() {
		for ctx.Err() == nil {
			err := w.session(ctx, api, cookie)
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.ends, w.lastErr = append(w.ends, time.Now()), err
			w.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return w
}

// session reads one connection until it ends.
func (w *liveWatch) session(ctx context.Context, api, cookie string) error {
	u := fmt.Sprintf("ws://%s/api/v1/live/%s/%s/ws", api, benchEdge, benchCamera)
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, http.Header{"Cookie": {cookie}})
	if err != nil {
		if resp != nil {
			return fmt.Errorf("live websocket: %s: %w", resp.Status, err)
		}
		return err
	}
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	defer ws.Close()
	for {
		mt, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		now := time.Now()
		if mt != websocket.BinaryMessage {
			continue // state messages
		}
		f, err := wire.UnmarshalLive(b)
		if err != nil {
			return err
		}
		if f.Kind != wire.LiveFragment || f.Time.IsZero() {
			continue
		}
		w.mu.Lock()
		w.arrivals = append(w.arrivals, liveArrival{at: now, latency: now.Sub(f.Time)})
		w.mu.Unlock()
	}
}

// liveStats is the live viewer's experience over one step.
type liveStats struct {
	Fragments int     `json:"fragments"`
	Latency   dist    `json:"latency"` // camera clock → arrival at the viewer
	Gap       dist    `json:"gap"`     // between consecutive arrivals
	Ends      int     `json:"connection_ends"`
	Rate      float64 `json:"fragments_per_s"`
}

// stats summarises the arrivals in from..to.
func (w *liveWatch) stats(from, to time.Time) liveStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lat, gaps []time.Duration
	var prev time.Time
	for _, a := range w.arrivals {
		if a.at.Before(from) || a.at.After(to) {
			continue
		}
		lat = append(lat, a.latency)
		if !prev.IsZero() {
			gaps = append(gaps, a.at.Sub(prev))
		}
		prev = a.at
	}
	st := liveStats{Fragments: len(lat), Latency: distOf(lat), Gap: distOf(gaps), Rate: float64(len(lat)) / to.Sub(from).Seconds()}
	for _, t := range w.ends {
		if !t.Before(from) && !t.After(to) {
			st.Ends++
		}
	}
	return st
}

// waitFlowing waits until fragments arrive.
func (w *liveWatch) waitFlowing(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		w.mu.Lock()
		n, err := len(w.arrivals), w.lastErr
		w.mu.Unlock()
		if n >= 8 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("live view: %d fragments within %v (last error: %v)", n, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
