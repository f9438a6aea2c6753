package edge

import (
	"context"
	"fmt"
	"time"

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
)

// alertJob is an alert on its way to the owner. pinCam, if set, is the
// camera whose video around pinAt the alert links, pinned once the alert
// is stored.
type alertJob struct {
	a      wire.Alert
	pinCam string
	pinAt  time.Time
}

// droppedAlerts counts the alerts the queue had no room for.
type droppedAlerts struct{ all, red int }

// raiseInOrder queues an alert for the owner (system and analysis-health
// alerts: no video to pin).
func (n *Node) raiseInOrder(a wire.Alert) { n.queueAlert(alertJob{a: a}) }

// queueAlert hands an alert to the owner; it never blocks (the queue
// policy above). After Close has drained the queue it is refused.
func (n *Node) queueAlert(j alertJob) {
	n.alertMu.RLock()
	defer n.alertMu.RUnlock()
	if n.alertsClosed {
		n.log.Warn("alert not raised: the edge is shutting down", "alert", j.a.ID, "source", j.a.Source, "kind", j.a.Kind)
		return
	}
	if j.a.Severity == wire.Red || len(n.alertQ) < alertQueue-redReserve {
		select {
		case n.alertQ <- j:
			return
		default:
		}
	}
	a := j.a
	n.alertDrops.WithLabelValues(a.Kind, string(a.Severity)).Inc()
	n.dropMu.Lock()
	n.dropped.all++
	if a.Severity == wire.Red {
		n.dropped.red++
	}
	n.dropMu.Unlock()
	n.log.Error("ALERT NOT RAISED: the alert queue is full (the outbox is not keeping up)", "alert", a.ID, "source", a.Source,
		"kind", a.Kind, "severity", a.Severity, "time", a.Time, "summary", a.Summary)
}

// runAlertOwner raises queued alerts until ctx ends, then those still
// queued (for closeDrain at most; the outbox closes only after every
// goroutine of the node has ended).
func (n *Node) runAlertOwner(ctx context.Context) {
	for {
		select {
		case j := <-n.alertQ:
			n.raiseJob(j)
			if len(n.alertQ) == 0 {
				n.reportDrops()
			}
		case <-ctx.Done():
			// Once closed, queueAlert sends nothing more: the queue only
			// empties from here.
			n.alertMu.Lock()
			n.alertsClosed = true
			n.alertMu.Unlock()
			deadline := time.Now().Add(closeDrain)
			for {
				select {
				case j := <-n.alertQ:
					if time.Now().After(deadline) {
						n.log.Error("alerts not raised: the edge is shutting down and the outbox is slow", "alerts", len(n.alertQ)+1, "first", j.a.ID)
						return
					}
					n.raiseJob(j)
				default:
					n.reportDrops()
					return
				}
			}
		}
	}
}

// raiseJob raises one queued alert: links its video, stores it, pins the
// video once it is stored.
func (n *Node) raiseJob(j alertJob) {
	if h := n.opts.alertOwnerHook; h != nil {
		h(j.a)
	}
	a := j.a
	if j.pinCam != "" {
		a.Links = n.links([]string{j.pinCam}, j.pinAt)
	}
	if n.raise(a) && j.pinCam != "" {
		n.pin(a, j.pinCam, j.pinAt)
	}
}

// reportDrops raises the system alert that says how many alerts the queue
// had no room for since the last report.
func (n *Node) reportDrops() {
	n.dropMu.Lock()
	d := n.dropped
	n.dropped = droppedAlerts{}
	n.dropMu.Unlock()
	if d.all == 0 {
		return
	}
	sev := wire.Yellow
	if d.red > 0 {
		sev = wire.Red
	}
	now := time.Now().UTC()
	n.raise(wire.Alert{
		ID: newAlertID(n.cfg.EdgeID, now), EdgeID: n.cfg.EdgeID, SiteID: n.cfg.SiteID, Source: "edge", Kind: "system.alerts_dropped",
		Severity: sev, Time: now,
		Summary: fmt.Sprintf("%d alerts not raised (%d red): they came faster than the edge could store them; its log names each", d.all, d.red),
	})
}
