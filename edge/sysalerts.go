package edge

import (
	"context"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// sysAlertQueue is how many system alerts (clip store conditions, analysis
// health) may wait to be raised.
const sysAlertQueue = 256

// raiseInOrder queues a system alert to be raised by the node's one
// system-alert goroutine, in the order of the calls: a disk_full and its
// all-clear raised a moment apart reach central in that order. The caller
// (the clip store's writer, a camera's analysis loop) never waits on the
// outbox.
func (n *Node) raiseInOrder(a wire.Alert) {
	select {
	case n.sysAlerts <- a:
	case <-time.After(time.Second):
		// 256 conditions waiting for a second means the outbox is stuck:
		// a camera or the recorder must not stall behind it.
		n.log.Error("SYSTEM ALERT NOT RAISED: queue full", "alert", a.ID, "kind", a.Kind, "summary", a.Summary)
	}
}

// raiseSystemAlerts raises queued system alerts until ctx ends, then those
// still queued (the outbox closes only after every goroutine has ended).
func (n *Node) raiseSystemAlerts(ctx context.Context) {
	for {
		select {
		case a := <-n.sysAlerts:
			n.raise(a)
		case <-ctx.Done():
			for {
				select {
				case a := <-n.sysAlerts:
					n.raise(a)
				default:
					return
				}
			}
		}
	}
}
