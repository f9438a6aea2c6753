// Package fmp4live turns a camera's access units into fragmented MP4 for
// live view: an initialisation segment (ftyp+moov) built from the stream's
// parameter sets, then media fragments (moof+mdat) of about Target each.
// Nothing is decoded or re-encoded; samples are the camera's own H.264 or
// H.265 access units, timed exactly from their presentation timestamps at
// 90 kHz. A fragment never spans a keyframe: every keyframe starts a new
// fragment, so a viewer who joins late can start at any key fragment.
//
// Cameras are configured without B-frames (as the edge requires), so
// decode order is presentation order and no composition offsets are
// written. A sample's duration is the distance to the next access unit's
// PTS, which is why a fragment is emitted when the access unit after its
// last sample arrives.
package fmp4live

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// Timescale is the track timescale (ticks per second), RTP's video clock.
const Timescale = 90000

// DefaultTarget is the default fragment duration: short enough to keep
// glass-to-glass latency low, long enough that the moof overhead (~100
// bytes) stays under 1 % at camera bitrates.
const DefaultTarget = 250 * time.Millisecond

// maxJump is a PTS step beyond which the timeline is treated as broken (a
// camera reconnect restarts its clock) and continued from the last sample.
const maxJump = 5 * time.Second

// Segment is one piece of output.
type Segment struct {
	Init     bool   // an initialisation segment; Codec is set
	Codec    string // RFC 6381 codec string, e.g. "avc1.4d401e"
	Key      bool   // the fragment starts with a keyframe
	Seq      uint32 // fragment sequence number (1, 2, ... since the init)
	Time     time.Time
	BaseTime uint64 // decode time of the first sample, in Timescale ticks
	Duration time.Duration
	Samples  int
	Data     []byte
}

// Fragmenter builds segments from access units. It is not safe for
// concurrent use.
type Fragmenter struct {
	// Target is the fragment duration to aim for (DefaultTarget if zero).
	Target time.Duration

	codec    av.Codec
	params   [][]byte // parameter sets of the current init
	codecStr string
	waitKey  bool
	started  bool
	pending  []streams.AccessUnit
	seq      uint32

	originPTS time.Duration // PTS that maps to originTicks
	origin    uint64
	lastPTS   time.Duration
	lastDur   time.Duration
	timed     bool
}

// New returns a fragmenter that waits for the first keyframe.
func New(target time.Duration) *Fragmenter {
	return &Fragmenter{Target: target, waitKey: true}
}

// Codec is the RFC 6381 codec string of the current init ("" before it).
func (f *Fragmenter) Codec() string { return f.codecStr }

// Resync drops what is pending and skips access units until the next
// keyframe: the caller lost some, and P-frames without their reference
// would only decode to garbage. The timeline continues, so the gap shows
// as a gap.
func (f *Fragmenter) Resync() {
	f.pending = f.pending[:0]
	f.waitKey = true
}

// Push adds one access unit and returns the segments it completes: the
// previous fragment, preceded by a new init when the parameter sets
// changed.
func (f *Fragmenter) Push(au streams.AccessUnit) ([]Segment, error) {
	target := f.Target
	if target <= 0 {
		target = DefaultTarget
	}
	var out []Segment
	if au.Key {
		params := paramSets(au)
		if len(params) > 0 && (!f.started || au.Codec != f.codec || !sameParams(params, f.params)) {
			// New or changed stream: finish what is pending, then a new init.
			if seg, ok, err := f.fragment(f.lastDur); err != nil {
				return nil, err
			} else if ok {
				out = append(out, seg)
			}
			init, codec, err := makeInit(au.Codec, params)
			if err != nil {
				return nil, err
			}
			f.codec, f.params, f.codecStr, f.started, f.seq = au.Codec, params, codec, true, 0
			out = append(out, Segment{Init: true, Codec: codec, Time: au.Time, Data: init})
		}
		if f.started {
			f.waitKey = false
		}
	}
	if f.waitKey || !f.started || au.Codec != f.codec {
		f.Resync()
		return out, nil
	}
	d, jump := f.step(au.PTS)
	if len(f.pending) > 0 && (au.Key || jump || au.PTS-f.pending[0].PTS >= target) {
		seg, ok, err := f.fragment(d)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, seg)
		}
	}
	f.commit(au.PTS, d, jump)
	f.pending = append(f.pending, au)
	return out, nil
}

// Flush emits what is pending, guessing the last sample's duration from
// the one before.
func (f *Fragmenter) Flush() (Segment, bool, error) { return f.fragment(f.lastDur) }

// step is the duration of the sample before pts, and whether pts breaks
// the timeline (a camera that reconnected restarts its clock; one that
// froze jumps ahead): then the timeline goes on from the last sample.
func (f *Fragmenter) step(pts time.Duration) (time.Duration, bool) {
	if !f.timed {
		return 0, false
	}
	d := pts - f.lastPTS
	if d <= 0 || d > maxJump {
		if f.lastDur > 0 {
			return f.lastDur, true
		}
		return 100 * time.Millisecond, true
	}
	return d, false
}

// commit moves the timeline to pts.
func (f *Fragmenter) commit(pts, d time.Duration, jump bool) {
	switch {
	case !f.timed:
		f.timed, f.originPTS, f.origin = true, pts, 0
	case jump:
		f.origin = f.ticks(f.lastPTS) + uint64(d*Timescale/time.Second)
		f.originPTS = pts
	}
	if d > 0 {
		f.lastDur = d
	}
	f.lastPTS = pts
}

func (f *Fragmenter) ticks(pts time.Duration) uint64 {
	return f.origin + uint64((pts-f.originPTS)*Timescale/time.Second)
}

// fragment marshals the pending samples; lastDur is the last one's duration.
func (f *Fragmenter) fragment(lastDur time.Duration) (Segment, bool, error) {
	if len(f.pending) == 0 {
		return Segment{}, false, nil
	}
	if lastDur <= 0 {
		lastDur = 100 * time.Millisecond
	}
	samples := make([]*fmp4.Sample, len(f.pending))
	base := f.ticks(f.pending[0].PTS)
	t := base
	var total time.Duration
	for i, au := range f.pending {
		s := &fmp4.Sample{}
		var err error
		if au.Codec == av.H265 {
			err = s.FillH265(0, au.NALUs)
		} else {
			err = s.FillH264(0, au.NALUs)
		}
		if err != nil {
			return Segment{}, false, fmt.Errorf("fmp4live: sample: %w", err)
		}
		s.IsNonSyncSample = !au.Key
		var end uint64
		if i+1 < len(f.pending) {
			end = f.ticks(f.pending[i+1].PTS)
			if end <= t { // a reset between them: keep the timeline moving
				end = t + uint64(lastDur*Timescale/time.Second)
			}
		} else {
			end = t + uint64(lastDur*Timescale/time.Second)
		}
		s.Duration = uint32(end - t)
		total += time.Duration(end-t) * time.Second / Timescale
		t = end
		samples[i] = s
	}
	f.seq++
	p := fmp4.Part{SequenceNumber: f.seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: base, Samples: samples}}}
	var buf seekablebuffer.Buffer
	if err := p.Marshal(&buf); err != nil {
		return Segment{}, false, fmt.Errorf("fmp4live: fragment: %w", err)
	}
	seg := Segment{Key: f.pending[0].Key, Seq: f.seq, Time: f.pending[0].Time, BaseTime: base,
		Duration: total, Samples: len(samples), Data: buf.Bytes()}
	f.pending = f.pending[:0]
	return seg, true, nil
}

// paramSets returns the parameter sets a key access unit carries: SPS and
// PPS for H.264, VPS, SPS and PPS for H.265 (in that order).
func paramSets(au streams.AccessUnit) [][]byte {
	var vps, sps, pps []byte
	for _, n := range au.NALUs {
		if len(n) == 0 {
			continue
		}
		if au.Codec == av.H265 {
			switch (n[0] >> 1) & 0x3f {
			case 32:
				vps = n
			case 33:
				sps = n
			case 34:
				pps = n
			}
			continue
		}
		switch n[0] & 0x1f {
		case 7:
			sps = n
		case 8:
			pps = n
		}
	}
	if sps == nil || pps == nil || (au.Codec == av.H265 && vps == nil) {
		return nil
	}
	if au.Codec == av.H265 {
		return [][]byte{clone(vps), clone(sps), clone(pps)}
	}
	return [][]byte{clone(sps), clone(pps)}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func sameParams(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// InitSegment is the initialisation segment (ftyp+moov with mvex, one
// track at Timescale) and the RFC 6381 codec string of a video's
// parameter sets: VPS, SPS, PPS for H.265, SPS, PPS for H.264 (in that
// order). Recorded playback (edge/clips) starts with it, as live view does.
func InitSegment(codec av.Codec, params [][]byte) ([]byte, string, error) {
	return makeInit(codec, params)
}

// makeInit builds the initialisation segment and the codec string.
func makeInit(codec av.Codec, params [][]byte) ([]byte, string, error) {
	var c mp4.Codec
	var name string
	if codec == av.H265 {
		c = &mp4.CodecH265{VPS: params[0], SPS: params[1], PPS: params[2]}
		name = hevcCodec(params[1])
	} else {
		sps := params[0]
		if len(sps) < 4 {
			return nil, "", fmt.Errorf("fmp4live: SPS of %d bytes", len(sps))
		}
		c = &mp4.CodecH264{SPS: params[0], PPS: params[1]}
		name = fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
	}
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: Timescale, Codec: c}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, "", fmt.Errorf("fmp4live: init: %w", err)
	}
	return buf.Bytes(), name, nil
}

// hevcCodec is the RFC 6381 / ISO 14496-15 codec string of an H.265 SPS,
// e.g. "hvc1.1.6.L93.B0".
func hevcCodec(sps []byte) string {
	b := h264.EmulationPreventionRemove(sps)
	// 2 bytes NAL header, 1 byte vps id / sub-layers, then profile_tier_level.
	if len(b) < 15 {
		return "hvc1"
	}
	ptl := b[3:]
	space, tier, profile := ptl[0]>>6, (ptl[0]>>5)&1, ptl[0]&0x1f
	compat := uint32(ptl[1])<<24 | uint32(ptl[2])<<16 | uint32(ptl[3])<<8 | uint32(ptl[4])
	var rev uint32
	for i := 0; i < 32; i++ {
		if compat&(1<<i) != 0 {
			rev |= 1 << (31 - i)
		}
	}
	level := ptl[11]
	s := "hvc1."
	if space > 0 {
		s += string(rune('A' + space - 1))
	}
	s += fmt.Sprintf("%d.%X.", profile, rev)
	if tier == 1 {
		s += "H"
	} else {
		s += "L"
	}
	s += fmt.Sprintf("%d", level)
	cons := ptl[5:11]
	n := len(cons)
	for n > 0 && cons[n-1] == 0 {
		n--
	}
	var parts []string
	for _, c := range cons[:n] {
		parts = append(parts, fmt.Sprintf("%X", c))
	}
	if len(parts) > 0 {
		s += "." + strings.Join(parts, ".")
	}
	return s
}
