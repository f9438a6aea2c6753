package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Methods central may ask an edge for. They travel down the edge's own
// connection, so the edge needs no inbound port.
const (
	MethodClip      = "clip"       // MP4 of Camera from From to To
	MethodThumbnail = "thumbnail"  // JPEG of Camera at At
	MethodLiveStart = "live_start" // start live view of Camera
	MethodLiveStop  = "live_stop"  // stop live view of Camera
	MethodConfig    = "config"     // apply config revision Revision
	// MethodSetupReopen opens the box's setup page again for an installer.
	MethodSetupReopen = "setup_reopen"
)

// Methods lists every method central may send an edge: those above, the
// evidence methods (evidence.go), the playback methods (playback.go) and MethodAuditCheckpoint (audit.go). An
// edge's request table (edge/uplink.Router) must have a handler for each.
func Methods() []string {
	return []string{
		MethodClip, MethodThumbnail, MethodLiveStart, MethodLiveStop, MethodConfig, MethodSetupReopen,
		MethodRecordings, MethodExportInfo, MethodExportRange, MethodRelease, MethodContactSheet,
		MethodPlayback, MethodOverlay,
		MethodAuditCheckpoint,
	}
}

// Response statuses.
const (
	StatusOK           = "ok"
	StatusNotAvailable = "not_available" // the edge cannot serve this (yet, or no such video)
	StatusBadRequest   = "bad_request"
	StatusError        = "error"
	// StatusBusy: the edge runs as many requests of this kind as it
	// allows; ask again shortly (central answers 503 with Retry-After).
	StatusBusy = "busy"
)

// MaxResponsePart bounds the data of one response frame; base64 grows it by
// a third and the envelope must stay under MaxFrameBytes.
const MaxResponsePart = 2 << 20

// Request is central asking an edge for something.
type Request struct {
	ID       string          `json:"id"`
	Method   string          `json:"method"`
	Camera   string          `json:"camera,omitempty"`
	From     time.Time       `json:"from,omitzero"`
	To       time.Time       `json:"to,omitzero"`
	At       time.Time       `json:"at,omitzero"`
	Revision string          `json:"revision,omitempty"`
	Config   json.RawMessage `json:"config,omitempty"`
	Evidence *EvidenceParams `json:"evidence,omitempty"` // evidence methods (evidence.go)
	Playback *PlaybackParams `json:"playback,omitempty"` // MethodPlayback (playback.go)
}

// Validate checks a request's shape for its method.
func (r *Request) Validate() error {
	if err := checkID("request", r.ID); err != nil {
		return err
	}
	switch r.Method {
	case MethodClip:
		if r.Camera == "" || r.From.IsZero() || r.To.IsZero() || !r.To.After(r.From) {
			return errors.New("request: clip needs camera and from < to")
		}
	case MethodThumbnail:
		if r.Camera == "" || r.At.IsZero() {
			return errors.New("request: thumbnail needs camera and at")
		}
	case MethodLiveStart, MethodLiveStop:
		if r.Camera == "" {
			return fmt.Errorf("request: %s needs camera", r.Method)
		}
	case MethodConfig:
		if r.Revision == "" || len(r.Config) == 0 {
			return errors.New("request: config needs revision and config")
		}
	case MethodSetupReopen, MethodAuditCheckpoint:
	default:
		if ok, err := r.validateEvidence(); ok {
			return err
		}
		if ok, err := r.validatePlayback(); ok {
			return err
		}
		return fmt.Errorf("request: unknown method %q", r.Method)
	}
	return nil
}

// Response is one part of an edge's answer. A clip comes in several parts
// (Part 0, 1, ...); the last has Final set. Every other answer is one part.
type Response struct {
	ID          string `json:"id"` // the request's ID
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Part        int    `json:"part"`
	Final       bool   `json:"final"`
	Data        []byte `json:"data,omitempty"`
}
