package notify

import (
	"encoding/json"
	"time"
)

// Version is the version of the JSON payload, sent as "version" in every
// message. It changes only when a field changes meaning or disappears;
// new fields may appear in any version, so receivers ignore unknown ones.
const Version = 1

// Event types: what happened to the alert.
const (
	// TypeNew is a new alert (first sighting).
	TypeNew = "new"
	// TypeUpdate is an open alert seen again or changed by its source:
	// count, severity, priority or summary changed, the state did not.
	TypeUpdate = "update"
	// TypeState is a workflow step (acknowledged, dispatched, resolved,
	// closed); PrevState and By say from what and by whom.
	TypeState = "state"
	// TypeEscalated is an alert nobody acknowledged in time (central
	// decides when, from its store's open alerts).
	TypeEscalated = "escalated"
)

// Severities, most urgent first.
const (
	SeverityRed    = "red"
	SeverityYellow = "yellow"
	SeverityGreen  = "green"
)

// Workflow states as sent. Central may use others (e.g. "raised" for new);
// they pass through unchanged. An alert in a terminal state has its
// retained MQTT state topic cleared.
const (
	StateNew          = "new"
	StateAcknowledged = "acknowledged"
	StateDispatched   = "dispatched"
	StateResolved     = "resolved"
	StateClosed       = "closed"
)

// Event is one message sent out: an alert as central holds it at the
// moment of a change. It is flat (every field of the alert, every time)
// rather than Frigate's before/after pair: receivers are chat robots,
// home-automation rules and ticket systems that act on one message, and
// the one field that a change moves (state) carries its previous value in
// PrevState. The JSON form is documented in README.md.
type Event struct {
	// Type is TypeNew, TypeUpdate, TypeState or TypeEscalated.
	Type string `json:"type"`
	// Seq is central's sequence number of this change: unique and
	// increasing. Delivery is at least once, so receivers drop an event
	// whose seq they have seen.
	Seq uint64 `json:"seq"`
	// AlertID identifies the alert across its events.
	AlertID string `json:"alert_id"`
	Site    string `json:"site"`
	Edge    string `json:"edge,omitempty"`
	// Source is the camera or gate that raised the alert.
	Source string `json:"source,omitempty"`
	// Kind is what was seen: motion, forced, held, sos, tamper, offline, …
	Kind string `json:"kind"`
	// Severity is red, yellow or green.
	Severity string `json:"severity"`
	// Priority orders alerts within a severity; lower is more urgent.
	Priority int `json:"priority"`
	// State is the workflow state after this event; PrevState the one
	// before it (TypeState only).
	State     string `json:"state"`
	PrevState string `json:"prev_state,omitempty"`
	// Count is how many times the source has reported this alert.
	Count int `json:"count"`
	// Time is when the alert was first raised; StateTime when it entered
	// State. Both are sent in UTC (RFC 3339).
	Time      time.Time `json:"time"`
	StateTime time.Time `json:"state_time,omitzero"`
	// By is the user who made the state change.
	By string `json:"by,omitempty"`
	// Summary is one line of English for people; SummaryZH the same in
	// Chinese where central has it.
	Summary   string `json:"summary"`
	SummaryZH string `json:"summary_zh,omitempty"`
	// SnapshotURL links to the alert in the console.
	SnapshotURL string `json:"snapshot_url,omitempty"`
	// TimeZone is the site's IANA zone (e.g. Asia/Shanghai); chat messages
	// show local time next to UTC when it is given.
	TimeZone string `json:"time_zone,omitempty"`
}

// MarshalJSON writes the event with "version" first.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // no MarshalJSON: no recursion
	return json.Marshal(struct {
		Version int `json:"version"`
		plain
	}{Version, plain(e)})
}

// normalised returns the event as it is sent: times in UTC, a missing
// raise time filled with now.
func (e Event) normalised(now time.Time) Event {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if !e.StateTime.IsZero() {
		e.StateTime = e.StateTime.UTC()
	}
	return e
}

// severityRank orders severities: red 3, yellow 2, green 1, unknown 0.
func severityRank(s string) int {
	switch s {
	case SeverityRed:
		return 3
	case SeverityYellow:
		return 2
	case SeverityGreen:
		return 1
	}
	return 0
}

// terminal reports whether state ends an alert's workflow.
func terminal(state string) bool {
	return state == StateResolved || state == StateClosed
}
