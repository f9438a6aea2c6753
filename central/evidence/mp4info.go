package evidence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// MP4Info is what a bundle states about an MP4, read from its own index
// (moov): the first video track's codec, picture size, sample count and
// duration.
type MP4Info struct {
	Codec    string // "h264" or "h265", as ffprobe names them
	Width    int
	Height   int
	Frames   int
	Duration time.Duration // of the video track (media duration)
}

// FrameDuration is the mean frame interval.
func (i MP4Info) FrameDuration() time.Duration {
	if i.Frames == 0 {
		return 0
	}
	return i.Duration / time.Duration(i.Frames)
}

var errNotMP4 = errors.New("not an MP4 with a video track")

// ProbeMP4 reads the index of the MP4 in r (size bytes); it reads only
// box headers and the moov box, never the media data.
func ProbeMP4(r io.ReaderAt, size int64) (MP4Info, error) {
	var info MP4Info
	moov, err := findBox(r, 0, size, "moov")
	if err != nil {
		return info, err
	}
	if moov.size > 64<<20 {
		return info, fmt.Errorf("mp4: moov of %d bytes", moov.size)
	}
	buf := make([]byte, moov.size)
	if _, err := r.ReadAt(buf, moov.off); err != nil {
		return info, fmt.Errorf("mp4: %w", err)
	}
	for _, trak := range children(buf, "trak") {
		mdia := child(trak, "mdia")
		if mdia == nil {
			continue
		}
		hdlr := child(mdia, "hdlr")
		if len(hdlr) < 12 || string(hdlr[8:12]) != "vide" {
			continue
		}
		mdhd := child(mdia, "mdhd")
		stbl := child(child(mdia, "minf"), "stbl")
		if mdhd == nil || stbl == nil {
			return info, errNotMP4
		}
		var scale, dur uint64
		switch {
		case len(mdhd) >= 24 && mdhd[0] == 0:
			scale, dur = uint64(binary.BigEndian.Uint32(mdhd[12:])), uint64(binary.BigEndian.Uint32(mdhd[16:]))
		case len(mdhd) >= 32 && mdhd[0] == 1:
			scale, dur = uint64(binary.BigEndian.Uint32(mdhd[20:])), binary.BigEndian.Uint64(mdhd[24:])
		default:
			return info, errors.New("mp4: bad mdhd")
		}
		if scale == 0 {
			return info, errors.New("mp4: mdhd timescale 0")
		}
		info.Duration = time.Duration(dur / scale * uint64(time.Second))
		info.Duration += time.Duration((dur % scale) * uint64(time.Second) / scale)
		stsd := child(stbl, "stsd")
		if len(stsd) < 8+36 {
			return info, errors.New("mp4: bad stsd")
		}
		entry := stsd[8:] // version/flags, entry count
		switch typ := string(entry[4:8]); typ {
		case "avc1", "avc3":
			info.Codec = "h264"
		case "hvc1", "hev1":
			info.Codec = "h265"
		default:
			info.Codec = typ
		}
		// Visual sample entry: 8 header, 6 reserved, 2 index, 16 pre-defined,
		// then width and height.
		info.Width = int(binary.BigEndian.Uint16(entry[32:]))
		info.Height = int(binary.BigEndian.Uint16(entry[34:]))
		if stsz := child(stbl, "stsz"); len(stsz) >= 12 {
			info.Frames = int(binary.BigEndian.Uint32(stsz[8:]))
		} else if stz2 := child(stbl, "stz2"); len(stz2) >= 12 {
			info.Frames = int(binary.BigEndian.Uint32(stz2[8:]))
		}
		return info, nil
	}
	return info, errNotMP4
}

type boxPos struct{ off, size int64 } // of the payload

// findBox walks the top-level boxes in [off, end) for typ.
func findBox(r io.ReaderAt, off, end int64, typ string) (boxPos, error) {
	var hdr [16]byte
	for off+8 <= end {
		if _, err := r.ReadAt(hdr[:8], off); err != nil {
			return boxPos{}, fmt.Errorf("mp4: %w", err)
		}
		size, hl := int64(binary.BigEndian.Uint32(hdr[:])), int64(8)
		switch size {
		case 1:
			if _, err := r.ReadAt(hdr[8:16], off+8); err != nil {
				return boxPos{}, fmt.Errorf("mp4: %w", err)
			}
			size, hl = int64(binary.BigEndian.Uint64(hdr[8:])), 16
		case 0:
			size = end - off
		}
		if size < hl || off+size > end {
			return boxPos{}, fmt.Errorf("mp4: box %q at %d overruns the file", hdr[4:8], off)
		}
		if string(hdr[4:8]) == typ {
			return boxPos{off: off + hl, size: size - hl}, nil
		}
		off += size
	}
	return boxPos{}, errNotMP4
}

// children returns the payloads of the boxes of type typ directly in b.
func children(b []byte, typ string) [][]byte {
	var out [][]byte
	for len(b) >= 8 {
		size, hl := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		if size == 1 && len(b) >= 16 {
			size, hl = binary.BigEndian.Uint64(b[8:]), 16
		} else if size == 0 {
			size = uint64(len(b))
		}
		if size < hl || size > uint64(len(b)) {
			return out
		}
		if typ == "" || string(b[4:8]) == typ {
			out = append(out, b[hl:size])
		}
		b = b[size:]
	}
	return out
}

func child(b []byte, typ string) []byte {
	if b == nil {
		return nil
	}
	c := children(b, typ)
	if len(c) == 0 {
		return nil
	}
	return c[0]
}
