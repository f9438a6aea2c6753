package av

// #include "av.h"
import "C"

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"unsafe"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// maxAUSize bounds one access unit, as gortsplib does; larger input is
// garbage and would otherwise make us allocate arbitrarily large C buffers.
const maxAUSize = h264.MaxAccessUnitSize

// Swscale flags. SWS_AREA averages all covered source pixels: 720p to 320
// gray costs ~110 µs against ~85 µs for SWS_FAST_BILINEAR, whose 2-tap
// filter skips pixels and aliases fine texture into frame-to-frame flicker
// that motion detectors would see as noise.
const (
	grayFlags = C.SWS_AREA
	jpegFlags = C.SWS_AREA
)

var startCode = [4]byte{0, 0, 0, 1}

// Decoder decodes one camera's access units. One goroutine owns it.
type Decoder struct {
	codec Codec
	c     *C.vg_dec
	w, h  int // of the last picture

	yuv []byte // JPEG scaling target, reused
	out bytes.Buffer
}

// NewDecoder returns a single-threaded, low-delay decoder for c that
// decodes exactly as the standard says: pictures to show people.
func NewDecoder(c Codec) (*Decoder, error) { return NewDecoderWith(c, DecoderOptions{}) }

// DecoderOptions trade picture fidelity for decoding time.
type DecoderOptions struct {
	// SkipLoopFilter skips the in-loop deblocking (and H.265's SAO)
	// filter: about a quarter less CPU per frame. Reference pictures then
	// drift from the encoder's until the next keyframe: invisible at a
	// camera's usual bitrate (luma PSNR against a full decode ≥ 43 dB on
	// the bench footage) but blocky and colour-shifted on a starved,
	// long-GOP stream (≈ 36 dB). For motion analysis only; pictures for
	// people come from a decoder without it.
	SkipLoopFilter bool
}

// NewDecoderWith returns a single-threaded, low-delay decoder for c.
func NewDecoderWith(c Codec, o DecoderOptions) (*Decoder, error) {
	id, ok := c.codecID()
	if !ok {
		return nil, fmt.Errorf("av: new decoder: unknown codec %v", c)
	}
	skip := C.int(0)
	if o.SkipLoopFilter {
		skip = 1
	}
	var code C.int
	p := C.vg_dec_new(id, skip, &code)
	if p == nil {
		return nil, fmt.Errorf("av: new %v decoder: %w", c, avError("avcodec_open2", code))
	}
	return &Decoder{codec: c, c: p}, nil
}

// Close frees the decoder's C resources. It is safe to call twice.
func (d *Decoder) Close() {
	C.vg_dec_free(d.c)
	d.c = nil
	d.w, d.h = 0, 0
}

// Codec returns the codec the decoder was created for.
func (d *Decoder) Codec() Codec { return d.codec }

// Decode feeds one access unit given as NAL units without start codes, as
// gortsplib's RTP depacketisers return them, and reports whether a new
// picture is available. With no B-frames every decodable AU yields its
// picture immediately.
//
// Errors wrap *Error (and ErrInvalidData for rejected input, such as every
// AU before the first keyframe when joining a stream mid-GOP); the decoder
// stays usable for the following AUs. A picture decoded with errors (for
// example a P-frame whose references are missing) returns true together with
// an error wrapping ErrCorruptPicture; it can be shown but not trusted.
// FFmpeg's own messages for the decoder are demoted to verbose, so that a
// broken camera cannot flood stderr.
func (d *Decoder) Decode(au [][]byte) (bool, error) {
	if d.c == nil {
		return false, fmt.Errorf("av: decode: %w", ErrClosed)
	}
	size := 0
	for _, nalu := range au {
		if len(nalu) > 0 {
			size += len(startCode) + len(nalu)
		}
	}
	if size == 0 {
		// An empty packet would put FFmpeg into draining mode.
		return false, fmt.Errorf("av: %v decode: empty access unit", d.codec)
	}
	if size > maxAUSize {
		return false, fmt.Errorf("av: %v decode: access unit of %d bytes exceeds %d", d.codec, size, maxAUSize)
	}
	p := C.vg_dec_buf(d.c, C.int(size))
	if p == nil {
		return false, fmt.Errorf("av: %v decode: %w", d.codec, avError("av_buffer_alloc", C.vg_enomem))
	}
	// Annex-B straight into the C buffer the packet will reference.
	buf := cBytes(p, size)
	n := 0
	for _, nalu := range au {
		if len(nalu) > 0 {
			n += copy(buf[n:], startCode[:])
			n += copy(buf[n:], nalu)
		}
	}
	ret := C.vg_dec_decode(d.c, C.int(size))
	return d.result("decode", "avcodec_send_packet", ret)
}

// Drain returns, one per call, the pictures that a stream with B-frames
// still holds after its last AU; it reports false when none is left and the
// decoder has been reset (the next AU should then be a keyframe). Streams
// without B-frames hold nothing back.
func (d *Decoder) Drain() (bool, error) {
	if d.c == nil {
		return false, fmt.Errorf("av: drain: %w", ErrClosed)
	}
	ret := C.vg_dec_drain(d.c)
	return d.result("drain", "avcodec_receive_frame", ret)
}

func (d *Decoder) result(what, op string, ret C.int) (bool, error) {
	got, flags := d.c.got, d.c.errflags
	if got != 0 {
		d.w, d.h = int(d.c.last.width), int(d.c.last.height)
	}
	switch {
	case ret < 0:
		return got != 0, fmt.Errorf("av: %v %s: %w", d.codec, what, avError(op, ret))
	case got != 0 && flags != 0:
		return true, fmt.Errorf("av: %v %s: %w (decode_error_flags %#x)", d.codec, what, ErrCorruptPicture, int(flags))
	}
	return got != 0, nil
}

// Size returns the dimensions of the last picture, or 0, 0 before the first.
func (d *Decoder) Size() (width, height int) { return d.w, d.h }

// scaledSize returns the target size for a requested width, keeping the
// aspect ratio with an even height; width <= 0 or >= the source keeps the
// source size.
func scaledSize(srcW, srcH, width int) (int, int) {
	if width <= 0 || width >= srcW {
		return srcW, srcH
	}
	h := (srcH*width + srcW/2) / srcW
	h = (h + 1) &^ 1
	if h < 2 {
		h = 2
	}
	return width, h
}

// Gray scales the last picture's luma plane to width pixels wide as 8-bit
// gray, tightly packed (stride == w), into dst, growing it if too small.
// Height keeps the aspect ratio, rounded to an even number; width <= 0 or
// >= the source width keeps the source size. swscale goes straight from the
// decoder's format to GRAY8, reading only luma; limited-range input (16..235)
// is then expanded to full range, so the result matches `ffmpeg -pix_fmt
// gray` and gray images made from RGB.
func (d *Decoder) Gray(width int, dst []byte) (buf []byte, w, h int, err error) {
	if d.c == nil {
		return dst, 0, 0, fmt.Errorf("av: gray: %w", ErrClosed)
	}
	if d.c.have_last == 0 {
		return dst, 0, 0, fmt.Errorf("av: gray: %w", ErrNoPicture)
	}
	w, h = scaledSize(d.w, d.h, width)
	if cap(dst) < w*h {
		dst = make([]byte, w*h)
	}
	dst = dst[:w*h]
	if ret := C.vg_dec_gray(d.c, C.int(w), C.int(h), grayFlags, (*C.uint8_t)(unsafe.Pointer(&dst[0]))); ret < 0 {
		return dst, 0, 0, fmt.Errorf("av: gray %dx%d: %w", w, h, avError("sws_scale", ret))
	}
	return dst, w, h, nil
}

// JPEG encodes the last picture in colour, scaled down to at most maxWidth
// pixels wide (aspect kept, even dimensions; maxWidth <= 0 keeps the source
// width) at quality 1..100 (clamped). The scaled 4:2:0 planes are reused
// between calls; the returned slice is the caller's.
func (d *Decoder) JPEG(maxWidth, quality int) ([]byte, error) {
	if d.c == nil {
		return nil, fmt.Errorf("av: jpeg: %w", ErrClosed)
	}
	if d.c.have_last == 0 {
		return nil, fmt.Errorf("av: jpeg: %w", ErrNoPicture)
	}
	w, h := scaledSize(d.w, d.h, maxWidth)
	w, h = w&^1, h&^1
	if w == 0 || h == 0 {
		return nil, fmt.Errorf("av: jpeg: picture %dx%d too small", d.w, d.h)
	}
	ySize, cSize := w*h, (w/2)*(h/2)
	if cap(d.yuv) < ySize+2*cSize {
		d.yuv = make([]byte, ySize+2*cSize)
	}
	pix := d.yuv[:ySize+2*cSize]
	img := &image.YCbCr{
		Y:              pix[:ySize:ySize],
		Cb:             pix[ySize : ySize+cSize : ySize+cSize],
		Cr:             pix[ySize+cSize:],
		YStride:        w,
		CStride:        w / 2,
		SubsampleRatio: image.YCbCrSubsampleRatio420,
		Rect:           image.Rect(0, 0, w, h),
	}
	ret := C.vg_dec_yuv420(d.c, C.int(w), C.int(h), jpegFlags,
		(*C.uint8_t)(unsafe.Pointer(&img.Y[0])),
		(*C.uint8_t)(unsafe.Pointer(&img.Cb[0])),
		(*C.uint8_t)(unsafe.Pointer(&img.Cr[0])))
	if ret < 0 {
		return nil, fmt.Errorf("av: jpeg %dx%d: %w", w, h, avError("sws_scale", ret))
	}
	quality = max(1, min(100, quality))
	d.out.Reset()
	if err := jpeg.Encode(&d.out, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("av: jpeg: %w", err)
	}
	return bytes.Clone(d.out.Bytes()), nil
}
