package edge

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-perimeter/vigil/internal/kv"

	"github.com/vigil-perimeter/vigil/wire"
)

// diskPoll is how often the disk watcher re-reads free space: a statfs,
// cheap next to what a full disk costs.
const diskPoll = time.Second

// diskWatcher turns the outbox's free-space floor into alerts (run).
type diskWatcher struct {
	box interface {
		Disk() (kv.FloorState, bool, error)
	}
	raise          func(wire.Alert) bool // the alert owner's
	edgeID, siteID string
	log            *slog.Logger
}

// run turns the outbox's free-space floor into alerts: a red
// system.disk_full when the disk falls below it (stored from the outbox's
// reserve, as every red alert is then) and the green all-clear when space
// returns. The state is the outbox's, read afresh each time; a restart on
// a full disk raises the red alert again.
func (d *diskWatcher) run(ctx context.Context) {
	t := time.NewTicker(diskPoll)
	defer t.Stop()
	raised := false
	for {
		raised = d.check(raised)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check raises the alert for a change of state and returns the state
// now reported (unchanged if the alert could not be stored: next tick
// tries again).
func (d *diskWatcher) check(raised bool) bool {
	st, ok, err := d.box.Disk()
	if !ok {
		return raised
	}
	if err != nil {
		d.log.Error("disk watcher", "err", err)
		return raised
	}
	if st.Full == raised {
		return raised
	}
	now := time.Now().UTC()
	sev, summary := wire.Red, fmt.Sprintf("Disk full: %d MiB free, floor %d MiB; new events refused, red alerts kept from the reserve", st.Free>>20, st.Min>>20)
	if !st.Full {
		sev, summary = wire.Green, fmt.Sprintf("Restored: disk space back (%d MiB free)", st.Free>>20)
	}
	a := wire.Alert{
		ID: newAlertID(d.edgeID, now), EdgeID: d.edgeID, SiteID: d.siteID,
		Source: "edge", Kind: "system.disk_full", Severity: sev, Time: now, Summary: summary,
	}
	if !d.raise(a) {
		return raised
	}
	return st.Full
}
