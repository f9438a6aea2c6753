package camera

import (
	"fmt"
	"time"
)

// Analysis health: a camera that streams but whose pictures are not
// analysed (undecodable, or too damaged to trust) is blind while it looks
// online. Over a sliding window, analysis is degraded when the trusted
// analysed rate falls below degradeBelow of what it should be (the
// configured analysis rate, or the received rate if lower), and healthy
// again only at clearAbove or more, so that a rate near the threshold does
// not flap.
const (
	defaultHealthWindow = 10 * time.Second
	healthSlots         = 10 // the window is judged in tenths
	degradeBelow        = 0.5
	clearAbove          = 0.8
)

// Analysis states.
const (
	AnalysisStarting = "starting" // not a whole window of video yet
	AnalysisOK       = "ok"
	AnalysisDegraded = "degraded"
)

// AnalysisStatus is the camera's analysis health over the last window.
type AnalysisStatus struct {
	State       string    `json:"state"`
	Since       time.Time `json:"since,omitzero"` // the state holds since
	AnalysedFPS float64   `json:"analysed_fps"`   // trusted analysed pictures per second
	ReceivedFPS float64   `json:"received_fps"`   // units offered to analysis per second
	ExpectedFPS float64   `json:"expected_fps"`
	// DamagedRatio is the share of damaged (concealed) pictures among the
	// last decoded ones.
	DamagedRatio float64 `json:"damaged_ratio"`
	DamagedTotal uint64  `json:"damaged_total"`
	SkippedTotal uint64  `json:"skipped_total"`
}

// AnalysisEvent reports analysis becoming degraded, or recovering.
type AnalysisEvent struct {
	Camera   string
	Time     time.Time
	Degraded bool   // false: analysis recovered at Time
	Detail   string // measured rates, for the log and the alert
}

// healthSample is one slot of the window.
type healthSample struct {
	received, analysed int
	dur                time.Duration
}

// healthMonitor judges analysis health; the analysis goroutine owns it.
type healthMonitor struct {
	fps     float64 // configured analysis rate
	slots   [healthSlots]healthSample
	n, next int
	status  AnalysisStatus
}

func newHealthMonitor(fps float64, now time.Time) *healthMonitor {
	return &healthMonitor{fps: fps, status: AnalysisStatus{State: AnalysisStarting, Since: now}}
}

// add records one slot and reports whether the state changed.
func (h *healthMonitor) add(now time.Time, s healthSample) bool {
	h.slots[h.next] = s
	h.next = (h.next + 1) % healthSlots
	h.n = min(h.n+1, healthSlots)
	var sum healthSample
	for _, sl := range h.slots[:h.n] {
		sum.received += sl.received
		sum.analysed += sl.analysed
		sum.dur += sl.dur
	}
	if sum.dur <= 0 {
		return false
	}
	st := &h.status
	st.ReceivedFPS = float64(sum.received) / sum.dur.Seconds()
	st.AnalysedFPS = float64(sum.analysed) / sum.dur.Seconds()
	st.ExpectedFPS = min(h.fps, st.ReceivedFPS)
	if h.n < healthSlots || sum.received == 0 {
		// Too early to judge, or no video at all: that is signal_lost's
		// to report, and the state holds until video is back.
		return false
	}
	state := st.State
	switch {
	case st.State != AnalysisDegraded && st.AnalysedFPS < degradeBelow*st.ExpectedFPS:
		state = AnalysisDegraded
	case st.State != AnalysisOK && st.AnalysedFPS >= clearAbove*st.ExpectedFPS:
		state = AnalysisOK
	}
	if state == st.State {
		return false
	}
	from := st.State
	st.State, st.Since = state, now
	return from != AnalysisStarting || state == AnalysisDegraded
}

// detail describes the window for logs and alerts.
func (h *healthMonitor) detail() string {
	st := h.status
	return fmt.Sprintf("analysed %.1f of %.1f fps expected (received %.1f fps), %.0f%% of recent pictures damaged",
		st.AnalysedFPS, st.ExpectedFPS, st.ReceivedFPS, 100*st.DamagedRatio)
}
