package gates

import "context"

// Sink takes events from an adapter. It may block while the consumer is
// busy; it returns an error when the event was not taken (unknown gate,
// shutting down), which a webhook turns into a status code and MQTT into
// a log line.
type Sink func(ctx context.Context, ev Event) error
