package uplink

import (
	"context"
	"errors"

	"github.com/vigil-perimeter/vigil/wire"
)

// RequestHandler answers central's requests of one method, routed to it
// by a Router (router.go). It runs in its own goroutine per request, with
// ctx ending when the connection does, and answers through out: once for
// most methods, in parts for a clip (Responder splits large data itself).
// An answer the handler leaves open is ended for it.
type RequestHandler interface {
	HandleRequest(ctx context.Context, req wire.Request, out *Responder)
}

// NotAvailable answers every request with status "not_available": for a
// method this edge knows but cannot serve (a build without live view).
type NotAvailable struct{}

// HandleRequest implements RequestHandler.
func (NotAvailable) HandleRequest(_ context.Context, req wire.Request, out *Responder) {
	_ = out.Fail(wire.StatusNotAvailable, req.Method+" is not available on this edge yet")
}

// errResponderDone is returned by a Responder after its final part.
var errResponderDone = errors.New("uplink: response already finished")

// Responder sends one request's answer back over the connection.
type Responder struct {
	id     string
	part   int
	final  bool
	send   func(wire.Response) error
	stream *Stream
	// onFinal, if set, runs once just before the final part is handed
	// on: the request's slot is free by the time central sees the end.
	onFinal func()
}

// Stream returns the connection's binary channel (live video), which
// outlives this answer and ends with the connection: the same *Stream for
// every request on one connection. Nil in a Responder not made by a
// session.
func (r *Responder) Stream() *Stream { return r.stream }

// Errors of Stream.TrySend.
var (
	ErrStreamFull   = errors.New("uplink: binary send queue full")
	ErrStreamClosed = errors.New("uplink: connection closed")
)

// Stream sends binary websocket frames (wire.MarshalLive) on one
// connection, interleaved with the JSON frames by the session's single
// writer. Sending never blocks: a full queue (a slow link) is refused, and
// the caller decides what to drop.
type Stream struct {
	frames chan<- []byte
	done   <-chan struct{}
}

// TrySend queues frame, or returns ErrStreamFull or ErrStreamClosed.
func (s *Stream) TrySend(frame []byte) error {
	select {
	case <-s.done:
		return ErrStreamClosed
	default:
	}
	select {
	case s.frames <- frame:
		return nil
	case <-s.done:
		return ErrStreamClosed
	default:
		return ErrStreamFull
	}
}

// Done is closed when the connection has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// answerPart is the data in one response frame the edge sends: well under
// wire.MaxResponsePart, so a keepalive ping written between two parts is
// never far behind in the stream (see sendBuffer).
const answerPart = 256 << 10

// Send sends data as part of an ok answer; final marks the last part.
// Data larger than one frame allows is split into several parts.
func (r *Responder) Send(contentType string, data []byte, final bool) error {
	for {
		chunk := data
		last := final
		if len(chunk) > answerPart {
			chunk, last = chunk[:answerPart], false
		}
		if err := r.emit(wire.Response{Status: wire.StatusOK, ContentType: contentType, Data: chunk, Final: last}); err != nil {
			return err
		}
		data = data[len(chunk):]
		if len(data) == 0 {
			return nil
		}
	}
}

// Fail answers with a status other than ok (not_available, bad_request,
// error) and ends the answer.
func (r *Responder) Fail(status, msg string) error {
	return r.emit(wire.Response{Status: status, Error: msg, Final: true})
}

func (r *Responder) emit(p wire.Response) error {
	if r.final {
		return errResponderDone
	}
	p.ID, p.Part = r.id, r.part
	r.part++
	r.final = p.Final
	if p.Final && r.onFinal != nil {
		r.onFinal()
	}
	return r.send(p)
}

// finish ends an answer the handler left open.
func (r *Responder) finish() {
	if r.final {
		return
	}
	if r.part == 0 {
		_ = r.Fail(wire.StatusError, "the edge produced no answer")
		return
	}
	_ = r.emit(wire.Response{Status: wire.StatusOK, Final: true})
}
