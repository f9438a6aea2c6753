package clips

import (
	"errors"
	"time"
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
	ErrClosed        = errors.New("clips: store closed")
)

// setCondition raises or clears a condition and tells OnCondition about
// a change. Writer goroutine or callers holding no lock.
func (s *Store) setCondition(kind string, active bool, msg string) {
	s.mu.Lock()
	old, had := s.conds[kind]
	changed := had != active
	var c Condition
	if active {
		if !had {
			c = Condition{Kind: kind, Active: true, Message: msg, Since: time.Now().UTC()}
		} else {
			c = old
			c.Message = msg
		}
		s.conds[kind] = c
	} else if had {
		c = Condition{Kind: kind, Active: false, Message: msg, Since: time.Now().UTC()}
		delete(s.conds, kind)
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	s.persistConditions()
	s.m.condition.WithLabelValues(kind).Set(b2f(active))
	if active {
		s.log.Error("clip store condition raised", "kind", kind, "message", msg)
	} else {
		s.log.Info("clip store condition cleared", "kind", kind, "message", msg)
	}
	if s.cfg.OnCondition != nil {
		s.cfg.OnCondition(c)
	}
}

// persistConditions writes the raised conditions to the condition file
// before OnCondition hears of a change, so that a restart can clear a
// condition central holds red. The snapshot is taken under the file's
// lock: concurrent changes are written in the order they are taken.
func (s *Store) persistConditions() {
	if s.condFile == nil {
		return
	}
	s.condFile.write(func() []Condition {
		s.mu.RLock()
		defer s.mu.RUnlock()
		raised := make([]Condition, 0, len(s.conds))
		for _, c := range s.conds {
			raised = append(raised, c)
		}
		return raised
	})
}

// restoreConditions takes the conditions a previous run left raised as
// raised now, without telling OnCondition (central already holds them
// red): whatever clears a condition in this run then sends the all-clear.
// Open calls it before anything can change a condition.
func (s *Store) restoreConditions(raised []Condition) {
	for _, c := range raised {
		switch c.Kind {
		case CondDiskFull, CondPinsFull, CondWriteError:
		default:
			continue
		}
		c.Active = true
		s.conds[c.Kind] = c
		s.m.condition.WithLabelValues(c.Kind).Set(1)
		s.log.Info("clip store condition raised before the restart; cleared once it no longer holds", "kind", c.Kind, "since", c.Since)
	}
}

func (s *Store) hasCondition(kind string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.conds[kind]
	return ok
}

// Conditions returns the active conditions.
func (s *Store) Conditions() []Condition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Condition, 0, len(s.conds))
	for _, c := range s.conds {
		out = append(out, c)
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
