// Package ps muxes H.264 and H.265 access units into an MPEG-2 program
// stream (ISO/IEC 13818-1 §2.5, "PS"), the container GB/T 28181 carries
// over RTP (payload "PS/90000", GB/T 28181-2016 Annex C). The camera's own
// coded pictures go in unchanged; nothing is re-encoded.
//
// Each frame becomes one pack (§2.5.3.3):
//
//	pack_header                              14 bytes, SCR = DTS
//	[system_header  program_stream_map]      on keyframes and the first frame
//	PES(0xE0, PTS[, DTS]) PES(0xE0) ...      the Annex-B access unit, split
//	                                         at maxPESPayload bytes
//
// The first PES of a frame carries the PTS (and the DTS when it differs)
// and data_alignment_indicator; the ones that continue it carry neither
// (§2.4.3.7: a PTS belongs to the PES packet holding the access unit's
// first byte). That is what GB devices send and what ffmpeg's "mpeg"
// demuxer and the usual platforms (ZLMediaKit, WVP) read.
//
// The muxer is pure: no I/O, no goroutines, and after warm-up no
// allocation beyond growing the caller's buffer.
package ps

import (
	"errors"
	"fmt"
	"time"
)

// Codec is a video coding format, as its stream_type in the program stream
// map (ISO/IEC 13818-1 §2.4.4.9, stream_type, as amended for AVC and HEVC).
type Codec uint8

// Supported codecs.
const (
	H264 Codec = 0x1B // AVC video stream, ITU-T H.264 | ISO/IEC 14496-10
	H265 Codec = 0x24 // HEVC video stream, ITU-T H.265 | ISO/IEC 23008-2
)

func (c Codec) String() string {
	switch c {
	case H264:
		return "H264"
	case H265:
		return "H265"
	}
	return fmt.Sprintf("Codec(0x%02x)", uint8(c))
}

// Stream IDs (§2.4.3.7, stream_id).
const (
	// VideoStreamID is the first MPEG video stream, the one GB devices use.
	VideoStreamID = 0xE0
	// AudioStreamID is the first MPEG audio stream, where GB devices put
	// G.711 (stream_type 0x90) or AAC (0x0F). Not muxed yet: audio would add
	// an entry to Muxer.streams and a method like Append for its frames.
	AudioStreamID = 0xC0
)

const (
	packStartCode   = 0xBA // §2.5.3.2
	systemHeaderID  = 0xBB // §2.5.3.5
	programStreamID = 0xBC // program_stream_map, §2.5.4

	// PES_packet_length is 16 bits and counts everything after itself
	// (§2.4.3.7): 3 bytes of flags, up to 10 of PTS and DTS, the payload.
	maxPESLength  = 0xFFFF
	pesHeaderMax  = 3 + 10
	maxPESPayload = maxPESLength - pesHeaderMax

	// DefaultMuxRate is program_mux_rate in units of 50 bytes/s (§2.5.3.4):
	// 20 Mbit/s, above any camera main stream. Decoders use it only for
	// buffering hints; GB platforms ignore it.
	DefaultMuxRate = 20_000_000 / 8 / 50

	// P-STD buffer bound for the video stream, in units of 1024 bytes
	// (P-STD_buffer_bound_scale = 1, §2.5.3.6): 1 MiB.
	videoBufferBound = 1024

	tsMask = 1<<33 - 1 // PTS, DTS and SCR are 33-bit counters of 90 kHz
)

// ErrEmpty is returned for an access unit without NAL units.
var ErrEmpty = errors.New("ps: access unit has no NAL units")

// elementary is one stream of the program: its stream_id and stream_type.
type elementary struct {
	id  byte
	typ byte
}

// Muxer turns the access units of one video stream into program-stream
// packs. One goroutine owns it; the zero value is not usable (New).
type Muxer struct {
	codec   Codec
	muxRate uint32
	streams []elementary // video first; audio would be appended here

	// Last parameter sets seen (copies), put in front of keyframes that
	// come without them. H.264 uses sps and pps; H.265 all three.
	vps, sps, pps []byte

	started bool // the first pack (with system header and PSM) is out
}

// New makes a muxer for codec (H264 or H265).
func New(codec Codec) (*Muxer, error) {
	if codec != H264 && codec != H265 {
		return nil, fmt.Errorf("ps: unsupported codec %v", codec)
	}
	return &Muxer{
		codec:   codec,
		muxRate: DefaultMuxRate,
		streams: []elementary{{id: VideoStreamID, typ: byte(codec)}},
	}, nil
}

// Ticks converts a presentation time (streams.AccessUnit.PTS) to the
// 90 kHz units of Append.
func Ticks(d time.Duration) int64 { return d.Microseconds() * 9 / 100 }

// Codec is the muxer's video codec.
func (m *Muxer) Codec() Codec { return m.codec }

// IsKey reports whether an access unit is a random access point: an IDR
// picture for H.264, an IRAP picture (BLA, IDR, CRA) for H.265.
func IsKey(codec Codec, au [][]byte) bool {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if codec == H264 {
			if n[0]&0x1f == 5 {
				return true
			}
			continue
		}
		if t := (n[0] >> 1) & 0x3f; t >= 16 && t <= 23 {
			return true
		}
	}
	return false
}

// NAL unit types the muxer looks at.
const (
	h264AUD = 9
	h264SPS = 7
	h264PPS = 8
	h265VPS = 32
	h265SPS = 33
	h265PPS = 34
	h265AUD = 35
)

// paramKind says which parameter set a NAL unit is (0 VPS, 1 SPS, 2 PPS),
// -1 for none; aud reports an access unit delimiter.
func (m *Muxer) paramKind(n []byte) (kind int, aud bool) {
	if len(n) == 0 {
		return -1, false
	}
	if m.codec == H264 {
		switch n[0] & 0x1f {
		case h264SPS:
			return 1, false
		case h264PPS:
			return 2, false
		case h264AUD:
			return -1, true
		}
		return -1, false
	}
	switch (n[0] >> 1) & 0x3f {
	case h265VPS:
		return 0, false
	case h265SPS:
		return 1, false
	case h265PPS:
		return 2, false
	case h265AUD:
		return -1, true
	}
	return -1, false
}

// Append muxes one access unit (NAL units without start codes, in decode
// order) with its PTS and DTS in 90 kHz units, appends the pack to dst and
// returns it with whether the unit was a keyframe. Timestamps are taken
// modulo 2^33 as the standard counts them. A keyframe that comes without
// some of its parameter sets gets the last ones seen, after any access unit
// delimiter, so a viewer that joins at any keyframe can decode (GB/T 28181
// platforms expect them in band). Pass dst[:0] of the previous result to
// reuse its memory.
func (m *Muxer) Append(dst []byte, au [][]byte, pts, dts int64) ([]byte, bool, error) {
	esLen := 0
	for _, n := range au {
		if len(n) > 0 {
			esLen += 4 + len(n)
		}
	}
	if esLen == 0 {
		return dst, false, ErrEmpty
	}
	key := IsKey(m.codec, au)

	// Remember parameter sets; find those a keyframe lacks and where they
	// go: after the leading delimiter and parameter sets.
	var have [3]bool
	insertAt := 0
	leading := true
	for i, n := range au {
		kind, aud := m.paramKind(n)
		if kind >= 0 {
			have[kind] = true
			m.keep(kind, n)
		}
		if leading && (aud || kind >= 0 || len(n) == 0) {
			insertAt = i + 1
		} else {
			leading = false
		}
	}
	var missing [3][]byte // VPS, SPS, PPS to insert
	if key {
		for kind := range 3 {
			if p := m.stored(kind); !have[kind] && len(p) > 0 {
				missing[kind] = p
				esLen += 4 + len(p)
			}
		}
	}

	scr := dts & tsMask
	dst = m.appendPackHeader(dst, scr)
	if key || !m.started {
		dst = m.appendSystemHeader(dst)
		dst = m.appendPSM(dst)
		m.started = true
	}

	w := pesWriter{dst: dst, left: esLen, pts: pts & tsMask, dts: dts & tsMask, first: true}
	for i := 0; i <= len(au); i++ {
		if i == insertAt {
			for _, p := range missing {
				if p != nil {
					w.nalu(p)
				}
			}
		}
		if i < len(au) && len(au[i]) > 0 {
			w.nalu(au[i])
		}
	}
	return w.dst, key, nil
}

func (m *Muxer) stored(kind int) []byte {
	switch kind {
	case 0:
		return m.vps
	case 1:
		return m.sps
	}
	return m.pps
}

// keep copies a parameter set, reusing the old copy's memory.
func (m *Muxer) keep(kind int, n []byte) {
	p := &m.pps
	switch kind {
	case 0:
		p = &m.vps
	case 1:
		p = &m.sps
	}
	*p = append((*p)[:0], n...)
}

// appendPackHeader writes an MPEG-2 pack header (§2.5.3.3)
// with system_clock_reference_base = scr, extension 0, no stuffing.
func (m *Muxer) appendPackHeader(b []byte, scr int64) []byte {
	s := uint64(scr)
	r := m.muxRate
	return append(b,
		0x00, 0x00, 0x01, packStartCode,
		// '01', SCR[32..30], marker, SCR[29..28]
		0x44|byte(s>>27)&0x38|byte(s>>28)&0x03,
		byte(s>>20), // SCR[27..20]
		// SCR[19..15], marker, SCR[14..13]
		byte(s>>12)&0xF8|0x04|byte(s>>13)&0x03,
		byte(s>>5), // SCR[12..5]
		// SCR[4..0], marker, SCR_extension[8..7] = 0
		byte(s<<3)&0xF8|0x04,
		0x01, // SCR_extension[6..0] = 0, marker
		// program_mux_rate (22 bits), two markers
		byte(r>>14), byte(r>>6), byte(r<<2)|0x03,
		0xF8, // reserved '11111', pack_stuffing_length 0
	)
}

// appendSystemHeader writes the system header (§2.5.3.5)
// that lists each stream with its P-STD buffer bound.
func (m *Muxer) appendSystemHeader(b []byte) []byte {
	r := m.muxRate // rate_bound >= program_mux_rate of every pack
	audio := 0
	video := 0
	for _, e := range m.streams {
		if e.id >= 0xE0 {
			video++
		} else {
			audio++
		}
	}
	n := 6 + 3*len(m.streams) // header_length: bytes after itself
	b = append(b, 0x00, 0x00, 0x01, systemHeaderID, byte(n>>8), byte(n),
		// marker, rate_bound (22 bits), marker
		0x80|byte(r>>15), byte(r>>7), byte(r<<1)|0x01,
		// audio_bound (6), fixed_flag 0, CSPS_flag 0
		byte(audio<<2),
		// system_audio_lock_flag 1, system_video_lock_flag 1, marker, video_bound (5)
		0xE0|byte(video),
		// packet_rate_restriction_flag 0, reserved '1111111'
		0x7F,
	)
	for _, e := range m.streams {
		// '11', P-STD_buffer_bound_scale 1 (x1024; must be 1 for video),
		// P-STD_buffer_size_bound (13 bits)
		bound := videoBufferBound
		scale := byte(0x20)
		if e.id < 0xE0 {
			bound, scale = 32, 0 // audio: x128 bytes, 4 KiB
		}
		b = append(b, e.id, 0xC0|scale|byte(bound>>8)&0x1F, byte(bound))
	}
	return b
}

// appendPSM writes the program stream map (§2.5.4) without
// descriptors, closed by its CRC_32 (Annex A).
func (m *Muxer) appendPSM(b []byte) []byte {
	start := len(b)
	esMap := 4 * len(m.streams)
	n := 10 + esMap // program_stream_map_length: bytes after itself
	b = append(b, 0x00, 0x00, 0x01, programStreamID, byte(n>>8), byte(n),
		// current_next_indicator 1, single_extension_stream_flag 0,
		// reserved '1', program_stream_map_version 0 (a muxer's streams
		// never change; a new codec is a new muxer)
		0xA0,
		0xFF,       // reserved (7), marker
		0x00, 0x00, // program_stream_info_length
		byte(esMap>>8), byte(esMap), // elementary_stream_map_length
	)
	for _, e := range m.streams {
		b = append(b, e.typ, e.id, 0x00, 0x00) // no descriptors
	}
	c := crc32MPEG(b[start:])
	return append(b, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
}

// pesWriter writes an Annex-B elementary stream as PES packets of at most
// maxPESPayload bytes each (§2.4.3.6).
type pesWriter struct {
	dst      []byte
	left     int // elementary stream bytes not yet written
	room     int // payload bytes left in the current PES packet
	pts, dts int64
	first    bool
}

func (w *pesWriter) nalu(n []byte) {
	w.write([]byte{0x00, 0x00, 0x00, 0x01})
	w.write(n)
}

func (w *pesWriter) write(p []byte) {
	for len(p) > 0 {
		if w.room == 0 {
			w.header()
		}
		k := min(len(p), w.room)
		w.dst = append(w.dst, p[:k]...)
		p = p[k:]
		w.room -= k
		w.left -= k
	}
}

// header opens the next PES packet of the stream (§2.4.3.6): the first
// carries PTS (and DTS when it differs) with data_alignment_indicator.
func (w *pesWriter) header() {
	payload := min(w.left, maxPESPayload)
	flags1 := byte(0x80) // '10', not scrambled, priority 0, no alignment
	flags2 := byte(0)
	hlen := 0
	if w.first {
		flags1 |= 0x04 // data_alignment_indicator: an access unit starts here
		flags2, hlen = 0x80, 5
		if w.dts != w.pts {
			flags2, hlen = 0xC0, 10
		}
	}
	length := 3 + hlen + payload
	w.dst = append(w.dst, 0x00, 0x00, 0x01, VideoStreamID, byte(length>>8), byte(length),
		flags1, flags2, byte(hlen))
	if w.first {
		if hlen == 10 {
			w.dst = appendTimestamp(w.dst, 0x30, w.pts)
			w.dst = appendTimestamp(w.dst, 0x10, w.dts)
		} else {
			w.dst = appendTimestamp(w.dst, 0x20, w.pts)
		}
	}
	w.first = false
	w.room = payload
}

// appendTimestamp writes a 33-bit PTS or DTS in its 5-byte form
// (§2.4.3.7): prefix '0010' (PTS only), '0011' (PTS before DTS) or '0001'
// (DTS), then the bits in groups of 3, 15, 15, each closed by a marker.
func appendTimestamp(b []byte, prefix byte, ts int64) []byte {
	t := uint64(ts)
	return append(b,
		prefix|byte(t>>29)&0x0E|0x01,
		byte(t>>22),
		byte(t>>14)&0xFE|0x01,
		byte(t>>7),
		byte(t<<1)|0x01,
	)
}

// crcTable is CRC-32/MPEG-2 (polynomial 0x04C11DB7, MSB first, initial
// 0xFFFFFFFF, no final XOR), the CRC of Annex A.
var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc32MPEG(b []byte) uint32 {
	c := uint32(0xFFFFFFFF)
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^x]
	}
	return c
}
