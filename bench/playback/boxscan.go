package main

import (
	"encoding/binary"
	"fmt"
)

// boxScanner follows the top-level boxes of an fMP4 body as its bytes
// arrive (it is an io.Writer fed in arrival order) and says when the
// first media fragment, a moof and the mdat right after it, has arrived
// whole: the moment a player can show the first frame.
type boxScanner struct {
	off     int64  // bytes seen so far
	start   int64  // offset of the box whose header is being read
	next    int64  // offset of the next box header; -1: the last box runs to the end
	hdr     []byte // the next box's header bytes seen so far
	last    string // type of the previous box
	fragEnd int64  // end of the first moof's mdat; 0 until it is known
	moofs   int
	err     error
}

// Write takes the next bytes of the body.
func (s *boxScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.err == nil {
		if len(s.hdr) == 0 && (s.next < 0 || s.off < s.next) { // inside a box: skip its payload
			skip := int64(len(p))
			if s.next >= 0 {
				skip = min(skip, s.next-s.off)
			}
			s.off += skip
			p = p[skip:]
			continue
		}
		p = s.header(p)
	}
	return n, nil
}

// header collects the header of the box starting at s.off and, once it
// is whole, moves s.next past the box.
func (s *boxScanner) header(p []byte) []byte {
	if len(s.hdr) == 0 {
		s.start = s.off
	}
	need := 8
	if len(s.hdr) >= 4 && binary.BigEndian.Uint32(s.hdr) == 1 {
		need = 16
	}
	take := min(need-len(s.hdr), len(p))
	s.hdr = append(s.hdr, p[:take]...)
	s.off += int64(take)
	p = p[take:]
	if len(s.hdr) == 8 && binary.BigEndian.Uint32(s.hdr) == 1 {
		return p // a 64-bit size follows
	}
	if len(s.hdr) < need {
		return p
	}
	start := s.start
	size := int64(binary.BigEndian.Uint32(s.hdr))
	if need == 16 {
		size = int64(binary.BigEndian.Uint64(s.hdr[8:]))
	}
	typ := string(s.hdr[4:8])
	s.hdr = s.hdr[:0]
	switch {
	case size == 0: // to the end of the body
		s.next = -1
	case size < int64(need) || start+size < start:
		s.err = fmt.Errorf("box %q at byte %d: size %d", typ, start, size)
		return p
	default:
		s.next = start + size
	}
	if typ == "moof" {
		s.moofs++
	}
	if typ == "mdat" && s.last == "moof" && s.fragEnd == 0 && s.next > 0 {
		s.fragEnd = s.next
	}
	s.last = typ
	return p
}

// firstFragment reports whether the first moof+mdat has arrived whole.
func (s *boxScanner) firstFragment() bool { return s.fragEnd > 0 && s.off >= s.fragEnd }

// complete reports whether the body ended on a box boundary.
func (s *boxScanner) complete() bool {
	return s.err == nil && len(s.hdr) == 0 && (s.next < 0 || s.off == s.next)
}
