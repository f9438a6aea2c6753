package edge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/edgewire"
	"github.com/vigil-perimeter/vigil/gates/engine"
	"github.com/vigil-perimeter/vigil/wire"
)

// foldRef is the fold a gate alert came from: the engine folds every
// recurrence of (gate, cause, device) into one alert while it is open.
type foldRef struct {
	gate   string
	cause  gates.Cause
	device string
}

// foldIndex maps the wire alert IDs of open gate alerts to their folds,
// so that central closing an alert (alert_closed) can tell the engine
// which fold to forget. It is written on the engine's goroutine (convert)
// and read on the uplink's; it holds one ID per fold, so it is bounded
// like the Converter (gates × causes × devices).
type foldIndex struct {
	mu    sync.Mutex
	byID  map[string]foldRef
	byRef map[foldRef]string
}

func newFoldIndex() *foldIndex {
	return &foldIndex{byID: map[string]foldRef{}, byRef: map[foldRef]string{}}
}

// opened records that a new wire alert id stands for the fold of a.
func (x *foldIndex) opened(id string, a gates.Alert) {
	r := foldRef{a.Gate, a.Key, a.Device}
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byRef[r]; ok {
		delete(x.byID, old)
	}
	x.byID[id], x.byRef[r] = r, id
}

// take returns and forgets the fold of alert id.
func (x *foldIndex) take(id string) (foldRef, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r, ok := x.byID[id]
	if ok {
		delete(x.byID, id)
		delete(x.byRef, r)
	}
	return r, ok
}

// forgetFold tells the engine to forget the fold of a closed alert; it
// runs on its own goroutine (the engine may be busy handing outputs on).
func forgetFold(ctx context.Context, eng *engine.Engine, r foldRef, id string, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) {
	ok, err := eng.Forget(ctx, r.gate, r.cause, r.device)
	switch {
	case err != nil && !errors.Is(err, engine.ErrStopped) && ctx.Err() == nil:
		log.Warn("closed gate alert not forgotten", "alert", id, "gate", r.gate, "cause", r.cause, "err", err)
	case ok:
		log.Info("gate alert closed at central: its cause raises a new alert next time", "alert", id, "gate", r.gate, "cause", r.cause, "device", r.device)
	}
}

// gateEvent is the event-log entry central keeps for a gate alert output
// that is not a passage (those are events already): kind "gate.<cause>",
// or "gate.closed" for the all-clear of a door cause, the gate as
// source, the output's summary. Its ID follows the output's, so a replay
// after a crash stores it once.
func gateEvent(a gates.Alert, out edgewire.Out) *wire.Event {
	var id string
	switch {
	case out.Alert != nil:
		id = out.Alert.ID
	case out.Update != nil:
		id = out.Update.ID
	default:
		return nil
	}
	kind := edgewire.KindPrefix + string(a.Key)
	if a.Cleared && doorCause(a.Key) {
		kind = edgewire.KindPrefix + "closed"
	}
	return &wire.Event{ID: id + "-event", Time: a.Time.UTC(), Source: a.Gate, Kind: kind, Summary: a.Summary}
}

// doorCause says a cause is about the door itself: its all-clear is the
// door closing.
func doorCause(c gates.Cause) bool { return c == gates.CauseForced || c == gates.CauseHeldOpen }

// escalateWatchers tells the alert owner that a gate was forced: the
// motion incidents of the cameras that watch it turn red.
func escalateWatchers(alerts gateAlerts, gc gateConfigs, a gates.Alert) {
	if a.Key != gates.CauseForced || a.Cleared {
		return
	}
	cams := gc.gate(a.Gate).Cameras
	if len(cams) == 0 {
		return
	}
	name := gc.gate(a.Gate).Name
	if name == "" {
		name = a.Gate
	}
	alerts.gateForced(cams, name+" was forced", time.Now())
}
