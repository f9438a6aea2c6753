package av

import (
	"bytes"
	"errors"
	"image/color"
	"image/jpeg"
	"math/rand"
	"testing"
)

func TestDecodeClips(t *testing.T) {
	for _, tc := range []struct {
		clip string
		w, h int
	}{
		{"h264_320.mp4", 320, 240},
		{"h264_720.mp4", 1280, 720},
		{"h265_320.mp4", 320, 240},
		{"h265_320.h265", 320, 240},
		{"vtest.mp4", 768, 576},
		{"h265_10bit.mp4", 320, 240},
	} {
		t.Run(tc.clip, func(t *testing.T) {
			info, pkts := readClip(t, tc.clip)
			d := newDecoder(t, info.Codec)
			if w, h := d.Size(); w != 0 || h != 0 {
				t.Errorf("Size before decoding = %dx%d", w, h)
			}
			if _, _, _, err := d.Gray(0, nil); !errors.Is(err, ErrNoPicture) {
				t.Errorf("Gray before decoding: %v", err)
			}
			if _, err := d.JPEG(0, 80); !errors.Is(err, ErrNoPicture) {
				t.Errorf("JPEG before decoding: %v", err)
			}
			// Single-threaded and without B-frames, every AU yields its
			// picture at once.
			decodeAll(t, d, pkts)
			if got, err := d.Drain(); got || err != nil {
				t.Errorf("Drain = %v, %v; want nothing held back", got, err)
			}
			if w, h := d.Size(); w != tc.w || h != tc.h {
				t.Errorf("Size = %dx%d, want %dx%d", w, h, tc.w, tc.h)
			}
		})
	}
}

// Gray output must match ffmpeg's own gray rendering of the same frame.
func TestGrayMatchesFFmpeg(t *testing.T) {
	for _, tc := range []struct {
		clip         string
		width        int
		wantW, wantH int
	}{
		{"h264_720.mp4", 320, 320, 180},
		{"h264_720.mp4", 0, 1280, 720},
		{"h264_320.mp4", 160, 160, 120},
		{"h264_320.mp4", 100, 100, 76}, // 75 rounded to even
		{"h264_320.mp4", 1000, 320, 240},
		{"h265_320.mp4", 320, 320, 240},
		{"vtest.mp4", 320, 320, 240},
		{"h264_full.mp4", 160, 160, 120},  // full range: no second expansion
		{"h265_10bit.mp4", 160, 160, 120}, // Main 10
	} {
		info, pkts := readClip(t, tc.clip)
		d := newDecoder(t, info.Codec)
		if got, err := d.Decode(pkts[0].AU); !got || err != nil {
			t.Fatalf("%s: decode: %v %v", tc.clip, got, err)
		}
		buf, w, h, err := d.Gray(tc.width, nil)
		if err != nil {
			t.Fatal(err)
		}
		if w != tc.wantW || h != tc.wantH || len(buf) != w*h {
			t.Fatalf("%s Gray(%d) = %dx%d (%d bytes), want %dx%d", tc.clip, tc.width, w, h, len(buf), tc.wantW, tc.wantH)
		}
		ref := ffmpegGray(t, clip(t, tc.clip), w, h)
		mad, m := meanAbsDiff(buf, ref), mean(buf)
		t.Logf("%s Gray(%d) %dx%d: mean %.1f (ffmpeg %.1f), mean abs diff %.2f", tc.clip, tc.width, w, h, m, mean(ref), mad)
		if mad > 1.5 {
			t.Errorf("%s Gray(%d): mean abs diff to ffmpeg %.2f", tc.clip, tc.width, mad)
		}
		if m < 40 || m > 215 {
			t.Errorf("%s Gray(%d): implausible mean %.1f", tc.clip, tc.width, m)
		}
	}
}

func TestGrayReusesBuffer(t *testing.T) {
	_, pkts := readClip(t, "h264_720.mp4")
	d := newDecoder(t, H264)
	decodeAll(t, d, pkts[:3])
	buf := make([]byte, 10, 1<<20)
	out, w, h, err := d.Gray(320, buf)
	if err != nil || w != 320 || h != 180 || len(out) != w*h || &out[0] != &buf[0] {
		t.Fatalf("Gray did not fill the given buffer: %dx%d len %d err %v", w, h, len(out), err)
	}
	small := make([]byte, 10)
	out, _, _, _ = d.Gray(320, small)
	if len(out) != 320*180 {
		t.Fatalf("Gray did not grow the buffer: len %d", len(out))
	}
}

// The per-frame path allocates nothing in Go.
func TestNoAllocs(t *testing.T) {
	_, pkts := readClip(t, "h264_720.mp4")
	d := newDecoder(t, H264)
	decodeAll(t, d, pkts[:1])
	i := 1
	if a := testing.AllocsPerRun(10, func() {
		if _, err := d.Decode(pkts[i].AU); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Errorf("Decode: %v allocs per AU", a)
	}
	buf := make([]byte, 320*180)
	if a := testing.AllocsPerRun(10, func() {
		if _, _, _, err := d.Gray(320, buf); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Gray: %v allocs per call", a)
	}
}

func TestJPEG(t *testing.T) {
	for _, tc := range []struct {
		clip         string
		maxWidth     int
		wantW, wantH int
	}{
		{"h264_720.mp4", 640, 640, 360},
		{"h264_720.mp4", 0, 1280, 720},
		{"h264_320.mp4", 640, 320, 240},
		{"h264_320.mp4", 101, 100, 76},
		{"h265_320.mp4", 160, 160, 120},
		{"vtest.mp4", 400, 400, 300},
		{"h264_full.mp4", 0, 320, 240},
		{"h265_10bit.mp4", 0, 320, 240},
	} {
		info, pkts := readClip(t, tc.clip)
		d := newDecoder(t, info.Codec)
		if got, err := d.Decode(pkts[0].AU); !got || err != nil {
			t.Fatalf("%s: decode: %v %v", tc.clip, got, err)
		}
		data, err := d.JPEG(tc.maxWidth, 90)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: image/jpeg cannot decode the output: %v", tc.clip, err)
		}
		b := img.Bounds()
		if b.Dx() != tc.wantW || b.Dy() != tc.wantH {
			t.Fatalf("%s JPEG(%d) = %dx%d, want %dx%d", tc.clip, tc.maxWidth, b.Dx(), b.Dy(), tc.wantW, tc.wantH)
		}
		// Colours (range and chroma placement) must match ffmpeg's RGB.
		ref := ffmpegRGB(t, clip(t, tc.clip), tc.wantW, tc.wantH)
		got := make([]byte, 0, len(ref))
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
				got = append(got, c.R, c.G, c.B)
			}
		}
		mad := meanAbsDiff(got, ref)
		t.Logf("%s JPEG(%d) %dx%d: %d bytes, RGB mean abs diff to ffmpeg %.2f", tc.clip, tc.maxWidth, b.Dx(), b.Dy(), len(data), mad)
		if mad > 8 {
			t.Errorf("%s JPEG(%d): RGB mean abs diff to ffmpeg %.2f", tc.clip, tc.maxWidth, mad)
		}
	}

	// Quality changes the size; the returned bytes are the caller's.
	_, pkts := readClip(t, "h264_320.mp4")
	d := newDecoder(t, H264)
	decodeAll(t, d, pkts[:1])
	lo, err1 := d.JPEG(0, 10)
	hi, err2 := d.JPEG(0, 95)
	if err1 != nil || err2 != nil || len(lo) >= len(hi) {
		t.Errorf("JPEG q10 %d bytes (%v), q95 %d bytes (%v)", len(lo), err1, len(hi), err2)
	}
	if _, err := jpeg.Decode(bytes.NewReader(lo)); err != nil {
		t.Errorf("q10 output overwritten by the next call: %v", err)
	}
}

// A decoder follows resolution changes, as when a camera is reconfigured.
func TestResolutionChange(t *testing.T) {
	_, small := readClip(t, "h264_320.mp4")
	_, large := readClip(t, "h264_720.mp4")
	d := newDecoder(t, H264)
	var buf []byte
	for _, pkts := range [][]Packet{small, large, small} {
		decodeAll(t, d, pkts[:5])
		w, h := d.Size()
		var gw, gh int
		var err error
		buf, gw, gh, err = d.Gray(160, buf)
		if err != nil || gw != 160 || gh != 160*h/w {
			t.Fatalf("after switching to %dx%d: Gray %dx%d %v", w, h, gw, gh, err)
		}
		if _, err := d.JPEG(0, 50); err != nil {
			t.Fatal(err)
		}
	}
}

type corruptCase struct {
	name string
	au   [][]byte
	// mayDecode: a warm decoder may still use its earlier SPS.
	mayDecode bool
}

func corruptCases(c Codec, pkts []Packet) []corruptCase {
	r := rand.New(rand.NewSource(42))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		r.Read(b)
		return b
	}
	key := pkts[0].AU
	var truncated [][]byte
	for _, nalu := range key {
		truncated = append(truncated, nalu[:len(nalu)/3])
	}
	var slice []byte
	var rest [][]byte // the keyframe without its SPS
	for _, nalu := range key {
		switch nalType(c, nalu) {
		case 7, 33:
			continue
		case 5, 19, 20:
			slice = nalu
		}
		rest = append(rest, nalu)
	}
	garbageSPS := []byte{0x67}
	if c == H265 {
		garbageSPS = []byte{0x42, 0x01}
	}
	garbageSPS = append(garbageSPS, rnd(30)...)
	return []corruptCase{
		{"P-frame before IDR", pkts[1].AU, false},
		{"random NAL units", [][]byte{rnd(100), rnd(1000), rnd(5)}, false},
		{"one random byte", [][]byte{rnd(1)}, false},
		{"random slice header", [][]byte{append(append([]byte(nil), slice[:2]...), rnd(800)...)}, false},
		{"truncated NAL units", truncated, false},
		{"garbage SPS", append([][]byte{garbageSPS}, rest...), true},
		{"truncated slice only", [][]byte{slice[:len(slice)/2]}, false},
		{"all zeros", [][]byte{make([]byte, 300)}, false},
		{"nil and empty NAL units", [][]byte{nil, {}}, false},
		{"no NAL units", nil, false},
	}
}

// Corrupt input yields errors or no picture, never a crash, and the decoder
// recovers at the next good IDR.
func TestDecodeCorrupt(t *testing.T) {
	for _, name := range []string{"h264_320.mp4", "h265_320.mp4"} {
		info, pkts := readClip(t, name)
		for _, tc := range corruptCases(info.Codec, pkts) {
			// Fresh decoder, and one that already decoded a good GOP.
			for _, warm := range []bool{false, true} {
				d := newDecoder(t, info.Codec)
				if warm {
					decodeAll(t, d, pkts[:5])
				}
				got, err := d.Decode(tc.au)
				w, h := d.Size()
				t.Logf("%s %s (warm %v): got=%v (%dx%d) err=%v", name, tc.name, warm, got, w, h, err)
				if got && err == nil && !warm && !tc.mayDecode {
					t.Errorf("%s %s: clean picture from corrupt input", name, tc.name)
				}
				if got {
					// Whatever came out is a usable picture.
					if _, _, _, err := d.Gray(64, nil); err != nil {
						t.Errorf("Gray after corrupt input: %v", err)
					}
				}
				// Resynchronise on the next keyframe.
				decodeAll(t, d, pkts[15:18])
				if w, h := d.Size(); w != info.Width || h != info.Height {
					t.Errorf("%s %s: size after recovery %dx%d", name, tc.name, w, h)
				}
			}
		}
	}
}

func TestDecodeErrorsAreClear(t *testing.T) {
	_, pkts := readClip(t, "h264_320.mp4")
	d := newDecoder(t, H264)
	_, err := d.Decode(pkts[1].AU) // P-frame without its IDR
	var avErr *Error
	if !errors.Is(err, ErrInvalidData) || !errors.As(err, &avErr) || avErr.Op != "avcodec_send_packet" {
		t.Errorf("P-frame before IDR: %v", err)
	}
	if _, err := d.Decode(nil); err == nil {
		t.Error("empty AU: no error")
	}

	// A picture with lost slices comes out flagged.
	decodeAll(t, d, pkts[:3])
	var slice []byte
	for _, nalu := range pkts[3].AU {
		if nalType(H264, nalu) == 1 {
			slice = nalu
		}
	}
	got, err := d.Decode([][]byte{slice[:len(slice)/4]})
	if got && !errors.Is(err, ErrCorruptPicture) {
		t.Errorf("truncated P-frame: got=%v err=%v", got, err)
	}

	d.Close()
	d.Close()
	if _, err := d.Decode(pkts[0].AU); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close: %v", err)
	}
	if _, _, _, err := d.Gray(0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Gray after Close: %v", err)
	}
	if _, err := d.JPEG(0, 50); !errors.Is(err, ErrClosed) {
		t.Errorf("JPEG after Close: %v", err)
	}
	if _, err := NewDecoder(Codec(9)); err == nil {
		t.Error("NewDecoder(9): no error")
	}
}

// annexB joins NAL units with start codes, the fuzzer's input format.
func annexB(au [][]byte) []byte {
	var b []byte
	for _, nalu := range au {
		b = append(b, 0, 0, 0, 1)
		b = append(b, nalu...)
	}
	return b
}

// drain drains d and returns how many pictures came out.
func drain(d *Decoder) int {
	n := 0
	for {
		if got, _ := d.Drain(); !got {
			return n
		}
		n++
	}
}

// FuzzDecode feeds arbitrary bytes, split into NAL units at start codes, to
// an H.264 decoder: it must never crash, and must decode a good IDR after.
// Seeds come from a tiny clip so that each run (and minimisation, during
// which the fuzzer's exec count stands still) stays fast.
func FuzzDecode(f *testing.F) {
	_, pkts := readClip(f, "h264_96.mp4")
	f.Add(annexB(pkts[0].AU))
	f.Add(annexB(pkts[1].AU))
	f.Add(annexB(append(append([][]byte{}, pkts[0].AU...), pkts[1].AU...)))
	f.Add([]byte{0, 0, 1, 0x67, 0x42, 0, 0x1e, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDecoder(H264)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		au := splitAnnexB(data)
		if len(au) == 0 && len(data) > 0 {
			au = [][]byte{data}
		}
		// Twice: the second pass sees the state the first one left.
		for range 2 {
			if got, _ := d.Decode(au); got {
				w, h := d.Size()
				if w <= 0 || h <= 0 {
					t.Fatalf("picture of %dx%d", w, h)
				}
				if _, _, _, err := d.Gray(64, nil); err != nil {
					t.Fatalf("Gray of %dx%d picture: %v", w, h, err)
				}
				if w >= 2 && h >= 2 {
					if _, err := d.JPEG(32, 50); err != nil {
						t.Fatalf("JPEG of %dx%d picture: %v", w, h, err)
					}
				}
			}
		}
		drain(d)
		// The decoder is still usable. A bogus SPS may have raised its
		// reorder delay for good (FFmpeg never lowers it), so drain.
		n := 0
		for _, p := range pkts[:3] {
			if got, _ := d.Decode(p.AU); got {
				n++
			}
		}
		n += drain(d)
		if w, h := d.Size(); n < 3 || w != 96 || h != 64 {
			t.Fatalf("%d pictures, last %dx%d, from a good GOP after the fuzz input", n, w, h)
		}
	})
}

func BenchmarkDecode720p(b *testing.B) {
	for _, c := range []struct {
		name string
		clip string
	}{{"H264", "h264_720.mp4"}, {"H265", "h265_720.mp4"}} {
		b.Run(c.name, func(b *testing.B) {
			info, pkts := readClip(b, c.clip)
			d := newDecoder(b, info.Codec)
			frames := 0
			b.ResetTimer()
			for b.Loop() {
				decodeAll(b, d, pkts)
				frames += len(pkts)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(frames)
			b.ReportMetric(ns, "ns/frame")
			b.ReportMetric(ns/1e6, "ms/frame")
		})
	}
}

func decodedPicture(b *testing.B) *Decoder {
	_, pkts := readClip(b, "h264_720.mp4")
	d := newDecoder(b, H264)
	decodeAll(b, d, pkts[:5])
	return d
}

func BenchmarkGray320(b *testing.B) {
	d := decodedPicture(b)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, _, _, err = d.Gray(320, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJPEG(b *testing.B) {
	d := decodedPicture(b)
	for _, w := range []int{640, 0} {
		b.Run(map[int]string{640: "640x360", 0: "1280x720"}[w], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.JPEG(w, 80); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
