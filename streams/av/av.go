// Package av decodes H.264 and H.265 video and demuxes video files through
// FFmpeg (libavcodec, libavformat, libswscale) via cgo.
//
// It sits on the per-frame path of edge boxes that analyse many cameras on
// few cores, so decoding reuses C buffers, scaling writes straight into
// caller-provided memory and steady-state calls allocate nothing in Go.
// Every type owns its C objects and must be closed; the package keeps no
// global state.
package av

// #cgo pkg-config: libavcodec libavformat libavutil libswscale
// #include "av.h"
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// Codec is a video compression format.
type Codec int

// Supported codecs.
const (
	H264 Codec = 1
	H265 Codec = 2
)

// String returns "H264" or "H265".
func (c Codec) String() string {
	switch c {
	case H264:
		return "H264"
	case H265:
		return "H265"
	}
	return fmt.Sprintf("Codec(%d)", int(c))
}

func (c Codec) codecID() (C.enum_AVCodecID, bool) {
	switch c {
	case H264:
		return C.AV_CODEC_ID_H264, true
	case H265:
		return C.AV_CODEC_ID_HEVC, true
	}
	return 0, false
}

// Sentinel errors, for errors.Is.
var (
	// ErrInvalidData means FFmpeg rejected the input as corrupt.
	ErrInvalidData = errors.New("invalid data")
	// ErrCorruptPicture means a picture was produced but is damaged
	// (missing references or concealed slices).
	ErrCorruptPicture = errors.New("corrupt picture")
	// ErrNoPicture means no picture has been decoded yet.
	ErrNoPicture = errors.New("no picture decoded yet")
	// ErrClosed means the object was used after Close.
	ErrClosed = errors.New("use after Close")
	// ErrNoVideo means a file has no video stream.
	ErrNoVideo = errors.New("no video stream")
	// ErrUnsupportedCodec means a file's video is neither H.264 nor H.265.
	ErrUnsupportedCodec = errors.New("unsupported video codec")
)

// Error is a failed FFmpeg call.
type Error struct {
	Op   string // the FFmpeg function, e.g. "avcodec_send_packet"
	Code int    // the negative AVERROR code
}

func (e *Error) Error() string {
	var buf [C.AV_ERROR_MAX_STRING_SIZE]C.char
	C.av_strerror(C.int(e.Code), &buf[0], C.size_t(len(buf)))
	return fmt.Sprintf("%s: %s", e.Op, C.GoString(&buf[0]))
}

// Unwrap exposes POSIX errors (AVERROR(e) == -e), so that
// errors.Is(err, fs.ErrNotExist) works, and maps AVERROR_INVALIDDATA to
// ErrInvalidData.
func (e *Error) Unwrap() error {
	switch {
	case e.Code == int(C.AVERROR_INVALIDDATA):
		return ErrInvalidData
	case e.Code < 0 && e.Code > -4096:
		return syscall.Errno(-e.Code)
	}
	return nil
}

func avError(op string, code C.int) error {
	return &Error{Op: op, Code: int(code)}
}

// cBytes views n bytes of C memory as a slice without copying.
func cBytes(p *C.uint8_t, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), n)
}
