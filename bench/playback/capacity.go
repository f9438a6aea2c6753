package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// stepResult is one viewer count's figures.
type stepResult struct {
	Viewers    int     `json:"viewers"`
	KeepingUp  int     `json:"keeping_up"`
	Windows    int     `json:"windows"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	WorstLagMs float64 `json:"worst_lag_ms"` // > 0: some viewer stalled this long beyond its buffer
	StartUnder dist    `json:"first_fragment_under_load"`
	WindowTime dist    `json:"window_time"` // request → whole 10 s window, after the first
	Mbps       float64 `json:"mbit_per_s"`  // bytes delivered to all viewers in the step
	ServerCPU  float64 `json:"server_cpu_pct"`
	ClientCPU  float64 `json:"client_cpu_pct"`
	// OthersCPU is every other process on the machine in the step (the
	// shared machine's noise); StealCPU what the hypervisor took.
	OthersCPU float64   `json:"others_cpu_pct"`
	StealCPU  float64   `json:"steal_cpu_pct"`
	Live      liveStats `json:"live"`
	// Ratios of the live viewer's p99 latency and gap to N = 0's.
	LatencyRatio float64 `json:"live_p99_latency_ratio"`
	GapRatio     float64 `json:"live_p99_gap_ratio"`
	EdgeDrops    float64 `json:"edge_live_dropped"`
	CentralCuts  float64 `json:"central_live_viewers_cut"`
	// RTPLost and RecordingDropped say the camera's own stream into the
	// edge was disturbed (shown, not part of "live unaffected").
	RTPLost          float64 `json:"camera_rtp_lost"`
	RecordingDropped float64 `json:"recording_dropped"`
	Unaffected       bool    `json:"live_unaffected"`
}

// capacityResult is the capacity part's figures.
type capacityResult struct {
	Alone stepResult `json:"live_alone"`
	// AloneAgain is live alone once more after the ladder: how far the
	// machine's noise alone moves the live figures.
	AloneAgain *stepResult  `json:"live_alone_again,omitempty"`
	Steps      []stepResult `json:"steps"`
	Skipped    []int        `json:"skipped,omitempty"` // counts not run (time budget)
	// MaxViewers is the largest N with every viewer keeping up and live
	// unaffected; MaxKeepingUp the largest with every viewer keeping up.
	MaxViewers   int `json:"max_viewers"`
	MaxKeepingUp int `json:"max_keeping_up"`
}

// unaffectedRatio bounds the live viewer's p99 latency and gap against
// N = 0 for live view to count as unaffected.
const unaffectedRatio = 1.25

// measureCapacity runs live alone, then the ladder of viewer counts with
// the live viewer watching throughout, until a step has a viewer falling
// behind or the time budget is spent.
func measureCapacity(ctx context.Context, e *env, o options, began time.Time) (capacityResult, error) {
	var res capacityResult
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	live := watchLive(lctx, e.ready.Central, e.guard.cookie)
	if err := live.waitFlowing(ctx, 20*time.Second); err != nil {
		return res, err
	}
	time.Sleep(2 * time.Second) // past the first key fragment's catch-up
	var err error
	fmt.Fprintf(os.Stderr, "capacity: live alone for %v …\n", o.step)
	if res.Alone, err = runStep(ctx, e, o, 0, live, nil); err != nil {
		return res, err
	}
	for i, n := range o.ladder {
		if time.Since(began) > o.budget {
			res.Skipped = o.ladder[i:]
			break
		}
		fmt.Fprintf(os.Stderr, "capacity: %d playback viewers for %v …\n", n, o.step)
		st, err := runStep(ctx, e, o, n, live, &res.Alone)
		if err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, st)
		if st.KeepingUp < n {
			res.Skipped = o.ladder[i+1:]
			break
		}
		res.MaxKeepingUp = n
	}
	res.MaxViewers = maxUnbroken(res.Steps)
	if time.Since(began) < o.budget+o.step {
		fmt.Fprintf(os.Stderr, "capacity: live alone again for %v …\n", o.step)
		again, err := runStep(ctx, e, o, 0, live, &res.Alone)
		if err != nil {
			return res, err
		}
		res.AloneAgain = &again
	}
	return res, nil
}

// maxUnbroken is the largest N such that it and every smaller step had
// every viewer keeping up and live unaffected.
func maxUnbroken(steps []stepResult) int {
	best := 0
	for _, st := range steps {
		if st.KeepingUp < st.Viewers || !st.Unaffected {
			break
		}
		best = st.Viewers
	}
	return best
}

// runStep plays n viewers for o.step (none: the live viewer alone) and
// measures them, the live viewer and the server's CPU. alone is the
// N = 0 step to compare the live viewer with (nil for N = 0 itself).
func runStep(ctx context.Context, e *env, o options, n int, live *liveWatch, alone *stepResult) (stepResult, error) {
	st := stepResult{Viewers: n}
	viewers, err := openViewers(ctx, e, o, n)
	defer closeViewers(ctx, e, viewers)
	if err != nil {
		return st, err
	}
	d0, err := e.readDrops(ctx)
	if err != nil {
		return st, err
	}
	vctx, cancel := context.WithTimeout(ctx, o.step+time.Minute)
	defer cancel()
	t0 := time.Now()
	until := t0.Add(o.step)
	var wg sync.WaitGroup
	for j, v := range viewers {
		// Spread over the first window: viewers click at different moments.
		begin := t0.Add(time.Duration(j) * o.window / time.Duration(n))
		wg.Add(1)
		go func() { defer wg.Done(); v.run(vctx, o, begin, until) }()
	}
	m0 := markCPU(e.serverPid())
	sleepUntil(ctx, until)
	m1 := markCPU(e.serverPid())
	var delivered int64
	for _, v := range viewers {
		delivered += v.bytes.Load()
	}
	wg.Wait()
	use := m1.since(m0)
	st.ServerCPU, st.ClientCPU, st.OthersCPU, st.StealCPU = use.server, use.client, use.others, use.steal
	st.Mbps = float64(delivered) * 8 / 1e6 / m1.at.Sub(t0).Seconds()
	st.Live = live.stats(t0, until)
	d1, err := e.readDrops(ctx)
	if err != nil {
		return st, err
	}
	st.EdgeDrops, st.CentralCuts = d1.live-d0.live, d1.cut-d0.cut
	st.RTPLost, st.RecordingDropped = d1.rtpLost-d0.rtpLost, d1.recorded-d0.recorded
	st.summarise(viewers, alone)
	return st, nil
}

// summarise fills in the viewers' figures and compares live view with
// the step alone.
func (st *stepResult) summarise(viewers []*viewer, alone *stepResult) {
	var firsts, times []time.Duration
	worst := -time.Hour
	for _, v := range viewers {
		st.Windows += v.windows
		st.Errors += v.errors
		if st.FirstError == "" {
			st.FirstError = v.firstErr
		}
		if v.keptUp() {
			st.KeepingUp++
		}
		if v.first > 0 {
			firsts = append(firsts, v.first)
		}
		times = append(times, v.times...)
		worst = max(worst, v.worstLag)
	}
	if len(viewers) > 0 {
		st.WorstLagMs = float64(worst) / float64(time.Millisecond)
	}
	st.StartUnder, st.WindowTime = distOf(firsts), distOf(times)
	st.Unaffected = st.EdgeDrops == 0 && st.CentralCuts == 0 && st.Live.Ends == 0
	if alone == nil {
		st.LatencyRatio, st.GapRatio = 1, 1
		return
	}
	st.LatencyRatio = st.Live.Latency.P99 / alone.Live.Latency.P99
	st.GapRatio = st.Live.Gap.P99 / alone.Live.Gap.P99
	st.Unaffected = st.Unaffected && st.LatencyRatio <= unaffectedRatio && st.GapRatio <= unaffectedRatio
}

// openViewers opens n viewers' sessions, each starting at its own moment
// of the recorded history (not timed: a viewer's start is the startup
// part's measure).
func openViewers(ctx context.Context, e *env, o options, n int) ([]*viewer, error) {
	length := o.step + 3*o.window
	usable := e.recTo.Sub(e.recFrom) - length
	if usable <= 0 {
		return nil, fmt.Errorf("-record %v is too short for steps of %v", e.recTo.Sub(e.recFrom), o.step)
	}
	var out []*viewer
	for j := range n {
		off := (time.Duration(j)*41*time.Second + time.Duration(n)*7*time.Second + time.Duration(j)*290*time.Millisecond) % usable
		start := e.recFrom.Add(off)
		sess, err := e.guard.openSession(ctx, start, start.Add(length))
		if err != nil {
			return out, err
		}
		out = append(out, &viewer{c: e.guard, sess: sess, start: start, worstLag: -time.Hour})
	}
	return out, nil
}

func closeViewers(ctx context.Context, e *env, viewers []*viewer) {
	for _, v := range viewers {
		e.guard.closeSession(ctx, v.sess.ID)
	}
}
