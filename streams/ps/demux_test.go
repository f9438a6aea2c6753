package ps

import (
	"bytes"
	"errors"
	"fmt"
)

// A strict program-stream reader for the tests: it checks every length,
// marker and CRC the muxer writes, and gives back each pack's PES payloads.

type pes struct {
	hasPTS, hasDTS bool
	pts, dts       int64
	aligned        bool
	payload        []byte
}

type pack struct {
	scr     int64
	muxRate uint32
	sys     bool
	psm     map[byte]byte // stream_id -> stream_type, when the pack has a PSM
	pes     []pes
}

// es is the elementary stream bytes of the pack.
func (p pack) es() []byte {
	var b []byte
	for _, x := range p.pes {
		b = append(b, x.payload...)
	}
	return b
}

func readTS(b []byte, prefix byte) (int64, error) {
	if b[0]>>4 != prefix || b[0]&1 != 1 || b[2]&1 != 1 || b[4]&1 != 1 {
		return 0, fmt.Errorf("bad timestamp % x (prefix %x)", b[:5], prefix)
	}
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1), nil
}

func demux(b []byte) ([]pack, error) {
	var packs []pack
	for len(b) > 0 {
		if len(b) < 4 || !bytes.Equal(b[:3], []byte{0, 0, 1}) {
			return packs, fmt.Errorf("no start code at % x", b[:min(len(b), 8)])
		}
		id := b[3]
		if id == packStartCode {
			if len(b) < 14 {
				return packs, errors.New("short pack header")
			}
			h := b[:14]
			if h[4]&0xC4 != 0x44 || h[6]&0x04 == 0 || h[8]&0x04 == 0 || h[9]&0x01 == 0 || h[12]&0x03 != 0x03 {
				return packs, fmt.Errorf("pack header markers % x", h)
			}
			scr := int64(h[4]>>3&0x07)<<30 | int64(h[4]&0x03)<<28 | int64(h[5])<<20 |
				int64(h[6]>>3)<<15 | int64(h[6]&0x03)<<13 | int64(h[7])<<5 | int64(h[8]>>3)
			rate := uint32(h[10])<<14 | uint32(h[11])<<6 | uint32(h[12]>>2)
			stuff := int(h[13] & 0x07)
			if len(b) < 14+stuff {
				return packs, errors.New("short stuffing")
			}
			packs = append(packs, pack{scr: scr, muxRate: rate})
			b = b[14+stuff:]
			continue
		}
		if len(packs) == 0 {
			return nil, errors.New("packet before the first pack header")
		}
		p := &packs[len(packs)-1]
		if len(b) < 6 {
			return packs, errors.New("short packet")
		}
		n := int(b[4])<<8 | int(b[5])
		if len(b) < 6+n {
			return packs, fmt.Errorf("packet 0x%02x length %d past the end (%d)", id, n, len(b)-6)
		}
		body := b[6 : 6+n]
		b = b[6+n:]
		switch {
		case id == systemHeaderID:
			if p.sys || len(p.pes) > 0 || n < 6 || (n-6)%3 != 0 {
				return packs, fmt.Errorf("system header misplaced or bad (len %d)", n)
			}
			p.sys = true
		case id == programStreamID:
			if n < 10 || crc32MPEG(append([]byte{0, 0, 1, id, byte(n >> 8), byte(n)}, body...)) != 0 {
				return packs, errors.New("PSM CRC or length")
			}
			info := int(body[2])<<8 | int(body[3])
			m := body[4+info:]
			esLen := int(m[0])<<8 | int(m[1])
			if 10+info+esLen != n {
				return packs, errors.New("PSM lengths disagree")
			}
			m = m[2 : 2+esLen]
			p.psm = map[byte]byte{}
			for len(m) >= 4 {
				p.psm[m[1]] = m[0]
				m = m[4+(int(m[2])<<8|int(m[3])):]
			}
		case id == VideoStreamID:
			if n < 3 || body[0]&0xC0 != 0x80 {
				return packs, fmt.Errorf("PES flags % x", body[:min(3, n)])
			}
			hl := int(body[2])
			if 3+hl > n {
				return packs, errors.New("PES header past its packet")
			}
			x := pes{aligned: body[0]&0x04 != 0, payload: body[3+hl:]}
			var err error
			switch body[1] >> 6 {
			case 2:
				x.hasPTS = true
				x.pts, err = readTS(body[3:], 0x2)
			case 3:
				x.hasPTS, x.hasDTS = true, true
				if x.pts, err = readTS(body[3:], 0x3); err == nil {
					x.dts, err = readTS(body[8:], 0x1)
				}
			case 1:
				err = errors.New("PTS_DTS_flags 01 is forbidden")
			}
			if err != nil {
				return packs, err
			}
			p.pes = append(p.pes, x)
		default:
			return packs, fmt.Errorf("unexpected stream_id 0x%02x", id)
		}
	}
	return packs, nil
}
