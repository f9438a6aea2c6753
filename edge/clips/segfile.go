package clips

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// A segment file holds one chunk as fragmented MP4 that players accept as
// it is, even while it is being appended to:
//
//	ftyp
//	moov  (mvhd, one video trak: ID 1, timescale 90000, avc1/hvc1 entry; mvex/trex)
//	free  "VIGILSEG" 0x01 [segHeader, see encodeSegmentHeader]
//	moof mdat   (one fragment per appendFragment, payloads = the AVCC units)
//	moof mdat
//	...
//
// Each moof is exactly
//
//	moof  [size u32]["moof"]
//	  mfhd  [16]["mfhd"][ver/flags 0][sequence number = seq+1 u32]
//	  traf  [size]["traf"]
//	    tfhd  [16]["tfhd"][0x00020000 default-base-is-moof][track ID 1]
//	    tfdt  [20]["tfdt"][0x01000000 version 1][baseMediaDecodeTime u64]
//	    trun  [20+16n]["trun"][0x01000F01 version 1: data-offset, duration,
//	          size, flags, composition offset][n u32][data offset i32]
//	          n × [duration u32][size u32][flags u32][cts offset i32]
//	mdat  [8+payload u32]["mdat"]   (a 16-byte largesize header above 4 GiB)
//
// so a fragment's header is 88+16n+8 bytes, and its payload follows.
// Times are 90 kHz ticks from the chunk's first PTS (offset 0).

// segMagic opens the content of the free box that describes a segment.
const segMagic = "VIGILSEG"

const (
	segVersion = 1
	// maxHeaderBox bounds the ftyp and free boxes; maxMoov the moov (a
	// sample entry with parameter sets); maxMoof one fragment's moof.
	maxHeaderBox = 1 << 20
	maxMoov      = 4 << 20
	maxMoof      = 64 << 20
	// maxSegTicks bounds the times a scan accepts (about 6 years of
	// ticks), so that converting them to ns cannot overflow.
	maxSegTicks = 1 << 44

	trunFlags     = 0x000F01 // data-offset, duration, size, flags, cts present
	tfhdBaseMoof  = 0x020000 // default-base-is-moof
	flagsSync     = 0x02000000
	flagsNonSync  = 0x01010000 // depends on others, non-sync sample
	fragFixedSize = 88         // moof without its per-sample entries
	trunEntrySize = 16
	defaultDur    = 3000 // ticks: 1/30 s, for a lone unit with no next time
)

// errNotSegment marks a file that is not a Vigil segment (its header does
// not parse).
var errNotSegment = errors.New("clips: not a segment file")

// segHeader is what a segment file says about itself (beyond the MP4):
// enough to rebuild the index from the file alone.
type segHeader struct {
	Start    int64         // Unix ns of the chunk's first access unit (wall clock)
	StartPTS time.Duration // camera PTS of that unit
	Source   string        // clock source label, e.g. "rtcp", "arrival" (free text, <256 bytes)
	Codec    av.Codec
	Params   [][]byte // parameter-set NAL units exactly as given (order kept)
}

// scannedFragment is one complete fragment found in a file.
type scannedFragment struct {
	Offset  int64     // file offset of the moof
	Payload int64     // file offset of the first payload byte (inside mdat)
	End     int64     // file offset just after the mdat
	Seq     uint32    // mfhd sequence number - 1
	AUs     []auEntry // Offset rebuilt from the ticks as tickNS(pts)
}

// tickNS converts 90 kHz ticks to ns, rounding to the nearest ns (halves
// up). It is the inverse of segTicks (and of ticks, for t >= 0): its error
// of at most 0.5 ns is far below half a tick (5555 ns), so for every t,
// segTicks(tickNS(t)) == t, and every v = tickNS(t) comes back from
// tickNS(segTicks(v)). Nine ticks are exactly 100000 ns, which keeps the
// arithmetic from overflowing.
func tickNS(t int64) time.Duration {
	q := floorDiv(t, 9)
	r := t - 9*q // 0..8
	return time.Duration(q*100000 + (r*200000+9)/18)
}

// segTicks converts ns to 90 kHz ticks rounding to the nearest tick
// (halves up): it equals ticks for ns >= 0, but also rounds negative
// values correctly (ticks' truncating division moves them towards zero)
// and cannot overflow.
func segTicks(ns int64) int64 {
	q := floorDiv(ns, 100000)
	r := ns - 100000*q // 0..99999
	return 9*q + (r*18+100000)/200000
}

// floorDiv is a/b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// encodeSegmentHeader returns ftyp + moov (one video track, ID 1,
// timescale 90000, mvex/trex, an avc1/hvc1 sample entry from Params)
// followed by a top-level free box that players skip:
//
//	free [size u32]["free"]["VIGILSEG"][version 1]
//	     [Start i64][StartPTS i64][Codec u8][len u8][Source]
//	     [count u16] count × ([len u32][parameter set])
//
// all big-endian. Readers ignore bytes after the parameter sets.
func encodeSegmentHeader(h segHeader) ([]byte, error) {
	if len(h.Source) > math.MaxUint8 {
		return nil, fmt.Errorf("clips: segment header: source label of %d bytes", len(h.Source))
	}
	if len(h.Params) > math.MaxUint16 || h.Codec < 0 || h.Codec > math.MaxUint8 {
		return nil, fmt.Errorf("clips: segment header: %d parameter sets of %v", len(h.Params), h.Codec)
	}
	codec, err := mp4Codec(h.Codec, h.Params)
	if err != nil {
		return nil, err
	}
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: mp4TimeScale, Codec: codec}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("clips: segment header: %w", err)
	}
	b := buf.Bytes()
	box := len(b)
	b = append(b, 0, 0, 0, 0, 'f', 'r', 'e', 'e')
	b = append(b, segMagic...)
	b = append(b, segVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Start))
	b = binary.BigEndian.AppendUint64(b, uint64(h.StartPTS))
	b = append(b, byte(h.Codec), byte(len(h.Source)))
	b = append(b, h.Source...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Params)))
	for _, p := range h.Params {
		if uint64(len(p)) > maxHeaderBox {
			return nil, fmt.Errorf("clips: segment header: parameter set of %d bytes", len(p))
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	if len(b)-box > maxHeaderBox {
		return nil, fmt.Errorf("clips: segment header: free box of %d bytes", len(b)-box)
	}
	binary.BigEndian.PutUint32(b[box:], uint32(len(b)-box))
	return b, nil
}

// decodeSegmentHeader reads the content of the free box after its 8-byte
// box header.
func decodeSegmentHeader(c []byte) (segHeader, error) {
	var h segHeader
	if len(c) < len(segMagic)+1 || string(c[:len(segMagic)]) != segMagic {
		return h, fmt.Errorf("%w: no %s magic", errNotSegment, segMagic)
	}
	if c[len(segMagic)] != segVersion {
		return h, fmt.Errorf("%w: version %d", errNotSegment, c[len(segMagic)])
	}
	c = c[len(segMagic)+1:]
	short := fmt.Errorf("%w: truncated header", errNotSegment)
	if len(c) < 18 {
		return h, short
	}
	h.Start = int64(binary.BigEndian.Uint64(c))
	h.StartPTS = time.Duration(binary.BigEndian.Uint64(c[8:]))
	h.Codec = av.Codec(c[16])
	n := int(c[17])
	c = c[18:]
	if len(c) < n+2 {
		return h, short
	}
	h.Source = string(c[:n])
	count := int(binary.BigEndian.Uint16(c[n:]))
	c = c[n+2:]
	if count > len(c)/4 {
		return h, short
	}
	h.Params = make([][]byte, 0, count)
	for range count {
		if len(c) < 4 || uint64(binary.BigEndian.Uint32(c)) > uint64(len(c)-4) {
			return h, short
		}
		l := int(binary.BigEndian.Uint32(c))
		h.Params = append(h.Params, slices.Clone(c[4:4+l]))
		c = c[4+l:]
	}
	return h, nil
}

// appendFragment appends to dst one fragment for the units aus (table
// order = decode/storage order) whose payload bytes (sum of aus[i].Size)
// the caller writes right after it: moof (mfhd with sequence number
// seq+1; traf with tfhd (default-base-is-moof), tfdt version 1 and trun
// version 1, see the layout above) and the mdat header sized for the
// payload. It returns dst and the header length.
//
// Timing: pts_i = ticks(aus[i].Offset). If pts is strictly increasing,
// dts = pts and composition offsets are 0; otherwise (B-frames) dts is
// pts sorted (equal values bumped by a tick to stay strictly increasing)
// and cts_i = pts_i - dts_i. Durations are dts deltas; the last one
// reaches ticks(next), or, when next is 0, repeats the previous one (3000
// ticks for a lone unit); never 0. Should the first dts be negative, all
// dts move up so that the base decode time is 0 (pts stay exact).
func appendFragment(dst []byte, seq uint32, aus []auEntry, next time.Duration) (out []byte, headerLen int) {
	pts, dts, dur := fragmentTiming(aus, next)
	var payload uint64
	for _, a := range aus {
		payload += uint64(a.Size)
	}
	mdatHeader := 8
	if payload+8 > math.MaxUint32 {
		mdatHeader = 16
	}
	n := len(aus)
	moofSize := fragFixedSize + trunEntrySize*n
	start := len(dst)
	dst = slices.Grow(dst, moofSize+mdatHeader)
	be := binary.BigEndian
	dst = appendBoxHeader(dst, moofSize, "moof")
	dst = appendBoxHeader(dst, 16, "mfhd")
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, seq+1)
	dst = appendBoxHeader(dst, moofSize-24, "traf")
	dst = appendBoxHeader(dst, 16, "tfhd")
	dst = be.AppendUint32(dst, tfhdBaseMoof)
	dst = be.AppendUint32(dst, 1)
	dst = appendBoxHeader(dst, 20, "tfdt")
	dst = be.AppendUint32(dst, 1<<24)
	var base int64
	if n > 0 {
		base = dts[0]
	}
	dst = be.AppendUint64(dst, uint64(base))
	dst = appendBoxHeader(dst, 20+trunEntrySize*n, "trun")
	dst = be.AppendUint32(dst, 1<<24|trunFlags)
	dst = be.AppendUint32(dst, uint32(n))
	dst = be.AppendUint32(dst, uint32(moofSize+mdatHeader))
	for i, a := range aus {
		flags := uint32(flagsNonSync)
		if a.Key {
			flags = flagsSync
		}
		dst = be.AppendUint32(dst, dur[i])
		dst = be.AppendUint32(dst, a.Size)
		dst = be.AppendUint32(dst, flags)
		dst = be.AppendUint32(dst, uint32(int32(pts[i]-dts[i])))
	}
	if mdatHeader == 16 {
		dst = appendBoxHeader(dst, 1, "mdat")
		dst = be.AppendUint64(dst, payload+16)
	} else {
		dst = appendBoxHeader(dst, int(payload+8), "mdat")
	}
	return dst, len(dst) - start
}

// appendBoxHeader appends a box's 32-bit size and type.
func appendBoxHeader(dst []byte, size int, typ string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	return append(dst, typ...)
}

// fragmentTiming returns the units' pts and dts in ticks and their
// durations, as appendFragment describes.
func fragmentTiming(aus []auEntry, next time.Duration) (pts, dts []int64, dur []uint32) {
	n := len(aus)
	pts = make([]int64, n)
	for i, a := range aus {
		pts[i] = segTicks(int64(a.Offset))
	}
	dts = pts
	if !increasing(pts) {
		dts = slices.Clone(pts)
		slices.Sort(dts)
		for i := 1; i < n; i++ {
			dts[i] = max(dts[i], dts[i-1]+1)
		}
	}
	var nextDTS int64
	if next != 0 && n > 0 {
		nextDTS = segTicks(int64(next))
	}
	if n > 0 && dts[0] < 0 {
		shift := -dts[0]
		dts = slices.Clone(dts)
		for i := range dts {
			dts[i] += shift
		}
		nextDTS += shift
	}
	dur = make([]uint32, n)
	for i := 0; i+1 < n; i++ {
		dur[i] = clampDur(dts[i+1] - dts[i])
	}
	switch {
	case n == 0:
	case next != 0:
		dur[n-1] = clampDur(nextDTS - dts[n-1])
	case n > 1:
		dur[n-1] = dur[n-2]
	default:
		dur[n-1] = defaultDur
	}
	return pts, dts, dur
}

// increasing reports whether v is strictly increasing.
func increasing(v []int64) bool {
	for i := 1; i < len(v); i++ {
		if v[i] <= v[i-1] {
			return false
		}
	}
	return true
}

// clampDur keeps a duration in 1 .. MaxUint32 ticks.
func clampDur(d int64) uint32 {
	return uint32(min(max(d, 1), math.MaxUint32))
}

// scanSegment reads a segment file: its header, then the complete
// fragments from offset from (0 = right after the header; else a fragment
// boundary the caller knows). It stops at the first incomplete or
// malformed box and returns validEnd, the end of the last complete
// fragment (or of the header): truncating the file there leaves a
// playable file. damage says what follows validEnd when that is not a
// complete fragment, and is nil when the file ended cleanly. err is for
// I/O errors, a from that is not inside the file, or a header that does
// not parse (errNotSegment). It reads box headers and moofs only, never
// payloads, and bounds every allocation by size.
func scanSegment(r io.ReaderAt, size int64, from int64) (h segHeader, headerLen int64, frags []scannedFragment, validEnd int64, damage error, err error) {
	h, headerLen, err = readSegmentHeader(r, size)
	if err != nil {
		return h, 0, nil, 0, nil, err
	}
	pos := headerLen
	if from != 0 {
		if from < headerLen || from > size {
			return h, headerLen, nil, 0, nil, fmt.Errorf("clips: segment: scan from %d outside %d..%d", from, headerLen, size)
		}
		pos = from
	}
	for pos < size {
		f, ferr := readFragment(r, pos, size)
		if ferr != nil {
			var ioe ioError
			if errors.As(ferr, &ioe) {
				return h, headerLen, frags, pos, nil, ioe.err
			}
			return h, headerLen, frags, pos, ferr, nil
		}
		frags = append(frags, f)
		pos = f.End
	}
	return h, headerLen, frags, pos, nil, nil
}

// ioError wraps a read failure, to tell it from damage.
type ioError struct{ err error }

// Error returns the read failure's message.
func (e ioError) Error() string { return e.err.Error() }

// readAt reads len(b) bytes at off, all of which lie inside the file.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return ioError{fmt.Errorf("clips: segment: read %d bytes at %d: %w", len(b), off, err)}
}

// boxAt reads the 8-byte header of the box at off and checks its type and
// that it fits in limit bytes and in the file. A box that runs past the
// end of the file is torn; one of the wrong type or size is malformed.
func boxAt(r io.ReaderAt, off, size int64, typ string, limit int64) (int64, error) {
	if size-off < 8 {
		return 0, fmt.Errorf("clips: segment: torn %s header at offset %d (file ends at %d)", typ, off, size)
	}
	var b [8]byte
	if err := readAt(r, b[:], off); err != nil {
		return 0, err
	}
	n := int64(binary.BigEndian.Uint32(b[:]))
	if string(b[4:]) != typ {
		return 0, fmt.Errorf("clips: segment: %q box at offset %d, want %q", b[4:], off, typ)
	}
	if n < 8 || n > limit {
		return 0, fmt.Errorf("clips: segment: %s box of %d bytes at offset %d", typ, n, off)
	}
	if n > size-off {
		return 0, fmt.Errorf("clips: segment: torn %s box at offset %d: %d bytes, file ends at %d", typ, off, n, size)
	}
	return n, nil
}

// readSegmentHeader checks the ftyp, skips the moov and decodes the free
// box after it; it returns the header's length.
func readSegmentHeader(r io.ReaderAt, size int64) (segHeader, int64, error) {
	var pos int64
	for _, b := range []struct {
		typ   string
		limit int64
	}{{"ftyp", maxHeaderBox}, {"moov", maxMoov}} {
		n, err := boxAt(r, pos, size, b.typ, b.limit)
		if err != nil {
			return segHeader{}, 0, notSegment(err)
		}
		pos += n
	}
	n, err := boxAt(r, pos, size, "free", maxHeaderBox)
	if err != nil {
		return segHeader{}, 0, notSegment(err)
	}
	c := make([]byte, n-8)
	if err := readAt(r, c, pos+8); err != nil {
		return segHeader{}, 0, notSegment(err)
	}
	h, err := decodeSegmentHeader(c)
	if err != nil {
		return h, 0, err
	}
	return h, pos + n, nil
}

// notSegment marks a header that does not parse as errNotSegment, and
// passes read failures on as they are.
func notSegment(err error) error {
	var ioe ioError
	if errors.As(err, &ioe) {
		return ioe.err
	}
	return fmt.Errorf("%w: %w", errNotSegment, err)
}

// readFragment reads the moof at off and the mdat header after it.
func readFragment(r io.ReaderAt, off, size int64) (scannedFragment, error) {
	f := scannedFragment{Offset: off}
	moofSize, err := boxAt(r, off, size, "moof", maxMoof)
	if err != nil {
		return f, err
	}
	moof := make([]byte, moofSize)
	if err := readAt(r, moof, off); err != nil {
		return f, err
	}
	dataOffset, payload, err := parseMoof(moof[8:], &f)
	if err != nil {
		return f, fmt.Errorf("clips: segment: malformed moof at offset %d: %w", off, err)
	}
	mdat := off + moofSize
	mdatSize, hdr, err := mdatAt(r, mdat, size)
	if err != nil {
		return f, err
	}
	if dataOffset != moofSize+hdr || mdatSize-hdr != payload {
		return f, fmt.Errorf("clips: segment: fragment at offset %d: data offset %d and %d payload bytes do not match its mdat of %d bytes",
			off, dataOffset, payload, mdatSize)
	}
	if mdatSize > size-mdat {
		return f, fmt.Errorf("clips: segment: torn mdat at offset %d: %d bytes, file ends at %d", mdat, mdatSize, size)
	}
	f.Payload = mdat + hdr
	f.End = mdat + mdatSize
	return f, nil
}

// mdatAt reads the header of the mdat at off: its size (which may run past
// the end of the file: the caller checks) and header length.
func mdatAt(r io.ReaderAt, off, size int64) (int64, int64, error) {
	var b [16]byte
	if size-off < 8 {
		return 0, 0, fmt.Errorf("clips: segment: torn mdat header at offset %d (file ends at %d)", off, size)
	}
	if err := readAt(r, b[:8], off); err != nil {
		return 0, 0, err
	}
	if string(b[4:8]) != "mdat" {
		return 0, 0, fmt.Errorf("clips: segment: %q box at offset %d, want \"mdat\"", b[4:8], off)
	}
	n, hdr := int64(binary.BigEndian.Uint32(b[:])), int64(8)
	if n == 1 {
		if size-off < 16 {
			return 0, 0, fmt.Errorf("clips: segment: torn mdat header at offset %d (file ends at %d)", off, size)
		}
		if err := readAt(r, b[8:], off+8); err != nil {
			return 0, 0, err
		}
		n, hdr = int64(binary.BigEndian.Uint64(b[8:])), 16
	}
	if n < hdr {
		return 0, 0, fmt.Errorf("clips: segment: mdat box of %d bytes at offset %d", n, off)
	}
	return n, hdr, nil
}

// nextBox splits the first child box off b: its type, its content and the
// rest of b.
func nextBox(b []byte) (typ string, content, rest []byte, err error) {
	if len(b) < 8 {
		return "", nil, nil, fmt.Errorf("%d stray bytes", len(b))
	}
	n := uint64(binary.BigEndian.Uint32(b))
	if n < 8 || n > uint64(len(b)) {
		return "", nil, nil, fmt.Errorf("%q box of %d bytes in %d", b[4:8], n, len(b))
	}
	return string(b[4:8]), b[8:n], b[n:], nil
}

// parseMoof reads a moof's content (after its box header) into f's Seq
// and AUs, and returns the trun's data offset and the payload size.
func parseMoof(b []byte, f *scannedFragment) (dataOffset, payload int64, err error) {
	var traf []byte
	seen := false
	for len(b) > 0 {
		typ, c, rest, err := nextBox(b)
		if err != nil {
			return 0, 0, err
		}
		switch typ {
		case "mfhd":
			if len(c) != 8 || binary.BigEndian.Uint32(c[4:]) == 0 {
				return 0, 0, errors.New("bad mfhd")
			}
			f.Seq, seen = binary.BigEndian.Uint32(c[4:])-1, true
		case "traf":
			if traf != nil {
				return 0, 0, errors.New("more than one traf")
			}
			traf = c
		}
		b = rest
	}
	if !seen || traf == nil {
		return 0, 0, errors.New("no mfhd or traf")
	}
	return parseTraf(traf, f)
}

// parseTraf reads a traf's tfhd, tfdt and trun.
func parseTraf(b []byte, f *scannedFragment) (dataOffset, payload int64, err error) {
	var base int64 = -1
	var trun []byte
	for len(b) > 0 {
		typ, c, rest, err := nextBox(b)
		if err != nil {
			return 0, 0, err
		}
		be := binary.BigEndian
		switch typ {
		case "tfhd":
			if len(c) < 8 || be.Uint32(c)&0xFFFFFF != tfhdBaseMoof || be.Uint32(c[4:]) != 1 {
				return 0, 0, errors.New("tfhd is not track 1 with default-base-is-moof only")
			}
		case "tfdt":
			if len(c) != 12 || c[0] != 1 || be.Uint64(c[4:]) > maxSegTicks {
				return 0, 0, errors.New("bad tfdt")
			}
			base = int64(be.Uint64(c[4:]))
		case "trun":
			trun = c
		}
		b = rest
	}
	if base < 0 || trun == nil {
		return 0, 0, errors.New("no tfdt or trun")
	}
	return parseTrun(trun, base, f)
}

// parseTrun reads the samples of a trun whose first decode time is base:
// pts = dts + composition offset (signed in version 1), as ns from the
// chunk's start through tickNS.
func parseTrun(c []byte, base int64, f *scannedFragment) (dataOffset, payload int64, err error) {
	be := binary.BigEndian
	if len(c) < 12 || be.Uint32(c)&0xFFFFFF != trunFlags || c[0] > 1 {
		return 0, 0, errors.New("trun without data offset, duration, size, flags and composition offset")
	}
	signed := c[0] == 1
	n := uint64(be.Uint32(c[4:]))
	dataOffset = int64(int32(be.Uint32(c[8:])))
	c = c[12:]
	if uint64(len(c)) != n*trunEntrySize {
		return 0, 0, fmt.Errorf("trun of %d samples in %d bytes", n, len(c))
	}
	f.AUs = make([]auEntry, n)
	dts := base
	for i := range f.AUs {
		e := c[i*trunEntrySize:]
		cts := int64(be.Uint32(e[12:]))
		if signed {
			cts = int64(int32(be.Uint32(e[12:])))
		}
		flags := be.Uint32(e[8:])
		f.AUs[i] = auEntry{
			Offset: tickNS(dts + cts),
			Key:    flags&0x00010000 == 0,
			Size:   be.Uint32(e[4:]),
		}
		payload += int64(f.AUs[i].Size)
		dts += int64(be.Uint32(e))
		if dts > maxSegTicks {
			return 0, 0, fmt.Errorf("decode time %d ticks", dts)
		}
	}
	return dataOffset, payload, nil
}
