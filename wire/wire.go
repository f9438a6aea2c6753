// Package wire defines the messages that travel between an edge node and
// central over the edge's outbound websocket. Both sides compile against
// this one definition; every frame is a versioned JSON envelope so that an
// old edge and a new central can tell each other apart instead of guessing.
//
// A connection goes:
//
//	central → edge  challenge  {nonce}
//	edge → central  hello      {edge id, software, config revision, clock, nonce, Ed25519 signature}
//	central → edge  welcome    {central's clock}
//	edge → central  alert | alert_update | event_batch   (from the durable outbox, in order)
//	central → edge  ack        {ids}                      (after the items are stored durably)
//	edge → central  heartbeat  {health}
//	central → edge  request    {id, method: clip | thumbnail | live_start | live_stop | config}
//	edge → central  response   {id, status, data, final}
//
// The package is pure: no sockets, no clocks except in the caller's hands.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the envelope version this build speaks. Version 2 added the
// challenge before hello (signed hellos) and the request/response plumbing.
const Version = 2

// MaxFrameBytes bounds one websocket frame in either direction. An alert
// carries one JPEG snapshot, which at 1280 px stays well under this; clip
// responses are cut into parts below it.
const MaxFrameBytes = 4 << 20

// MaxHelloBytes bounds the frames an edge may send before it has proved who
// it is, so a stranger cannot make central buffer megabytes.
const MaxHelloBytes = 16 << 10

// Message types.
const (
	TypeChallenge   = "challenge"    // central → edge, first frame of a connection
	TypeHello       = "hello"        // edge → central, answers the challenge
	TypeWelcome     = "welcome"      // central → edge, the edge is authenticated
	TypeAlert       = "alert"        // edge → central, from the outbox
	TypeAlertUpdate = "alert_update" // edge → central, from the outbox
	TypeEventBatch  = "event_batch"  // edge → central, from the outbox
	TypeAck         = "ack"          // central → edge: these outbox item IDs are stored
	TypeHeartbeat   = "heartbeat"    // edge → central, periodic health
	TypeRequest     = "request"      // central → edge
	TypeResponse    = "response"     // edge → central, one or more per request
)

// Close codes central uses when it ends an edge connection for a reason the
// edge must act on (4000–4999 are free for applications, RFC 6455 §7.4.2).
const (
	// CloseUnauthorized: the hello did not prove the edge's identity.
	CloseUnauthorized = 4401
	// CloseRevoked: an administrator revoked this edge's credential (or
	// replaced it by enrolling the edge again). Re-enrolment is needed.
	CloseRevoked = 4403
)

// Envelope wraps every frame on the uplink.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// Marshal wraps body in an envelope of the given type.
func Marshal(typ string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("wire: marshal %s: %w", typ, err)
	}
	return json.Marshal(Envelope{V: Version, Type: typ, Body: b})
}

// MarshalRaw wraps an already encoded body (an outbox item) in an envelope.
func MarshalRaw(typ string, body json.RawMessage) ([]byte, error) {
	return json.Marshal(Envelope{V: Version, Type: typ, Body: body})
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
