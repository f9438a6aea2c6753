package clips

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A part is a run of access units of one chunk, committed as one value:
//
//	[payloads: per access unit its NAL units as 4-byte length + NAL unit]
//	[table][table length: uint32][partMagic]
//
// table: uvarint count, then per access unit a varint offset from the
// chunk's start (ns), a flags byte (bit 0: keyframe) and a uvarint
// payload size. Payloads are already MP4 (AVCC/HVCC) samples, so export
// copies them as they are. The table sits at the end so that building a
// part never moves its payloads, and planning an export touches only the
// tail of each part.
type part struct {
	chunk *chunk
	seq   uint32
	buf   []byte
	aus   []auEntry
	// payload counts the access units' bytes (buf without the table).
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
	partMagic     = 0xA7
	partTrailer   = 5 // table length + magic
	flagKey       = 1
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
	// Room for the unit and for the whole table, so that finish never
	// moves the payloads.
	p.buf = slices.Grow(p.buf, size+maxTableEntry*(len(p.aus)+1)+2*binary.MaxVarintLen64+partTrailer)
	for _, nalu := range nalus {
		if len(nalu) > 0 {
			p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(nalu)))
			p.buf = append(p.buf, nalu...)
		}
	}
	p.aus = append(p.aus, auEntry{Offset: offset, Key: key, Size: uint32(size)})
	p.payload += size
}

// payloadBytes is the size of the access units without the table.
func (p *part) payloadBytes() int { return p.payload }

// finish appends the table and returns the value to store.
func (p *part) finish() []byte {
	n := len(p.buf)
	p.buf = binary.AppendUvarint(p.buf, uint64(len(p.aus)))
	for _, a := range p.aus {
		p.buf = binary.AppendVarint(p.buf, int64(a.Offset))
		var f byte
		if a.Key {
			f = flagKey
		}
		p.buf = append(p.buf, f)
		p.buf = binary.AppendUvarint(p.buf, uint64(a.Size))
	}
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(p.buf)-n))
	p.buf = append(p.buf, partMagic)
	return p.buf
}

var errBadPart = errors.New("clips: corrupt part")

// parseTable reads a stored part's table; payloads start at offset 0 and
// follow each other in table order.
func parseTable(val []byte, dst []auEntry) ([]auEntry, error) {
	if len(val) < partTrailer || val[len(val)-1] != partMagic {
		return dst, errBadPart
	}
	tl := int(binary.BigEndian.Uint32(val[len(val)-partTrailer:]))
	end := len(val) - partTrailer
	if tl > end {
		return dst, errBadPart
	}
	r := reader{b: val[end-tl : end]}
	n := r.count(3)
	payload := 0
	for i := 0; i < n; i++ {
		a := auEntry{Offset: time.Duration(r.varint())}
		if r.err == nil && len(r.b) > 0 {
			a.Key = r.b[0]&flagKey != 0
			r.b = r.b[1:]
		}
		a.Size = uint32(r.uvarint())
		payload += int(a.Size)
		dst = append(dst, a)
	}
	if r.err != nil || payload != end-tl {
		return dst, fmt.Errorf("%w: table of %d access units for %d payload bytes", errBadPart, n, end-tl)
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
