package av

// #include <stdlib.h>
// #include "av.h"
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unsafe"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// Packet is one access unit read from a file.
type Packet struct {
	AU  [][]byte      // NAL units without start codes
	PTS time.Duration // presentation time from the start of the file (first packet at 0)
	Key bool          // random access point (IDR / IRAP)
}

// FileInfo describes a file's first video stream.
type FileInfo struct {
	Codec         Codec
	Width, Height int
	FPS           float64       // average frame rate
	Duration      time.Duration // of the video stream (last PTS + one frame)
	Frames        int           // number of packets (when read whole)
	SPS, PPS, VPS []byte        // parameter sets from the container's extradata (VPS only for H.265), without start codes
}

// FileReader streams the access units of a file's first H.264 or H.265
// video stream in decode order. One goroutine owns it.
type FileReader struct {
	path     string
	r        *C.vg_reader
	info     FileInfo
	tb       C.AVRational
	first    int64 // PTS of the first packet, in ns; -1 until seen
	lastPTS  time.Duration
	frameDur time.Duration
	peeked   *Packet // read ahead to find parameter sets missing from extradata
	err      error   // sticky error once EOF or a read error was returned
}

// OpenFile opens a video file (anything libavformat reads: MP4, MKV, AVI,
// raw .h264/.h265 ...) for streaming. Info().Frames is 0 when the container
// does not say; Info().Duration is the container's, or 0 when unknown.
// Parameter sets missing from the extradata are taken from the first AU.
func OpenFile(path string) (*FileReader, error) {
	r := (*C.vg_reader)(C.calloc(1, C.sizeof_vg_reader))
	if r == nil {
		return nil, fmt.Errorf("av: open %s: out of memory", path)
	}
	f := &FileReader{path: path, r: r, first: -1}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var what [128]C.char
	switch ret := C.vg_reader_open(r, cpath, &what[0], C.int(len(what))); {
	case ret == 1:
		f.Close()
		return nil, fmt.Errorf("av: open %s: %w", path, ErrNoVideo)
	case ret == 2:
		f.Close()
		return nil, fmt.Errorf("av: open %s: %w %s; only H.264 and H.265 are supported",
			path, ErrUnsupportedCodec, C.GoString(&what[0]))
	case ret < 0:
		op := C.GoString(r.op)
		f.Close()
		return nil, fmt.Errorf("av: open %s: %w", path, avError(op, ret))
	}

	st := r.st
	par := st.codecpar
	f.tb = st.time_base
	f.info.Codec = H264
	if par.codec_id == C.AV_CODEC_ID_HEVC {
		f.info.Codec = H265
	}
	f.info.Width, f.info.Height = int(par.width), int(par.height)
	rate := st.avg_frame_rate
	if rate.num <= 0 || rate.den <= 0 {
		rate = st.r_frame_rate
	}
	if rate.num > 0 && rate.den > 0 {
		f.info.FPS = float64(rate.num) / float64(rate.den)
		f.frameDur = time.Duration(math.Round(float64(time.Second) / f.info.FPS))
	}
	switch fc := r.fmt; {
	case st.duration > 0 && st.duration != C.vg_nopts:
		f.info.Duration = time.Duration(C.vg_rescale_ns(st.duration, f.tb))
	case fc.duration > 0 && fc.duration != C.vg_nopts && fc.duration_estimation_method != C.AVFMT_DURATION_FROM_BITRATE:
		// MKV stores only the file's duration; a bitrate guess is useless.
		f.info.Duration = time.Duration(fc.duration) * time.Microsecond // AV_TIME_BASE
	}
	f.info.Frames = int(st.nb_frames)

	// The bitstream filter rewrites avcC/hvcC extradata to Annex-B.
	out := r.bsf.par_out
	if out.extradata_size > 0 {
		f.setParams(splitAnnexB(cBytes(out.extradata, int(out.extradata_size))))
	}
	if f.info.SPS == nil || f.info.PPS == nil || (f.info.Codec == H265 && f.info.VPS == nil) {
		// Raw streams may lack extradata; take the sets from the first AU.
		p, err := f.Next()
		if err != nil && err != io.EOF {
			f.Close()
			return nil, err
		}
		if err == nil {
			f.peeked = &p
			f.setParams(p.AU)
		}
		f.err = nil
	}
	return f, nil
}

// setParams fills missing parameter sets from nalus, copying them.
func (f *FileReader) setParams(nalus [][]byte) {
	set := func(dst *[]byte, nalu []byte) {
		if *dst == nil {
			*dst = append([]byte(nil), nalu...)
		}
	}
	for _, nalu := range nalus {
		if len(nalu) == 0 {
			continue
		}
		if f.info.Codec == H264 {
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				set(&f.info.SPS, nalu)
			case h264.NALUTypePPS:
				set(&f.info.PPS, nalu)
			}
			continue
		}
		switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			set(&f.info.VPS, nalu)
		case h265.NALUType_SPS_NUT:
			set(&f.info.SPS, nalu)
		case h265.NALUType_PPS_NUT:
			set(&f.info.PPS, nalu)
		}
	}
}

// Info describes the selected stream.
func (f *FileReader) Info() FileInfo { return f.info }

// Next returns the next access unit in decode order, or io.EOF at the end;
// after an error it keeps returning that error. The packet's memory belongs
// to the caller.
func (f *FileReader) Next() (Packet, error) {
	if f.peeked != nil {
		p := *f.peeked
		f.peeked = nil
		return p, nil
	}
	if f.r == nil {
		return Packet{}, fmt.Errorf("av: read %s: %w", f.path, ErrClosed)
	}
	if f.err != nil {
		return Packet{}, f.err
	}
	ret := C.vg_reader_next(f.r)
	if ret == C.vg_eof {
		f.err = io.EOF
		return Packet{}, io.EOF
	}
	if ret < 0 {
		f.err = fmt.Errorf("av: read %s: %w", f.path, avError("av_read_frame", ret))
		return Packet{}, f.err
	}
	pkt := f.r.pkt

	// One Go copy; the NAL units slice into it.
	data := append([]byte(nil), cBytes(pkt.data, int(pkt.size))...)
	au := dropRepeatedParams(f.info.Codec, splitAnnexB(data))
	if len(au) == 0 {
		f.err = fmt.Errorf("av: read %s: packet without NAL units", f.path)
		return Packet{}, f.err
	}

	var pts time.Duration
	switch {
	case pkt.pts != C.vg_nopts:
		pts = time.Duration(C.vg_rescale_ns(pkt.pts, f.tb))
	case pkt.dts != C.vg_nopts:
		pts = time.Duration(C.vg_rescale_ns(pkt.dts, f.tb))
	case f.first >= 0:
		pts = f.lastPTS + f.frameDur + time.Duration(f.first)
	}
	if f.first < 0 {
		f.first = int64(pts)
	}
	pts -= time.Duration(f.first)
	f.lastPTS = pts
	return Packet{AU: au, PTS: pts, Key: isKey(f.info.Codec, au)}, nil
}

// Close frees the reader's C resources. It is safe to call twice.
func (f *FileReader) Close() {
	if f.r == nil {
		return
	}
	C.vg_reader_close(f.r)
	C.free(unsafe.Pointer(f.r))
	f.r = nil
}

// ReadFile demuxes a whole video file into memory: its first H.264 or H.265
// video stream as access units in decode order, each with its true PTS.
// Info's Frames and Duration are computed from the packets.
func ReadFile(path string) (FileInfo, []Packet, error) {
	f, err := OpenFile(path)
	if err != nil {
		return FileInfo{}, nil, err
	}
	defer f.Close()
	info := f.Info()
	var pkts []Packet
	if info.Frames > 0 {
		pkts = make([]Packet, 0, info.Frames)
	}
	var first, last time.Duration
	for {
		p, err := f.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return info, pkts, err
		}
		if len(pkts) == 0 {
			first, last = p.PTS, p.PTS
		}
		first, last = min(first, p.PTS), max(last, p.PTS)
		pkts = append(pkts, p)
	}
	info.Frames = len(pkts)
	// One frame is the mean packet interval: some muxers (AVI) store a
	// frame rate that is a multiple of the real one.
	frame := f.frameDur
	if n := len(pkts); n > 1 && last > first {
		frame = (last - first + time.Duration(n-1)/2) / time.Duration(n-1)
	}
	if len(pkts) > 0 {
		info.Duration = last + frame
	}
	return info, pkts, nil
}

// isKey reports whether an AU is a random access point by its NAL types,
// which unlike container flags is the same for every container.
func isKey(c Codec, au [][]byte) bool {
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		if c == H264 {
			if h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeIDR {
				return true
			}
			continue
		}
		// IRAP: BLA, IDR and CRA pictures, types 16..23.
		if t := (nalu[0] >> 1) & 0x3f; t >= 16 && t <= 23 {
			return true
		}
	}
	return false
}

// dropRepeatedParams removes byte-identical repeats of parameter sets from
// an AU. hevc_mp4toannexb prepends the hvcC sets to every keyframe even when
// the stream repeats them in band, which would double them.
func dropRepeatedParams(c Codec, au [][]byte) [][]byte {
	isParam := func(nalu []byte) bool {
		if c == H264 {
			t := h264.NALUType(nalu[0] & 0x1f)
			return t == h264.NALUTypeSPS || t == h264.NALUTypePPS
		}
		t := h265.NALUType((nalu[0] >> 1) & 0x3f)
		return t == h265.NALUType_VPS_NUT || t == h265.NALUType_SPS_NUT || t == h265.NALUType_PPS_NUT
	}
	out := au[:0]
next:
	for _, nalu := range au {
		if isParam(nalu) {
			for _, prev := range out {
				if bytes.Equal(prev, nalu) {
					continue next
				}
			}
		}
		out = append(out, nalu)
	}
	return out
}

// splitAnnexB splits an Annex-B byte stream into NAL units that alias buf.
// Unlike h264.AnnexB.Unmarshal it makes one pass and drops trailing zero
// bytes, which belong to the next start code, not to the NAL unit.
func splitAnnexB(buf []byte) [][]byte {
	var nalus [][]byte
	start := -1
	zeros := 0
	for i, b := range buf {
		switch {
		case b == 0:
			zeros++
			continue
		case b == 1 && zeros >= 2:
			if start >= 0 {
				if nalu := buf[start : i-zeros]; len(nalu) > 0 {
					nalus = append(nalus, nalu)
				}
			}
			start = i + 1
		}
		zeros = 0
	}
	if start >= 0 && start < len(buf)-zeros {
		nalus = append(nalus, buf[start:len(buf)-zeros])
	}
	return nalus
}
