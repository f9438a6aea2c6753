package clips

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Condition kinds: each is a red system condition for the edge's alerts.
const (
	// CondDiskFull: free space is below the floor and nothing unpinned
	// is left to evict (or another program filled the disk); recording
	// is stopped until space returns.
	CondDiskFull = "disk_full"
	// CondPinsFull: pinned evidence has reached its share of the disk;
	// new pins are refused, nothing pinned is deleted.
	CondPinsFull = "pins_full"
	// CondWriteError: Badger refused a commit; recording of the affected
	// chunks stopped at the last durable point.
	CondWriteError = "write_error"
)

// Condition is a store-wide state the edge must report. OnCondition sees
// it raised (Active) and cleared.
type Condition struct {
	Kind    string    `json:"kind"`
	Active  bool      `json:"active"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
}

// Errors callers can test with errors.Is.
var (
	ErrUnknownCamera = errors.New("clips: unknown camera")
	ErrNoVideo       = errors.New("clips: no video in range")
	ErrPinsFull      = errors.New("clips: pinned video fills the store's share of the disk; pin refused")
	ErrDiskFull      = errors.New("clips: disk full")
	ErrTooLong       = errors.New("clips: range too long for one export")
	// ErrDamaged: a segment holds less than its index says (cut or
	// deleted by hand since the edge started); `vigil clips check`
	// reports it and the next start after an unclean stop repairs it.
	ErrDamaged = errors.New("clips: a segment is damaged or missing")
	ErrClosed  = errors.New("clips: store closed")
)

// conditionSet is the store's raised conditions: it raises and clears
// them, writes them to the condition file and tells OnCondition. It has
// its own lock: nothing needs a condition and the index at one instant.
type conditionSet struct {
	log    *slog.Logger
	gauge  *prometheus.GaugeVec
	notify func(Condition) // Config.OnCondition, may be nil
	file   *condFile       // nil in tests that build a store by hand

	mu    sync.RWMutex
	conds map[string]Condition
}

func newConditionSet(log *slog.Logger, gauge *prometheus.GaugeVec, notify func(Condition), file *condFile) *conditionSet {
	return &conditionSet{log: log, gauge: gauge, notify: notify, file: file, conds: map[string]Condition{}}
}

// setCondition raises or clears a condition and tells OnCondition about
// a change. Writer goroutine or callers holding no lock.
func (cs *conditionSet) setCondition(kind string, active bool, msg string) {
	cs.mu.Lock()
	old, had := cs.conds[kind]
	changed := had != active
	var c Condition
	if active {
		if !had {
			c = Condition{Kind: kind, Active: true, Message: msg, Since: time.Now().UTC()}
		} else {
			c = old
			c.Message = msg
		}
		cs.conds[kind] = c
	} else if had {
		c = Condition{Kind: kind, Active: false, Message: msg, Since: time.Now().UTC()}
		delete(cs.conds, kind)
	}
	cs.mu.Unlock()
	if !changed {
		return
	}
	cs.persist()
	cs.gauge.WithLabelValues(kind).Set(b2f(active))
	if active {
		cs.log.Error("clip store condition raised", "kind", kind, "message", msg)
	} else {
		cs.log.Info("clip store condition cleared", "kind", kind, "message", msg)
	}
	if cs.notify != nil {
		cs.notify(c)
	}
}

// persist writes the raised conditions to the condition file before
// OnCondition hears of a change, so that a restart can clear a condition
// central holds red. The snapshot is taken under the file's lock:
// concurrent changes are written in the order they are taken.
func (cs *conditionSet) persist() {
	if cs.file == nil {
		return
	}
	cs.file.write(cs.Conditions)
}

// restore takes the conditions a previous run left raised as raised now,
// without telling OnCondition (central already holds them red): whatever
// clears a condition in this run then sends the all-clear. Open calls it
// before anything can change a condition.
func (cs *conditionSet) restore(raised []Condition) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range raised {
		switch c.Kind {
		case CondDiskFull, CondPinsFull, CondWriteError:
		default:
			continue
		}
		c.Active = true
		cs.conds[c.Kind] = c
		cs.gauge.WithLabelValues(c.Kind).Set(1)
		cs.log.Info("clip store condition raised before the restart; cleared once it no longer holds", "kind", c.Kind, "since", c.Since)
	}
}

func (cs *conditionSet) hasCondition(kind string) bool {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	_, ok := cs.conds[kind]
	return ok
}

// Conditions returns the active conditions.
func (cs *conditionSet) Conditions() []Condition {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]Condition, 0, len(cs.conds))
	for _, c := range cs.conds {
		out = append(out, c)
	}
	return out
}

// close closes the condition file.
func (cs *conditionSet) close() {
	if cs.file != nil {
		cs.file.close()
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
