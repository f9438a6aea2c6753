package main

import (
	"context"
	"sync/atomic"
	"time"
)

// viewer is one console playing back the camera at 1×: it asks for the
// next window when `ahead` of video is left in its buffer, as a player
// keeps its buffer topped up, each window from where the last one ended.
type viewer struct {
	c     *client
	sess  session
	start time.Time // media (wall) time where it starts playing
	// bytes counts what arrived, as it arrives (for the step's Mbit/s).
	bytes atomic.Int64

	windows, errors int
	firstErr        string
	first           time.Duration   // request → first fragment of its first window
	times           []time.Duration // request → whole window, windows after the first
	// worstLag is the most its playback was behind: the arrival of a
	// window minus the moment its predecessors' media ran out plus the
	// buffer (> 0: it stalled).
	worstLag time.Duration
}

// countTo adds what it is written to n.
type countTo struct{ n *atomic.Int64 }

func (c countTo) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// run plays from begin until no window is due before until. Playback (the
// 1× clock) starts when the first window has arrived whole; the start
// itself is the startup part's measure (here: first, under load).
func (v *viewer) run(ctx context.Context, o options, begin, until time.Time) {
	if !sleepUntil(ctx, begin) {
		return
	}
	next := v.start
	var played time.Time // when playback began; zero until the first window arrived
	var received time.Duration
	for ctx.Err() == nil {
		due := time.Now()
		if !played.IsZero() {
			due = played.Add(received - o.ahead)
		}
		if !due.Before(until) || !sleepUntil(ctx, due) {
			return
		}
		t0 := time.Now()
		f, err := v.c.fetch(ctx, videoPath(v.sess.ID, next, next.Add(o.window), false), t0, countTo{&v.bytes})
		done := time.Now()
		if !played.IsZero() {
			v.worstLag = max(v.worstLag, v.lag(done, until, played, received, o.buffer))
		}
		if err != nil {
			v.errors++
			if v.firstErr == "" {
				v.firstErr = err.Error()
			}
			if !done.Before(until) {
				return
			}
			sleepUntil(ctx, done.Add(200*time.Millisecond)) // then ask again, as a player would
			continue
		}
		if played.IsZero() {
			played, v.first = done, f.firstFrag
		} else {
			v.times = append(v.times, f.total)
		}
		end := f.end
		if !end.After(next) {
			end = next.Add(o.window)
		}
		received, next = end.Sub(v.start), end
		v.windows++
	}
}

// lag is how far playback is behind at `at` (at most until): the time
// since it began, less the media received and the buffer (> 0: stalled).
func (v *viewer) lag(at, until, played time.Time, received, buffer time.Duration) time.Duration {
	if at.After(until) {
		at = until
	}
	return at.Sub(played) - received - buffer
}

// keptUp reports whether the viewer played through without a stall (a
// failed request it asked again in time does not count).
func (v *viewer) keptUp() bool { return v.windows > 0 && v.worstLag <= 0 }

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
