package clips

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// mp4TimeScale is 90 kHz, the RTP clock: camera timestamps stay exact.
const mp4TimeScale = 90000

// ExportInfo describes an export before its bytes are written.
type ExportInfo struct {
	Camera string        `json:"camera"`
	Codec  string        `json:"codec"`
	Width  int           `json:"width,omitempty"` // from the sequence parameter set
	Height int           `json:"height,omitempty"`
	Start  time.Time     `json:"start"` // the first frame: the keyframe at or before the requested start
	End    time.Time     `json:"end"`   // the end of the last frame
	Frames int           `json:"frames"`
	Bytes  int64         `json:"bytes"` // video bytes (the MP4 adds its index)
	Span   time.Duration `json:"duration"`
	// Next is set when the camera changed codec or parameter sets
	// (picture size, profile: a new sample description) before the end
	// of the range asked for: this export stops there, and the next part
	// of the range starts at Next. Export it with OpenExport(camera,
	// Next, to).
	Next time.Time `json:"next,omitzero"`
}

// Export is a planned MP4 export. It holds a read snapshot of the index
// and protects its range from eviction (which would delete its segments)
// until Close.
type Export struct {
	s       *Store
	info    ExportInfo
	cam     uint32
	hi      int64 // the end of the range asked for
	txn     *badger.Txn
	path    func(int64) string
	release func()
	plan    *rangePlan
	cache   partCache
}

// OpenExport plans the export of a camera's video in [from, to): from the
// keyframe at or before from, each access unit as recorded, timed from
// the camera's timestamps. Only part tables are read here; Export.WriteTo
// streams the payloads. Close it.
//
// An MP4 track has one sample description, so an export holds video of
// one codec and one set of parameter sets (one picture size). Where the
// camera changed either inside the range (a camera reconfigured or
// replaced; the recorder starts a new chunk there), the export stops at
// the change and Info().Next says where the rest of the range starts;
// Parts lists all of them.
func (rd *playback) OpenExport(camera string, from, to time.Time) (*Export, error) {
	s := rd.s
	r, err := s.recorder(camera)
	if err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, fmt.Errorf("clips: export: empty range %v..%v", from, to)
	}
	if to.Sub(from) > s.cfg.MaxExportDuration {
		return nil, fmt.Errorf("%w: %v exceeds %v", ErrTooLong, to.Sub(from), s.cfg.MaxExportDuration)
	}
	if err := rd.acquire(); err != nil {
		return nil, err
	}
	lo, hi := from.UnixNano(), to.UnixNano()
	// The keyframe before from may lie a chunk earlier: lease from there.
	release := s.lease(camera, lo-int64(s.cfg.ChunkDuration)-int64(maxGap), hi)
	txn := s.db.NewTransaction(false)
	e := &Export{s: s, cam: r.id, hi: hi, txn: txn, path: s.segPath(r), release: release}
	e.plan, err = planRange(txn, r.id, e.path, s.bucketDur, lo, hi)
	if err != nil {
		e.Close()
		if errors.Is(err, ErrNoVideo) {
			return nil, fmt.Errorf("%w: %s has no video between %s and %s", ErrNoVideo, camera, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
		}
		return nil, err
	}
	if e.info, err = e.plan.info(camera); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// info describes the export of a plan, or says why it cannot be one MP4.
func (p *rangePlan) info(camera string) (ExportInfo, error) {
	start := p.samples[0].t
	info := ExportInfo{Camera: camera, Codec: p.codec.String(), Start: time.Unix(0, start).UTC(), End: time.Unix(0, p.end).UTC(),
		Frames: len(p.samples), Bytes: p.bytes, Span: time.Duration(p.end - start)}
	info.Width, info.Height = pictureSize(p.codec, p.params)
	if p.rest != 0 {
		info.Next = time.Unix(0, p.rest).UTC()
	}
	if p.bytes > math.MaxUint32-64<<20 || ticks(p.end-start) > math.MaxUint32 {
		return info, fmt.Errorf("%w: %d bytes over %v do not fit an MP4 with 32-bit offsets", ErrTooLong, p.bytes, info.Span)
	}
	return info, nil
}

// Parts lists the exports that together cover the range asked for: this
// one, then one from each codec or picture-size change on (each part's
// Start is the Next of the one before), read from the same snapshot.
// Parts abut (one's End is the next one's Start) unless the recording
// has a gap there. Planning the later parts reads their part tables.
func (e *Export) Parts() ([]ExportInfo, error) {
	parts := []ExportInfo{e.info}
	for next := e.plan.rest; next != 0; {
		p, err := planRange(e.txn, e.cam, e.path, e.s.bucketDur, next, e.hi)
		if err != nil {
			return nil, fmt.Errorf("clips: export of %s from %v: %w", e.info.Camera, time.Unix(0, next).UTC(), err)
		}
		info, err := p.info(e.info.Camera)
		if err != nil {
			return nil, err
		}
		parts = append(parts, info)
		next = p.rest
	}
	return parts, nil
}

// ExportParts lists the MP4 exports that cover a camera's video in
// [from, to): one unless the camera changed codec or picture size in the
// range. Export the first with OpenExport(camera, from, to) and each
// other with OpenExport(camera, part.Start, to).
func (rd *playback) ExportParts(camera string, from, to time.Time) ([]ExportInfo, error) {
	e, err := rd.OpenExport(camera, from, to)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Parts()
}

// Info describes the export.
func (e *Export) Info() ExportInfo { return e.info }

// Close releases the snapshot and the range.
func (e *Export) Close() {
	e.cache.close()
	if e.txn != nil {
		e.txn.Discard()
		e.txn = nil
	}
	if e.release != nil {
		e.release()
		e.release = nil
		e.s.readers.Done()
	}
}

// WriteTo writes the MP4: ftyp and moov first (the index is built from the
// part tables), then mdat with the samples streamed part by part, so
// only one part is in memory at a time and the first bytes leave as soon
// as the plan is made.
func (e *Export) WriteTo(ctx context.Context, w io.Writer) (int64, error) {
	p := e.plan
	codec, err := mp4Codec(p.codec, p.params)
	if err != nil {
		return 0, err
	}
	track := &pmp4.Track{ID: 1, TimeScale: mp4TimeScale, Codec: codec, Samples: make([]*pmp4.Sample, len(p.samples))}
	dts, ptsOff, shift := timing(p)
	track.TimeOffset = int32(-shift)
	for i, s := range p.samples {
		track.Samples[i] = &pmp4.Sample{
			Duration:        uint32(dts[i+1] - dts[i]),
			PTSOffset:       ptsOff[i],
			IsNonSyncSample: !s.key,
			PayloadSize:     s.size,
			GetPayload:      func() ([]byte, error) { return e.cache.payload(p, s) },
		}
	}
	cw := &countingWriter{ctx: ctx, closing: e.s.closing, w: w}
	pres := pmp4.Presentation{Tracks: []*pmp4.Track{track}}
	if err := pres.Marshal(cw); err != nil {
		return cw.n, fmt.Errorf("clips: export %s: %w", e.info.Camera, err)
	}
	return cw.n, nil
}

// Export writes the MP4 of [from, to) to w: OpenExport, WriteTo, Close.
// Where the camera changed codec or picture size in the range, the MP4
// stops there and the returned info's Next is where the rest starts.
func (rd *playback) Export(ctx context.Context, w io.Writer, camera string, from, to time.Time) (ExportInfo, error) {
	e, err := rd.OpenExport(camera, from, to)
	if err != nil {
		return ExportInfo{}, err
	}
	defer e.Close()
	_, err = e.WriteTo(ctx, w)
	return e.Info(), err
}

// timing turns the camera's presentation times into MP4 decode times
// (one more than samples: the last is the end), composition offsets and
// the edit-list shift. Times are rounded once from the first frame, so
// rounding never accumulates. Without B-frames decode time is
// presentation time; with them, decode times are the presentation times
// sorted, moved back by the longest reorder, and the edit list hides
// that delay.
func timing(p *rangePlan) (dts []int64, ptsOff []int32, shift int64) {
	n := len(p.samples)
	base := p.samples[0].t
	pts := make([]int64, n)
	ordered := true
	for i, s := range p.samples {
		pts[i] = ticks(s.t - base)
		if i > 0 && pts[i] <= pts[i-1] {
			ordered = false
		}
	}
	dts = make([]int64, n+1)
	ptsOff = make([]int32, n)
	sorted := pts
	if !ordered {
		sorted = slices.Clone(pts)
		slices.Sort(sorted)
	}
	for i := range n {
		dts[i] = sorted[i]
		if i > 0 && dts[i] <= dts[i-1] {
			dts[i] = dts[i-1] + 1 // equal times: keep decode order strict
		}
		shift = max(shift, dts[i]-pts[i])
	}
	for i := range n {
		ptsOff[i] = int32(pts[i] + shift - dts[i])
	}
	dts[n] = max(ticks(p.end-base), dts[n-1]+1)
	return dts, ptsOff, shift
}

func ticks(ns int64) int64 {
	return (ns*mp4TimeScale + int64(time.Second)/2) / int64(time.Second)
}

// mp4Codec builds the sample entry from a chunk's parameter sets.
func mp4Codec(c av.Codec, params [][]byte) (mp4.Codec, error) {
	var vps, sps, pps []byte
	for _, n := range params {
		if len(n) == 0 {
			continue
		}
		switch c {
		case av.H264:
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps = n
			case h264.NALUTypePPS:
				pps = n
			}
		case av.H265:
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				vps = n
			case h265.NALUType_SPS_NUT:
				sps = n
			case h265.NALUType_PPS_NUT:
				pps = n
			}
		}
	}
	switch {
	case c == av.H264 && sps != nil && pps != nil:
		return &mp4.CodecH264{SPS: sps, PPS: pps}, nil
	case c == av.H265 && vps != nil && sps != nil && pps != nil:
		return &mp4.CodecH265{VPS: vps, SPS: sps, PPS: pps}, nil
	}
	return nil, fmt.Errorf("clips: export: the %v video has no parameter sets", c)
}

// pictureSize reads the picture size from a chunk's sequence parameter
// set; zero when there is none or it does not parse.
func pictureSize(c av.Codec, params [][]byte) (width, height int) {
	for _, n := range params {
		if len(n) == 0 {
			continue
		}
		switch {
		case c == av.H264 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS:
			var sps h264.SPS
			if sps.Unmarshal(n) == nil {
				return sps.Width(), sps.Height()
			}
		case c == av.H265 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT:
			var sps h265.SPS
			if sps.Unmarshal(n) == nil {
				return sps.Width(), sps.Height()
			}
		}
	}
	return 0, 0
}

// countingWriter counts bytes and stops the export when ctx ends (a
// client that went away) or the store closes.
type countingWriter struct {
	ctx     context.Context
	closing <-chan struct{}
	w       io.Writer
	n       int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case <-c.closing:
		return 0, ErrClosed
	default:
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
