package gates

import (
	"context"
	"errors"
)

// Sink takes events from an adapter. It may block while the consumer is
// busy; it returns an error when the event was not taken (unknown gate,
// shutting down), which a webhook turns into a status code and MQTT into
// a log line. A nil return means the event is durable: the adapter may
// acknowledge it to its source.
type Sink func(ctx context.Context, ev Event) error

// BatchSink takes several events at once (one durable write for all of
// them) and returns one error per event, nil for each taken.
type BatchSink func(ctx context.Context, evs []Event) []error

// ErrDuplicate is a sink's answer for an event whose ID was already taken
// from the same source (a retry, a QoS 1 redelivery, a replayed request),
// also across restarts within the replay window.
var ErrDuplicate = errors.New("event already received")

// ErrNotTaken wraps a sink's failure that is not the event's fault (the
// journal could not write, the edge is stopping): the source should send
// it again, so an MQTT message is left unacknowledged.
var ErrNotTaken = errors.New("event not taken for now")
