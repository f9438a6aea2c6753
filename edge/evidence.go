package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	stdhash "hash"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// Evidence retrieval, the edge's side (central/retrieval.go is the
// other): central asks for a camera's recorded spans, then for the
// description of a range's MP4 export (the edge pins the range and hashes
// the export in pieces), then for the export in byte ranges, and finally
// releases the pins. The export is deterministic, so a range fetched in
// pieces, across reconnects, is the same file as one fetched whole.
//
// Producing byte N of an export means producing every byte before it, so
// the edge keeps a cursor per export it is sending: the next piece of a
// sequential fetch continues where the last ended, and only a resume at
// another offset starts the export again (skipping what came before).

// evidenceCursorIdle closes an export cursor no one has read from.
var evidenceCursorIdle = time.Minute

// maxEvidenceCursors bounds the exports open at once.
const maxEvidenceCursors = 4

// evidenceSettle is how long after a range's end the edge waits (and then
// flushes its clip store) before describing it, so the export no longer
// changes.
const evidenceSettle = time.Second

// evidenceSide is the evidence exporter: central's evidence methods
// (recordings, export_info, export_range, release, contact_sheet; routed
// in rpc.go) answered from the clip store, and the open export cursors.
// The node sets its dependencies at start; the cursors' zero value is ready.
type evidenceSide struct {
	clips    evidenceClips
	up       interface{ ClockOffset() time.Duration } // central's clock against the edge's (uplink)
	camClock *camClocks                               // each camera's time source (selftest.go)
	dataDir  string                                   // where contact sheets decode their export
	log      *slog.Logger

	cursors exportCursors
}

// exportCursors are the exports being sent, one cursor per range; a
// sequential fetch takes the cursor (take) and puts it back moved on
// (advance). Their zero value is ready.
type exportCursors struct {
	mu     sync.Mutex
	open   map[string]*exportCursor // by camera|from|to, not being read
	closed bool
}

// evidenceClips is what the exporter uses of the clip store.
type evidenceClips interface {
	Timeline(camera string, from, to time.Time) (clips.Timeline, error)
	Flush(ctx context.Context) error
	OpenExport(camera string, from, to time.Time) (*clips.Export, error)
	PinRange(id, camera string, from, to time.Time, reason string) (clips.Pin, error)
	Pins() []clips.Pin
	Unpin(id string) error
}

// exportCursor is an export being written into a pipe, read piece by piece.
type exportCursor struct {
	key    string
	off    int64 // bytes read so far
	pr     *io.PipeReader
	cancel context.CancelFunc
	idle   *time.Timer
	done   chan struct{}
}

func (c *exportCursor) close() {
	c.cancel()
	c.idle.Stop()
	_ = c.pr.CloseWithError(errors.New("edge: export cursor closed"))
	<-c.done
}

// close ends every cursor; the node calls it before closing the clip store.
func (e *evidenceSide) close() { e.cursors.close() }

func (cs *exportCursors) close() {
	cs.mu.Lock()
	cs.closed = true
	open := cs.open
	cs.open = nil
	cs.mu.Unlock()
	for _, c := range open {
		c.close()
	}
}

// The evidence methods' handlers, routed in rpc.go.

func (e *evidenceSide) answerRecordings(_ context.Context, req wire.Request, out *uplink.Responder) {
	v, err := e.recordings(req)
	answerEvidenceJSON(out, v, err)
}

func (e *evidenceSide) answerExportInfo(ctx context.Context, req wire.Request, out *uplink.Responder) {
	v, err := e.exportInfo(ctx, req)
	answerEvidenceJSON(out, v, err)
}

func (e *evidenceSide) answerExportRange(ctx context.Context, req wire.Request, out *uplink.Responder) {
	b, err := e.exportRange(ctx, req)
	answerEvidence(out, "application/octet-stream", b, err)
}

func (e *evidenceSide) answerRelease(_ context.Context, req wire.Request, out *uplink.Responder) {
	v, err := e.release(req)
	answerEvidenceJSON(out, v, err)
}

func (e *evidenceSide) answerContactSheet(ctx context.Context, req wire.Request, out *uplink.Responder) {
	b, err := e.contactSheet(ctx, req) // evidence_sheet.go
	answerEvidence(out, "image/jpeg", b, err)
}

// answerEvidence answers an evidence method with data as contentType, or
// with err's status (evidenceFail).
func answerEvidence(out *uplink.Responder, contentType string, data []byte, err error) {
	if err != nil {
		evidenceFail(out, err)
		return
	}
	_ = out.Send(contentType, data, true)
}

// answerEvidenceJSON answers an evidence method with v as JSON, or with
// err's status (evidenceFail).
func answerEvidenceJSON(out *uplink.Responder, v any, err error) {
	if err != nil {
		evidenceFail(out, err)
		return
	}
	b, _ := json.Marshal(v)
	_ = out.Send("application/json", b, true)
}

// evidenceFail answers err: not_available for no video or no such camera,
// bad_request for a range too long, otherwise error.
func evidenceFail(out *uplink.Responder, err error) {
	status := wire.StatusError
	if errors.Is(err, clips.ErrNoVideo) || errors.Is(err, clips.ErrUnknownCamera) {
		status = wire.StatusNotAvailable
	} else if errors.Is(err, clips.ErrTooLong) {
		status = wire.StatusBadRequest
	}
	_ = out.Fail(status, err.Error())
}

// clockOffset is central's clock minus the edge's and how it was measured.
func (e *evidenceSide) clockOffset() (int64, string) {
	return e.up.ClockOffset().Milliseconds(), "edge: central's welcome time minus the edge's hello time plus half the round trip, at the last connect"
}

func (e *evidenceSide) recordings(req wire.Request) (wire.Recordings, error) {
	tl, err := e.clips.Timeline(req.Camera, req.From, req.To)
	if err != nil {
		return wire.Recordings{}, err
	}
	rec := wire.Recordings{Camera: req.Camera, Spans: []wire.Span{}, Gaps: []wire.Span{}}
	for _, s := range tl.Spans {
		rec.Spans = append(rec.Spans, wire.Span{Start: s.Start, End: s.End, Bytes: s.Bytes})
	}
	for _, s := range tl.Gaps {
		rec.Gaps = append(rec.Gaps, wire.Span{Start: s.Start, End: s.End})
	}
	rec.ClockOffsetMS, rec.ClockOffsetSource = e.clockOffset()
	return rec, nil
}

// evidenceExportInfo pins the range and describes its export: the whole
// export is produced once here, into hashes only.
//
// Where the camera changed codec or picture size inside the range, the
// export stops at the change and the manifest's Next says where the rest
// starts; central asks for Next..To as another export. The pin then
// reaches to the end of the range asked for, so the rest stays on disk
// until central has described (and so pinned) it too.
func (e *evidenceSide) exportInfo(ctx context.Context, req wire.Request) (wire.ExportManifest, error) {
	if wait := time.Until(req.To.Add(evidenceSettle)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return wire.ExportManifest{}, ctx.Err()
		}
	}
	if err := e.clips.Flush(ctx); err != nil {
		return wire.ExportManifest{}, err
	}
	ex, err := e.clips.OpenExport(req.Camera, req.From, req.To)
	if err != nil {
		return wire.ExportManifest{}, err
	}
	defer ex.Close()
	info := ex.Info()
	m := wire.ExportManifest{Camera: req.Camera, From: req.From.UTC(), To: req.To.UTC(), Start: info.Start, End: info.End,
		Duration: info.Span, Frames: info.Frames, Codec: info.Codec, Width: info.Width, Height: info.Height,
		ChunkSize: req.Evidence.ChunkSize, EdgeTime: time.Now().UTC(), Next: info.Next}
	m.ClockOffsetMS, m.ClockOffsetSource = e.clockOffset()
	_, _, m.TimeSource = e.camClock.get(req.Camera)
	// Pin what the export covers (and the rest of the range, if it is
	// another export) while the export's lease holds it.
	pinID, pinTo := wire.EvidencePinPrefix+req.Evidence.Key, info.End
	if !info.Next.IsZero() {
		pinTo = req.To.UTC()
	}
	if _, err := e.clips.PinRange(pinID, req.Camera, info.Start, pinTo, "evidence retrieval"); err != nil {
		m.PinError = err.Error()
		e.log.Warn("evidence: cannot pin the range", "camera", req.Camera, "key", req.Evidence.Key, "err", err)
	} else {
		m.PinID = pinID
	}
	h := &pieceHasher{size: req.Evidence.ChunkSize, whole: sha256.New(), piece: sha256.New()}
	if _, err := ex.WriteTo(ctx, h); err != nil {
		return wire.ExportManifest{}, err
	}
	h.finish()
	m.Size, m.Chunks, m.SHA256 = h.n, h.pieces, hex.EncodeToString(h.whole.Sum(nil))
	log := e.log.With("camera", req.Camera, "key", req.Evidence.Key, "start", m.Start, "end", m.End, "codec", m.Codec,
		"width", m.Width, "height", m.Height, "bytes", m.Size, "sha256", m.SHA256)
	if !m.Next.IsZero() {
		log.Info("evidence: export described; the camera changed codec or picture size, the rest of the range is another export", "next", m.Next)
	} else {
		log.Info("evidence: export described")
	}
	return m, nil
}

// pieceHasher hashes a stream whole and in pieces of size bytes.
type pieceHasher struct {
	size   int64
	n      int64
	whole  stdhash.Hash
	piece  stdhash.Hash
	inPc   int64
	pieces []string
}

func (h *pieceHasher) Write(p []byte) (int, error) {
	total := len(p)
	h.whole.Write(p)
	h.n += int64(len(p))
	for len(p) > 0 {
		k := min(int64(len(p)), h.size-h.inPc)
		h.piece.Write(p[:k])
		h.inPc += k
		p = p[k:]
		if h.inPc == h.size {
			h.pieces = append(h.pieces, hex.EncodeToString(h.piece.Sum(nil)))
			h.piece.Reset()
			h.inPc = 0
		}
	}
	return total, nil
}

func (h *pieceHasher) finish() {
	if h.inPc > 0 {
		h.pieces = append(h.pieces, hex.EncodeToString(h.piece.Sum(nil)))
		h.inPc = 0
	}
}

// evidenceRange returns bytes [offset, offset+length) of the export (fewer
// at its end).
func (e *evidenceSide) exportRange(ctx context.Context, req wire.Request) ([]byte, error) {
	p := req.Evidence
	c, err := e.cursors.take(req, e.clips)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, p.Length)
	type result struct {
		k   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		k, err := io.ReadFull(c.pr, buf)
		res <- result{k, err}
	}()
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		c.close() // the read in flight ends with the cursor
		<-res
		return nil, ctx.Err()
	}
	switch {
	case r.err == nil, errors.Is(r.err, io.ErrUnexpectedEOF), errors.Is(r.err, io.EOF):
	default:
		c.close()
		return nil, fmt.Errorf("export of %s at byte %d: %w", req.Camera, p.Offset, r.err)
	}
	if r.k == 0 {
		c.close()
		return nil, fmt.Errorf("%w: offset %d is past the end of the export", clips.ErrNoVideo, p.Offset)
	}
	e.cursors.advance(c, int64(r.k), r.err != nil)
	return buf[:r.k], nil
}

func cursorKey(req wire.Request) string {
	return req.Camera + "|" + req.From.UTC().Format(time.RFC3339Nano) + "|" + req.To.UTC().Format(time.RFC3339Nano)
}

// take returns the export cursor standing at the request's offset,
// taking it out of the map (advance puts it back), or starts one from
// the clip store.
func (cs *exportCursors) take(req wire.Request, store interface {
	OpenExport(camera string, from, to time.Time) (*clips.Export, error)
}) (*exportCursor, error) {
	key, off := cursorKey(req), req.Evidence.Offset
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		return nil, errors.New("edge is stopping")
	}
	c := cs.open[key]
	if c != nil {
		delete(cs.open, key)
	}
	var evict *exportCursor
	if len(cs.open) >= maxEvidenceCursors {
		for k, o := range cs.open {
			evict = o
			delete(cs.open, k)
			break
		}
	}
	cs.mu.Unlock()
	if evict != nil {
		evict.close()
	}
	if c != nil && c.off == off {
		// Out of the map, an expiry that fires now leaves it alone.
		c.idle.Stop()
		return c, nil
	}
	if c != nil {
		c.close()
	}
	ex, err := store.OpenExport(req.Camera, req.From, req.To)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	c = &exportCursor{key: key, pr: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer ex.Close()
		_, err := ex.WriteTo(ctx, pw)
		if err == nil {
			err = io.EOF
		}
		_ = pw.CloseWithError(err)
	}()
	c.idle = time.AfterFunc(evidenceCursorIdle, func() { cs.expire(c) })
	c.idle.Stop()
	if off > 0 {
		if _, err := io.CopyN(io.Discard, pr, off); err != nil {
			c.close()
			return nil, fmt.Errorf("%w: offset %d is past the end of the export (%v)", clips.ErrNoVideo, off, err)
		}
		c.off = off
	}
	return c, nil
}

// advance moves a cursor on after a read and keeps it for the next piece,
// unless the export has ended.
func (cs *exportCursors) advance(c *exportCursor, k int64, ended bool) {
	c.off += k
	cs.mu.Lock()
	if ended || cs.closed {
		cs.mu.Unlock()
		c.close()
		return
	}
	if cs.open == nil {
		cs.open = map[string]*exportCursor{}
	}
	if old := cs.open[c.key]; old != nil && old != c {
		defer old.close()
	}
	cs.open[c.key] = c
	c.idle.Reset(evidenceCursorIdle)
	cs.mu.Unlock()
}

// expire closes a cursor left idle.
func (cs *exportCursors) expire(c *exportCursor) {
	cs.mu.Lock()
	if cs.open[c.key] != c {
		cs.mu.Unlock()
		return
	}
	delete(cs.open, c.key)
	cs.mu.Unlock()
	c.close()
}

// evidenceRelease drops the retrieval's own pin and every pin of the
// camera that lies within the fetched range: central holds that video now.
func (e *evidenceSide) release(req wire.Request) (wire.Released, error) {
	out := wire.Released{Pins: []string{}}
	own := wire.EvidencePinPrefix + req.Evidence.Key
	for _, p := range e.clips.Pins() {
		within := p.Camera == req.Camera && !p.From.Before(req.From) && !p.To.After(req.To)
		if p.ID != own && !within {
			continue
		}
		if err := e.clips.Unpin(p.ID); err != nil {
			return out, err
		}
		out.Pins = append(out.Pins, p.ID)
	}
	e.log.Info("evidence: pins released", "camera", req.Camera, "key", req.Evidence.Key, "pins", out.Pins)
	return out, nil
}
