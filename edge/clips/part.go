package clips

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A part is a run of access units of one chunk, written as one fragment
// of the chunk's segment file (moof + mdat: see segfile.go) and indexed
// in Badger by one small value, its part record:
//
//	[partRecord][uvarint: file offset of the first payload byte][table]
//
// table: uvarint count, then per access unit a varint offset from the
// chunk's start (ns), a flags byte (bit 0: keyframe) and a uvarint
// payload size. Payloads are MP4 (AVCC/HVCC) samples that follow each
// other in table order in the fragment's mdat, so export and thumbnails
// read them with one pread per part, and planning touches only the index.
type part struct {
	chunk *chunk
	seq   uint32
	buf   []byte // the access units' payloads
	aus   []auEntry
	// payload counts the access units' bytes (len(buf)).
	payload int
}

// auEntry is one access unit in a part's table.
type auEntry struct {
	Offset time.Duration // from the chunk's start (its first PTS)
	Key    bool
	Size   uint32
}

const (
	maxTableEntry = 2*binary.MaxVarintLen64 + 1
	// partRecord tags a v2 part record. A v1 part (payloads in Badger,
	// table at the end, partMagic last) is read only by the upgrade.
	partRecord = 0xB2
	partMagic  = 0xA7
	// partTrailer is a v1 part's table length + magic.
	partTrailer = 5
	flagKey     = 1
)

// avccSize is the stored size of an access unit.
func avccSize(nalus [][]byte) int {
	n := 0
	for _, nalu := range nalus {
		if len(nalu) > 0 {
			n += 4 + len(nalu)
		}
	}
	return n
}

// appendAU adds an access unit's NAL units with 4-byte length prefixes.
func (p *part) appendAU(nalus [][]byte, offset time.Duration, key bool, size int) {
	p.buf = slices.Grow(p.buf, size)
	for _, nalu := range nalus {
		if len(nalu) > 0 {
			p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(nalu)))
			p.buf = append(p.buf, nalu...)
		}
	}
	p.aus = append(p.aus, auEntry{Offset: offset, Key: key, Size: uint32(size)})
	p.payload += size
}

// payloadBytes is the size of the access units.
func (p *part) payloadBytes() int { return p.payload }

// record returns the part's index value: its payloads start at file
// offset at of the chunk's segment.
func (p *part) record(at int64) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+maxTableEntry*(len(p.aus)+1))
	b = append(b, partRecord)
	b = binary.AppendUvarint(b, uint64(at))
	return appendTable(b, p.aus)
}

// appendTable encodes a part table.
func appendTable(b []byte, aus []auEntry) []byte {
	b = binary.AppendUvarint(b, uint64(len(aus)))
	for _, a := range aus {
		b = binary.AppendVarint(b, int64(a.Offset))
		var f byte
		if a.Key {
			f = flagKey
		}
		b = append(b, f)
		b = binary.AppendUvarint(b, uint64(a.Size))
	}
	return b
}

var errBadPart = errors.New("clips: corrupt part")

// parseRecord reads a part record: the file offset of its payloads and
// its table.
func parseRecord(val []byte, dst []auEntry) (at int64, aus []auEntry, err error) {
	if len(val) < 2 || val[0] != partRecord {
		return 0, dst, errBadPart
	}
	r := reader{b: val[1:]}
	at = int64(r.uvarint())
	aus = readTable(&r, dst)
	if r.err != nil || at < 0 {
		return 0, aus, fmt.Errorf("%w: %v", errBadPart, r.err)
	}
	return at, aus, nil
}

// readTable decodes a part table.
func readTable(r *reader, dst []auEntry) []auEntry {
	n := r.count(3)
	for i := 0; i < n; i++ {
		a := auEntry{Offset: time.Duration(r.varint())}
		if r.err == nil && len(r.b) > 0 {
			a.Key = r.b[0]&flagKey != 0
			r.b = r.b[1:]
		}
		a.Size = uint32(r.uvarint())
		dst = append(dst, a)
	}
	return dst
}

// parseV1Part reads a part of a v1 store, payloads and table in one
// Badger value: [payloads][table][table length: uint32][partMagic].
func parseV1Part(val []byte, dst []auEntry) ([]auEntry, error) {
	if len(val) < partTrailer || val[len(val)-1] != partMagic {
		return dst, errBadPart
	}
	tl := int(binary.BigEndian.Uint32(val[len(val)-partTrailer:]))
	end := len(val) - partTrailer
	if tl > end {
		return dst, errBadPart
	}
	r := reader{b: val[end-tl : end]}
	first := len(dst)
	dst = readTable(&r, dst)
	payload := 0
	for _, a := range dst[first:] {
		payload += int(a.Size)
	}
	if r.err != nil || payload != end-tl {
		return dst, fmt.Errorf("%w: table of %d access units for %d payload bytes", errBadPart, len(dst)-first, end-tl)
	}
	return dst, nil
}

// splitAVCC returns the NAL units of one stored access unit, aliasing it.
func splitAVCC(b []byte, dst [][]byte) ([][]byte, error) {
	for len(b) > 0 {
		if len(b) < 4 {
			return dst, errBadPart
		}
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-4 {
			return dst, errBadPart
		}
		dst = append(dst, b[4:4+n])
		b = b[4+n:]
	}
	return dst, nil
}
