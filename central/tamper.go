package central

import (
	"strings"
	"sync/atomic"

	"github.com/vigil-perimeter/vigil/wire"
)

// Which cameras the live wall shows as Tampered is derived from the store,
// not copied from arriving alerts: a camera is tampered while it has an
// open (not resolved) red or yellow tamper alert stored after its last
// all-clear (a green "Restored" tamper alert, resolved or not). The writer
// goroutine, which applies every op, keeps that set up to date as part of
// applying them, rebuilds it from the store when central starts, and
// publishes a read-only copy for the live hub after every change; the live
// hub keeps nothing of its own.

// prefixTamperClear keys the creation sequence of each camera's last
// all-clear: tc/<edge id>\0<camera> → seq (8 bytes). It is written in the
// transaction that stores the green alert, so a restart knows about an
// all-clear even after a guard resolved it.
const prefixTamperClear = "tc/"

func tamperClearKey(edge, cam string) []byte {
	return []byte(prefixTamperClear + edge + "\x00" + cam)
}

// liveTamperKind reports whether an alert kind marks a tile as tampered.
// An offline camera (signal_lost) and a dark scene mean "look", not an
// attack; the tile shows offline or live for those.
func liveTamperKind(kind string) bool {
	return strings.HasPrefix(kind, "tamper.") && kind != "tamper.signal_lost" && kind != "tamper.dark"
}

// tamperClear reports whether a new alert is its camera's all-clear: the
// store keeps the latest one's seq (alertTx.insert).
func tamperClear(rec Record) bool {
	return rec.Severity == wire.Green && liveTamperKind(rec.Kind)
}

// tamperSet is the writer's view of tampered cameras (only the writer
// goroutine changes it; others read what it published).
type tamperSet struct {
	open  map[string]map[uint64]string // edge/camera → creation seq → kind: open, non-green, after the last all-clear
	clear map[string]uint64            // edge/camera → creation seq of the last all-clear
	pub   atomic.Pointer[map[string]string]
}

func newTamperSet() *tamperSet {
	t := &tamperSet{open: map[string]map[uint64]string{}, clear: map[string]uint64{}}
	t.publish()
	return t
}

// load rebuilds the set from the store: the all-clear marks, then every
// open alert in sequence order.
func (t *tamperSet) load(s AlertStore) error {
	err := s.tamperState(func(edge, cam string, seq uint64) { t.clear[liveKey(edge, cam)] = seq }, func(rec Record) { t.apply(rec) })
	if err != nil {
		return err
	}
	t.publish()
	return nil
}

// apply takes the current state of one alert after a stored change and
// reports whether the set changed.
func (t *tamperSet) apply(r Record) bool {
	if !liveTamperKind(r.Kind) {
		return false
	}
	k := liveKey(r.EdgeID, r.Source)
	changed := false
	if r.Severity == wire.Green {
		if r.Seq > t.clear[k] {
			t.clear[k] = r.Seq
		}
		for seq := range t.open[k] {
			if seq <= t.clear[k] {
				delete(t.open[k], seq)
				changed = true
			}
		}
	} else if open(r.State) && r.Seq > t.clear[k] {
		if t.open[k] == nil {
			t.open[k] = map[uint64]string{}
		}
		changed = t.open[k][r.Seq] != r.Kind
		t.open[k][r.Seq] = r.Kind
	} else if _, ok := t.open[k][r.Seq]; ok {
		delete(t.open[k], r.Seq)
		changed = true
	}
	if len(t.open[k]) == 0 {
		delete(t.open, k)
	}
	return changed
}

// publish makes the current set visible to readers: edge/camera → the
// kind of its newest open tamper alert.
func (t *tamperSet) publish() {
	m := make(map[string]string, len(t.open))
	for k, alerts := range t.open {
		var newest uint64
		for seq, kind := range alerts {
			if seq >= newest {
				newest, m[k] = seq, kind
			}
		}
	}
	t.pub.Store(&m)
}

// tampered returns the kind of the camera's newest open tamper alert, ""
// if it has none. Any goroutine may call it.
func (t *tamperSet) tampered(edge, cam string) string {
	return (*t.pub.Load())[liveKey(edge, cam)]
}
