package gates

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The JSON form of events, shared by the webhook body and the MQTT events
// topic. README.md ("Gates") documents it for integrators; keep the two in
// step.

// MaxBatch is the most events one payload may carry.
const MaxBatch = 100

// Event times outside [now-MaxEventAge, now+MaxClockAhead] are refused: a
// controller with a wrong clock must be fixed, not believed.
const (
	MaxEventAge   = 24 * time.Hour
	MaxClockAhead = 5 * time.Minute
)

// ErrMalformed wraps payloads that are not the JSON described; ErrInvalid
// wraps well-formed payloads whose events break a rule.
var (
	ErrMalformed = errors.New("malformed payload")
	ErrInvalid   = errors.New("invalid event")
)

type eventJSON struct {
	ID         string     `json:"id"`
	Gate       string     `json:"gate"`
	Device     string     `json:"device,omitempty"`
	Type       Kind       `json:"type"`
	Sensor     string     `json:"sensor,omitempty"`
	Credential string     `json:"credential,omitempty"`
	Time       *time.Time `json:"time,omitempty"`
}

// payloadJSON is either one event or {"events": [...]}.
type payloadJSON struct {
	eventJSON
	Events []eventJSON `json:"events,omitempty"`
}

// ParsePayload decodes one event or a batch. Unknown fields, trailing data
// and invalid events are errors (wrapping ErrMalformed or ErrInvalid);
// a missing time becomes now. Every event needs an id, for de-duplication.
func ParsePayload(data []byte, now time.Time) ([]Event, error) {
	var p payloadJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	var raw []eventJSON
	single := p.eventJSON != (eventJSON{})
	switch {
	case p.Events != nil && single:
		return nil, fmt.Errorf("%w: send either one event or {\"events\": [...]}, not both", ErrMalformed)
	case single:
		raw = []eventJSON{p.eventJSON}
	case len(p.Events) == 0:
		return nil, fmt.Errorf("%w: no events", ErrMalformed)
	case len(p.Events) > MaxBatch:
		return nil, fmt.Errorf("%w: %d events, at most %d per payload", ErrInvalid, len(p.Events), MaxBatch)
	default:
		raw = p.Events
	}
	now = now.UTC()
	out := make([]Event, 0, len(raw))
	for i, r := range raw {
		ev, err := r.event(now)
		if err != nil {
			if len(raw) > 1 {
				return nil, fmt.Errorf("%w: events[%d]: %v", ErrInvalid, i, err)
			}
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

func (r eventJSON) event(now time.Time) (Event, error) {
	ev := Event{ID: r.ID, Gate: r.Gate, Device: r.Device, Kind: r.Type, Sensor: r.Sensor, Credential: r.Credential, Time: now}
	if r.Time != nil {
		ev.Time = r.Time.UTC()
	}
	if r.ID == "" {
		return ev, errors.New("id is required")
	}
	if r.Type == Arm || r.Type == Disarm {
		// Arming comes from keypads (Zigbee2MQTT), which carry a code;
		// the JSON form documented for integrators has none.
		return ev, fmt.Errorf("unknown event type %q", r.Type)
	}
	if err := ev.Validate(); err != nil {
		return ev, err
	}
	if ev.Time.Before(now.Add(-MaxEventAge)) || ev.Time.After(now.Add(MaxClockAhead)) {
		return ev, fmt.Errorf("time %s is too far from the receiver's clock %s", ev.Time.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return ev, nil
}

// MarshalPayload encodes events in the form ParsePayload reads: a single
// object for one event, a batch otherwise.
func MarshalPayload(evs ...Event) ([]byte, error) {
	raw := make([]eventJSON, len(evs))
	for i, ev := range evs {
		t := ev.Time.UTC()
		raw[i] = eventJSON{ID: ev.ID, Gate: ev.Gate, Device: ev.Device, Type: ev.Kind, Sensor: ev.Sensor, Credential: ev.Credential, Time: &t}
	}
	if len(raw) == 1 {
		return json.Marshal(raw[0])
	}
	return json.Marshal(struct {
		Events []eventJSON `json:"events"`
	}{raw})
}
