package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/outbox"

	"github.com/vigil-perimeter/vigil/wire"
)

// The alert owner is the one goroutine of a node that raises the alerts of
// its cameras (motion, tamper, analysis health) and of its recorder (clip
// store conditions): it writes them to the outbox (an fsync), links and
// pins their video. The goroutines that see the events (a camera's
// analysis goroutine, the clip store's writer) only build the alert and
// queue it, without ever waiting: an analysis goroutine stuck behind the
// outbox could not answer the gate worker's picture requests, and the
// gate engine waits on the gate worker. Alerts are raised in the order
// they were queued, so a tamper and its all-clear, or a disk_full and its
// all-clear, reach central in that order. Gate alerts have their own
// worker (gates.go).
//
// Queue policy: alertQueue alerts may wait. Yellow and green alerts are
// taken while fewer than alertQueue-redReserve wait; red ones while the
// queue has any room: a flood of motion cannot crowd out an intrusion or
// a covered camera. An alert that finds no room is dropped, never waited
// for: it is logged at ERROR with its summary, counted in
// vigil_edge_alerts_dropped_total{kind,severity}, and once the owner has
// caught up it raises one system.alerts_dropped alert saying how many were
// lost (red if any red one was), so central learns of it.
const (
	alertQueue = 256
	redReserve = 64
	// closeDrain bounds how long Close waits for the owner to raise what
	// was queued before it; what is left then is logged as not raised.
	closeDrain = 2 * time.Second
	// ctlQueue bounds the control messages waiting for the owner.
	ctlQueue = 64
)

// alertJob is an alert on its way to the owner. pinCam, if set, is the
// camera whose video around pinAt the alert links, pinned once the alert
// is stored.
type alertJob struct {
	a      wire.Alert
	pinCam string
	pinAt  time.Time
	motion bool // a motion event: it may fold into its camera's open incident (incidents.go)
	// pinFrom, if set, starts the linked and pinned video earlier than
	// pinAt's pre-roll: at pinFrom's (a loiter: the object's entry;
	// perimeter_alerts.go).
	pinFrom time.Time
}

// alertOwner is the node's alert owner: its queue, the goroutine that
// raises what is queued (run), and raise, the one way an alert reaches
// the outbox (the gate worker, the disk watcher and the self-test call it
// on their own goroutines).
type alertOwner struct {
	edgeID, siteID string
	box            *guardedBox
	clips          alertClips // set once the clip store is open (node.go)
	log            *slog.Logger
	onAlert        func(wire.Alert)       // Options.OnAlert
	onUpdate       func(wire.AlertUpdate) // Options.OnUpdate
	hook           func(wire.Alert)       // Options.alertOwnerHook
	// incidents are the cameras' open motion incidents (incidents.go),
	// owned by run's goroutine; nil: every motion event is its own alert
	// (Options.noIncidents, for the queue-policy tests).
	incidents *motionIncidents
	// ctl carries work for run's goroutine from others (central closed
	// an alert, a gate was forced); never waited for.
	ctl chan func()

	q      chan alertJob
	mu     sync.RWMutex // queue holds it for reading; the owner sets closed under it
	closed bool         // the owner has drained the queue for Close: nothing more is taken

	raised  *prometheus.CounterVec
	drops   *prometheus.CounterVec
	dropMu  sync.Mutex
	dropped droppedAlerts // since the owner last reported drops
}

// alertClips is what the owner uses of the clip store: the video an
// alert links, pinned once the alert is stored.
type alertClips interface {
	PinWindow(cam string, at time.Time) (from, to time.Time, err error)
	Pin(id, cam string, at time.Time, kind string) (clips.Pin, error)
	PinRange(id, cam string, from, to time.Time, kind string) (clips.Pin, error)
}

func newAlertOwner(edgeID, siteID string, box *guardedBox, opts Options, log *slog.Logger, reg prometheus.Registerer) *alertOwner {
	o := &alertOwner{edgeID: edgeID, siteID: siteID, box: box, log: log, onAlert: opts.OnAlert, onUpdate: opts.OnUpdate, hook: opts.alertOwnerHook,
		q: make(chan alertJob, alertQueue), ctl: make(chan func(), ctlQueue)}
	if !opts.noIncidents {
		o.incidents = newMotionIncidents(edgeID, o, log)
	}
	o.raised = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_alerts_total", Help: "Alerts raised, by kind and severity."}, []string{"kind", "severity"})
	o.drops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_alerts_dropped_total",
		Help: "Alerts not raised because the alert owner's queue was full (alertowner.go), by kind and severity."}, []string{"kind", "severity"})
	reg.MustRegister(o.raised, o.drops)
	return o
}

// droppedAlerts counts the alerts the queue had no room for.
type droppedAlerts struct{ all, red int }

// raiseInOrder queues an alert for the owner (system and analysis-health
// alerts: no video to pin).
func (o *alertOwner) raiseInOrder(a wire.Alert) { o.queue(alertJob{a: a}) }

// queue hands an alert to the owner; it never blocks (the queue
// policy above). After Close has drained the queue it is refused.
func (o *alertOwner) queue(j alertJob) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		o.log.Warn("alert not raised: the edge is shutting down", "alert", j.a.ID, "source", j.a.Source, "kind", j.a.Kind)
		return
	}
	if j.a.Severity == wire.Red || len(o.q) < alertQueue-redReserve {
		select {
		case o.q <- j:
			return
		default:
		}
	}
	a := j.a
	o.drops.WithLabelValues(a.Kind, string(a.Severity)).Inc()
	o.dropMu.Lock()
	o.dropped.all++
	if a.Severity == wire.Red {
		o.dropped.red++
	}
	o.dropMu.Unlock()
	o.log.Error("ALERT NOT RAISED: the alert queue is full (the outbox is not keeping up)", "alert", a.ID, "source", a.Source,
		"kind", a.Kind, "severity", a.Severity, "time", a.Time, "summary", a.Summary)
}

// run raises queued alerts until ctx ends, then those still
// queued (for closeDrain at most; the outbox closes only after every
// goroutine of the node has ended).
func (o *alertOwner) run(ctx context.Context) {
	// The incidents' quiet-gap timer: the owner's, so it ends with ctx.
	gap := time.NewTimer(time.Hour)
	defer gap.Stop()
	for {
		o.armGap(gap)
		select {
		case j := <-o.q:
			o.raiseJob(j)
			if len(o.q) == 0 {
				o.reportDrops()
			}
		case f := <-o.ctl:
			f()
		case <-gap.C:
			o.incidents.expire()
		case <-ctx.Done():
			o.drain()
			return
		}
	}
}

// armGap sets the timer to the earliest incident deadline, or stops it.
func (o *alertOwner) armGap(t *time.Timer) {
	if o.incidents == nil {
		t.Stop()
		return
	}
	if next, ok := o.incidents.next(); ok {
		t.Reset(max(0, time.Until(next)))
		return
	}
	t.Stop()
}

// drain raises what is still queued once ctx has ended (for closeDrain
// at most). Once closed, queue takes nothing more: the queue only
// empties from here.
func (o *alertOwner) drain() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	deadline := time.Now().Add(closeDrain)
	for {
		select {
		case j := <-o.q:
			if time.Now().After(deadline) {
				o.log.Error("alerts not raised: the edge is shutting down and the outbox is slow", "alerts", len(o.q)+1, "first", j.a.ID)
				return
			}
			o.raiseJob(j)
		default:
			o.reportDrops()
			return
		}
	}
}

// control hands f to the owner's goroutine (the incidents are its own);
// it never blocks: with the queue full, f is dropped and logged.
func (o *alertOwner) control(what string, f func(m *motionIncidents)) {
	if o.incidents == nil {
		return
	}
	select {
	case o.ctl <- func() { f(o.incidents) }:
	default:
		o.log.Warn("alert owner busy: motion incident news dropped", "what", what)
	}
}

// raiseJob raises one queued alert: links its video, stores it, pins the
// video once it is stored.
func (o *alertOwner) raiseJob(j alertJob) {
	if h := o.hook; h != nil {
		h(j.a)
	}
	if j.motion && o.incidents != nil {
		o.incidents.motionJob(j)
		return
	}
	if j.pinCam != "" && !j.pinFrom.IsZero() {
		o.raiseSpan(j)
		return
	}
	a := j.a
	if j.pinCam != "" {
		a.Links = o.links([]string{j.pinCam}, j.pinAt)
	}
	if o.raise(a) && j.pinCam != "" {
		o.pin(a, j.pinCam, j.pinAt)
	}
}

// reportDrops raises the system alert that says how many alerts the queue
// had no room for since the last report.
func (o *alertOwner) reportDrops() {
	o.dropMu.Lock()
	d := o.dropped
	o.dropped = droppedAlerts{}
	o.dropMu.Unlock()
	if d.all == 0 {
		return
	}
	sev := wire.Yellow
	if d.red > 0 {
		sev = wire.Red
	}
	now := time.Now().UTC()
	o.raise(wire.Alert{
		ID: newAlertID(o.edgeID, now), EdgeID: o.edgeID, SiteID: o.siteID, Source: "edge", Kind: "system.alerts_dropped",
		Severity: sev, Time: now,
		Summary: fmt.Sprintf("%d alerts not raised (%d red): they came faster than the edge could store them; its log names each", d.all, d.red),
	})
}

// links names each camera's clip for an alert at at: the range its pin
// covers (the pin itself is written once the alert is stored).
func (o *alertOwner) links(cams []string, at time.Time) []wire.Link {
	var out []wire.Link
	for _, cam := range cams {
		l := wire.Link{Camera: cam}
		if from, to, err := o.clips.PinWindow(cam, at); err == nil {
			l.ClipFrom, l.ClipTo = from.UTC(), to.UTC()
		}
		out = append(out, l)
	}
	return out
}

// pin keeps the video around an alert until central has it (or the
// evidence retention period ends). A refused pin is already a red
// condition of the store; the alert itself still goes out.
func (o *alertOwner) pin(a wire.Alert, cam string, at time.Time) {
	if _, err := o.clips.Pin(a.ID, cam, at, a.Kind); err != nil {
		o.log.Warn("video for alert not pinned", "alert", a.ID, "camera", cam, "err", err)
	}
}

// raise queues an alert durably and reports whether it was stored.
func (o *alertOwner) raise(a wire.Alert) bool {
	// Central refuses an invalid alert on every resend, and the outbox is
	// ordered: one bad alert would block all behind it. Never queue one.
	if err := a.Validate(); err != nil {
		o.log.Error("dropping malformed alert (a bug in this edge)", "alert", a.ID, "err", err)
		return false
	}
	if err := o.box.use(func(b *outbox.Outbox) error { return b.Append(a) }); errors.Is(err, errNodeClosed) {
		o.log.Warn("alert not raised: the edge is shutting down", "alert", a.ID, "source", a.Source, "kind", a.Kind)
		return false
	} else if err != nil {
		// The alert is not durable: say so loudly; the camera keeps running.
		o.log.Error("ALERT NOT STORED", "alert", a.ID, "source", a.Source, "err", err)
		return false
	}
	o.raised.WithLabelValues(a.Kind, string(a.Severity)).Inc()
	o.log.Info("alert raised", "alert", a.ID, "source", a.Source, "kind", a.Kind, "severity", a.Severity, "time", a.Time)
	if o.onAlert != nil {
		o.onAlert(a)
	}
	return true
}
