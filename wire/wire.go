// Package wire defines the messages that travel between an edge node and
// central over the edge's outbound websocket. Both sides compile against
// this one definition; every frame is a versioned JSON envelope so that an
// old edge and a new central can tell each other apart instead of guessing.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the envelope version this build speaks.
const Version = 1

// MaxFrameBytes bounds one websocket frame in either direction. An alert
// carries one JPEG snapshot, which at 1280 px stays well under this.
const MaxFrameBytes = 4 << 20

// Message types.
const (
	TypeHello     = "hello"     // edge → central, first frame of a connection
	TypeWelcome   = "welcome"   // central → edge, reply to hello
	TypeAlert     = "alert"     // edge → central
	TypeAck       = "ack"       // central → edge: these alert IDs are stored
	TypeHeartbeat = "heartbeat" // edge → central, periodic health
)

// Severity is the red / yellow / green scale of ARCHITECTURE.md.
type Severity string

// Severities, worst first.
const (
	Red    Severity = "red"
	Yellow Severity = "yellow"
	Green  Severity = "green"
)

// Valid reports whether s is one of the three known severities.
func (s Severity) Valid() bool { return s == Red || s == Yellow || s == Green }

// Rank orders severities: red 3, yellow 2, green 1, unknown 0.
func (s Severity) Rank() int {
	switch s {
	case Red:
		return 3
	case Yellow:
		return 2
	case Green:
		return 1
	}
	return 0
}

// Envelope wraps every frame on the uplink.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// Hello opens a connection from an edge.
type Hello struct {
	EdgeID   string    `json:"edge_id"`
	SiteID   string    `json:"site_id"`
	Software string    `json:"software"`
	Time     time.Time `json:"time"` // the edge's UTC clock when it said hello
}

// Welcome answers Hello.
type Welcome struct {
	Time time.Time `json:"time"` // central's UTC clock, so the edge can log its offset
}

// Box is a bounding box in normalised image coordinates (0..1).
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// Alert is one thing a guard must see. The edge assigns ID; central stores
// each ID once however often the edge re-sends it.
type Alert struct {
	ID       string    `json:"id"`
	EdgeID   string    `json:"edge_id"`
	SiteID   string    `json:"site_id"`
	Source   string    `json:"source"`   // camera or gate ID
	Kind     string    `json:"kind"`     // "motion", "tamper", "gate", ...
	Severity Severity  `json:"severity"` // red, yellow, green
	Time     time.Time `json:"time"`     // UTC instant of the event
	// TimeSource says where Time came from: "rtcp" (camera sender reports)
	// or "arrival" (the edge's clock when the frame arrived).
	TimeSource string   `json:"time_source,omitempty"`
	Summary    string   `json:"summary"`
	Boxes      []Box    `json:"boxes,omitempty"`
	Zones      []string `json:"zones,omitempty"`
	// Snapshot is a JPEG of the scene at SnapshotTime (base64 in JSON).
	Snapshot     []byte    `json:"snapshot,omitempty"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
}

// Validate checks what central relies on before it stores an alert.
func (a *Alert) Validate() error {
	switch {
	case a.ID == "" || len(a.ID) > 128:
		return errors.New("alert: id must be 1..128 characters")
	case a.EdgeID == "":
		return errors.New("alert: edge_id is empty")
	case a.Source == "":
		return errors.New("alert: source is empty")
	case a.Kind == "":
		return errors.New("alert: kind is empty")
	case !a.Severity.Valid():
		return fmt.Errorf("alert: unknown severity %q", a.Severity)
	case a.Time.IsZero():
		return errors.New("alert: time is zero")
	}
	return nil
}

// Ack tells the edge which alert IDs central has stored durably.
type Ack struct {
	IDs []string `json:"ids"`
}

// CameraStatus is one camera's health in a heartbeat.
type CameraStatus struct {
	ID        string    `json:"id"`
	Online    bool      `json:"online"`
	LastFrame time.Time `json:"last_frame,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// Heartbeat reports an edge's health.
type Heartbeat struct {
	Time    time.Time      `json:"time"`
	Outbox  int            `json:"outbox"` // alerts written but not yet acknowledged
	Cameras []CameraStatus `json:"cameras"`
}

// Marshal wraps body in an envelope of the given type.
func Marshal(typ string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("wire: marshal %s: %w", typ, err)
	}
	return json.Marshal(Envelope{V: Version, Type: typ, Body: b})
}

// Unmarshal parses an envelope and checks its version. The body is left raw
// for the caller to decode by type with DecodeBody.
func Unmarshal(frame []byte) (Envelope, error) {
	var env Envelope
	if len(frame) > MaxFrameBytes {
		return env, fmt.Errorf("wire: frame of %d bytes exceeds %d", len(frame), MaxFrameBytes)
	}
	if err := json.Unmarshal(frame, &env); err != nil {
		return env, fmt.Errorf("wire: malformed envelope: %w", err)
	}
	if env.V != Version {
		return env, fmt.Errorf("wire: unsupported envelope version %d (want %d)", env.V, Version)
	}
	if env.Type == "" {
		return env, errors.New("wire: envelope without type")
	}
	return env, nil
}

// DecodeBody decodes an envelope's body into v.
func DecodeBody(env Envelope, v any) error {
	if err := json.Unmarshal(env.Body, v); err != nil {
		return fmt.Errorf("wire: malformed %s body: %w", env.Type, err)
	}
	return nil
}
