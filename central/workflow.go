package central

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Alert states, in the order of the workflow (ARCHITECTURE.md, decision 7).
const (
	StateRaised       = "raised"
	StateAcknowledged = "acknowledged"
	StateDispatched   = "dispatched"
	StateResolved     = "resolved"
)

// Workflow actions a guard takes on an alert.
const (
	ActionAcknowledge = "acknowledge"
	ActionDispatch    = "dispatch"
	ActionResolve     = "resolve"
)

// ErrConflict is returned for an action the alert's state does not allow
// (e.g. acknowledging an alert someone already resolved).
var ErrConflict = errors.New("alert is not in a state that allows this")

// Step is one change of an alert's state: who, when, and for a dispatch to
// whom; a resolution carries a note.
type Step struct {
	State string    `json:"state"`
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
	To    string    `json:"to,omitempty"`
	Note  string    `json:"note,omitempty"`
}

// Action is a guard's request to move an alert on. Actor is, until users
// and sessions exist, the name the console sends; the API takes it from one
// place (actorOf) so a login can replace it without changing this type.
type Action struct {
	Name  string `json:"-"`
	Actor string `json:"actor"`
	To    string `json:"to,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Limits on free text in actions.
const (
	maxActorLen = 64
	maxToLen    = 128
	maxNoteLen  = 2000
)

// Validate checks an action's fields, independent of the alert.
func (a *Action) Validate() error {
	switch {
	case a.Actor == "" || utf8.RuneCountInString(a.Actor) > maxActorLen:
		return fmt.Errorf("actor must be 1..%d characters", maxActorLen)
	case utf8.RuneCountInString(a.To) > maxToLen:
		return fmt.Errorf("to must be at most %d characters", maxToLen)
	case utf8.RuneCountInString(a.Note) > maxNoteLen:
		return fmt.Errorf("note must be at most %d characters", maxNoteLen)
	}
	switch a.Name {
	case ActionAcknowledge:
	case ActionDispatch:
		if a.To == "" {
			return errors.New("dispatch needs to: who was sent")
		}
	case ActionResolve:
		if a.Note == "" {
			return errors.New("resolve needs a note: what happened")
		}
	default:
		return fmt.Errorf("unknown action %q", a.Name)
	}
	return nil
}

// apply moves rec on by a, recording the step. Allowed: acknowledge a
// raised alert; dispatch an acknowledged (or re-dispatch a dispatched) one;
// resolve any alert not yet resolved.
func (a *Action) apply(rec *Record, now time.Time) error {
	var next string
	switch a.Name {
	case ActionAcknowledge:
		if rec.State != StateRaised {
			return fmt.Errorf("%w: it is %s", ErrConflict, rec.State)
		}
		next = StateAcknowledged
	case ActionDispatch:
		if rec.State != StateAcknowledged && rec.State != StateDispatched {
			return fmt.Errorf("%w: it is %s (acknowledge it first)", ErrConflict, rec.State)
		}
		next = StateDispatched
	case ActionResolve:
		if rec.State == StateResolved {
			return fmt.Errorf("%w: it is already resolved", ErrConflict)
		}
		next = StateResolved
	default:
		return fmt.Errorf("unknown action %q", a.Name)
	}
	rec.State = next
	rec.History = append(rec.History, Step{State: next, Actor: a.Actor, At: now.UTC(), To: a.To, Note: a.Note})
	return nil
}

// open reports whether an alert in state counts towards its site's colour.
func open(state string) bool { return state != StateResolved }
