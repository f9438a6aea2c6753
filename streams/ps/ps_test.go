package ps

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// frame is one access unit of a test clip in decode order.
type frame struct {
	au       [][]byte
	pts, dts int64 // 90 kHz
	key      bool
}

const start90k = 90000 // clips start at 1 s so that DTS stays positive

// clipDir holds the clips of one test run, each encoded once.
var clipDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ps-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	clipDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// encode returns the clip named name (its extension picks the container),
// encoding it with ffmpeg the first time.
func encode(t *testing.T, name string, encoder []string) string {
	t.Helper()
	path := filepath.Join(clipDir, name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return testrig.Testsrc(t, path, 2, encoder...)
}

// readClip reads a clip's access units with the edge's own file reader;
// DTS comes from mediacommon's extractor when the clip has B-frames, as it
// would for a camera's RTP stream.
func readClip(t *testing.T, path string, bframes bool) []frame {
	return readClipSize(t, path, bframes, 320, 240, 50)
}

func readClipSize(t *testing.T, path string, bframes bool, w, h, n int) []frame {
	t.Helper()
	info, pkts, err := av.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != w || info.Height != h || len(pkts) != n {
		t.Fatalf("clip %s: %dx%d, %d frames", path, info.Width, info.Height, len(pkts))
	}
	dx := h264.NewDTSExtractor()
	var out []frame
	for _, p := range pkts {
		f := frame{au: p.AU, pts: start90k + Ticks(p.PTS), key: p.Key}
		f.dts = f.pts
		if bframes {
			if f.dts, err = dx.Extract(p.AU, f.pts); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, f)
	}
	return out
}

// muxAll muxes frames into one program stream.
func muxAll(t testing.TB, codec Codec, frames []frame) []byte {
	t.Helper()
	m, err := New(codec)
	if err != nil {
		t.Fatal(err)
	}
	var out, buf []byte
	for i, f := range frames {
		var key bool
		buf, key, err = m.Append(buf[:0], f.au, f.pts, f.dts)
		if err != nil {
			t.Fatal(err)
		}
		if key != f.key {
			t.Fatalf("frame %d: key %v, want %v", i, key, f.key)
		}
		out = append(out, buf...)
	}
	return out
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// annexB is what the PES payloads of a frame must hold.
func annexB(au [][]byte) []byte {
	var b []byte
	for _, n := range au {
		b = append(append(b, 0, 0, 0, 1), n...)
	}
	return b
}

// checkPacks checks the structure against the input: one pack per frame
// with SCR = DTS, system header and PSM on keyframes, the PTS/DTS of each
// frame on its first PES, and the frame's bytes.
func checkPacks(t *testing.T, codec Codec, ps []byte, frames []frame) []pack {
	t.Helper()
	packs, err := demux(ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != len(frames) {
		t.Fatalf("%d packs for %d frames", len(packs), len(frames))
	}
	for i, p := range packs {
		f := frames[i]
		if p.scr != f.dts || p.muxRate != DefaultMuxRate {
			t.Fatalf("pack %d: SCR %d rate %d, want %d %d", i, p.scr, p.muxRate, f.dts, DefaultMuxRate)
		}
		wantHeaders := f.key || i == 0
		if p.sys != wantHeaders || (p.psm != nil) != wantHeaders {
			t.Fatalf("pack %d (key %v): system header %v, PSM %v", i, f.key, p.sys, p.psm != nil)
		}
		if p.psm != nil && (len(p.psm) != 1 || p.psm[VideoStreamID] != byte(codec)) {
			t.Fatalf("pack %d: PSM %v", i, p.psm)
		}
		if len(p.pes) == 0 {
			t.Fatalf("pack %d: no PES", i)
		}
		first := p.pes[0]
		if !first.hasPTS || first.pts != f.pts || first.hasDTS != (f.dts != f.pts) || (first.hasDTS && first.dts != f.dts) || !first.aligned {
			t.Fatalf("pack %d: PES %+v, want PTS %d DTS %d", i, first, f.pts, f.dts)
		}
		for j, x := range p.pes[1:] {
			if x.hasPTS || x.aligned {
				t.Fatalf("pack %d PES %d continues the frame but has PTS or alignment", i, j+1)
			}
		}
		if es := p.es(); !bytes.Equal(es, annexB(f.au)) && !f.key {
			t.Fatalf("pack %d: elementary stream differs from the access unit", i)
		}
	}
	return packs
}

func TestMuxFFprobe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		codec   Codec
		file    string
		bframes bool
		encoder []string
		ffcodec string
		w, h, n int // picture size, frames
		keys    int
	}{
		{"h264", H264, "in.h264", false, []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25"}, "h264", 320, 240, 50, 2},
		{"h265", H265, "in.h265", false, []string{"-c:v", "libx265", "-preset", "veryfast",
			"-x265-params", "bframes=0:keyint=25:min-keyint=25:scenecut=0:log-level=error"}, "hevc", 320, 240, 50, 2},
		{"h264-bframes", H264, "in.mp4", true, []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "25"}, "h264", 320, 240, 50, 2},
		// Lossless 720p: frames of several PES packets each.
		{"h264-large-frames", H264, "big.h264", false, []string{"-vf", "scale=1280:720", "-frames:v", "6", "-c:v", "libx264",
			"-preset", "ultrafast", "-qp", "0", "-bf", "0", "-g", "3"}, "h264", 1280, 720, 6, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clip := encode(t, tc.file, tc.encoder)
			frames := readClipSize(t, clip, tc.bframes, tc.w, tc.h, tc.n)
			if tc.bframes {
				reordered := 0
				for _, f := range frames {
					if f.pts != f.dts {
						reordered++
					}
				}
				if reordered == 0 {
					t.Fatal("the clip has no frame with PTS != DTS")
				}
			}
			ps := muxAll(t, tc.codec, frames)
			packs := checkPacks(t, tc.codec, ps, frames)
			split := 0
			for _, p := range packs {
				if len(p.pes) > 1 {
					split++
				}
			}
			if (split > 0) != (tc.w > 320) {
				t.Fatalf("%d frames split into several PES packets", split)
			}

			p := testrig.FFprobePS(t, writeFile(t, "out.mpg", ps))
			if p.Codec != tc.ffcodec || p.Width != tc.w || p.Height != tc.h {
				t.Fatalf("ffprobe: %+v", p)
			}
			if len(p.FramePTS) != len(frames) || p.Packets != len(frames) {
				t.Fatalf("ffprobe decoded %d frames from %d packets, muxed %d", len(p.FramePTS), p.Packets, len(frames))
			}
			if p.Keyframes != tc.keys {
				t.Fatalf("ffprobe saw %d keyframes, want %d", p.Keyframes, tc.keys)
			}
			for i := 1; i < len(p.FramePTS); i++ {
				if p.FramePTS[i] <= p.FramePTS[i-1] {
					t.Fatalf("frame %d: PTS %d after %d", i, p.FramePTS[i], p.FramePTS[i-1])
				}
			}
			if p.FramePTS[0] != start90k {
				t.Fatalf("first frame PTS %d, want %d", p.FramePTS[0], start90k)
			}
		})
	}
}

// A keyframe without parameter sets gets the last ones seen, in band, so
// that a platform joining there (or cutting the stream there) can decode.
func TestMuxInsertsParameterSets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		codec   Codec
		file    string
		encoder []string
		params  []byte // NAL unit types of the parameter sets, in order
	}{
		{"h264", H264, "in.h264", []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25"}, []byte{h264SPS, h264PPS}},
		{"h265", H265, "in.h265", []string{"-c:v", "libx265", "-preset", "veryfast",
			"-x265-params", "bframes=0:keyint=25:min-keyint=25:scenecut=0:log-level=error"}, []byte{h265VPS, h265SPS, h265PPS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clip := encode(t, tc.file, tc.encoder)
			frames := readClip(t, clip, false)
			m, _ := New(tc.codec)
			typ := func(n []byte) byte {
				if tc.codec == H264 {
					return n[0] & 0x1f
				}
				return n[0] >> 1 & 0x3f
			}
			// Strip the parameter sets from every keyframe after the first.
			second := -1
			for i := range frames {
				if !frames[i].key || i == 0 {
					continue
				}
				if second < 0 {
					second = i
				}
				var au [][]byte
				for _, n := range frames[i].au {
					if kind, _ := m.paramKind(n); kind < 0 {
						au = append(au, n)
					}
				}
				if len(au) == len(frames[i].au) {
					t.Fatalf("frame %d: the encoder sent no parameter sets", i)
				}
				frames[i].au = au
			}
			if second < 0 {
				t.Fatal("one keyframe only")
			}
			ps := muxAll(t, tc.codec, frames)
			packs := checkPacks(t, tc.codec, ps, frames)

			// The keyframe's pack holds the parameter sets before its slices.
			es := packs[second].es()
			var got []byte
			for _, n := range bytes.Split(es, []byte{0, 0, 0, 1})[1:] {
				got = append(got, typ(n))
			}
			if !bytes.HasPrefix(got, tc.params) {
				t.Fatalf("keyframe NAL unit types %v, want %v first", got, tc.params)
			}

			// Cut at the second keyframe: decodable on its own.
			cut := ps[packOffset(t, ps, second):]
			p := testrig.FFprobePS(t, writeFile(t, "cut.mpg", cut))
			if len(p.FramePTS) != len(frames)-second || p.Width != 320 {
				t.Fatalf("from keyframe %d: ffprobe %+v, want %d frames", second, p, len(frames)-second)
			}
		})
	}
}

// packOffset is the byte offset of the n-th pack header.
func packOffset(t *testing.T, ps []byte, n int) int {
	t.Helper()
	off := 0
	for i := 0; ; i++ {
		j := bytes.Index(ps[off:], []byte{0, 0, 1, packStartCode})
		if j < 0 {
			t.Fatalf("pack %d not found", n)
		}
		if i == n {
			return off + j
		}
		off += j + 4
	}
}

// Frames larger than a PES packet are split; timestamps wrap at 2^33.
func TestMuxLargeFrameAndWrap(t *testing.T) {
	idr := make([]byte, 200_000)
	idr[0] = 0x65 // H.264 IDR
	for i := 1; i < len(idr); i++ {
		idr[i] = byte(i%251) | 0x80 // no start code inside
	}
	sps := []byte{0x67, 0x42, 0x00, 0x1e}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	m, _ := New(H264)
	pts := int64(1<<33 + 1234)
	b, key, err := m.Append(nil, [][]byte{sps, pps, idr}, pts, pts-3600)
	if err != nil || !key {
		t.Fatal(key, err)
	}
	packs, err := demux(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 1 || len(packs[0].pes) != 4 { // 200 kB / 65522 B
		t.Fatalf("%d packs, %d PES", len(packs), len(packs[0].pes))
	}
	p := packs[0]
	if p.pes[0].pts != 1234 || p.pes[0].dts != (pts-3600)&tsMask || p.scr != p.pes[0].dts {
		t.Fatalf("timestamps %+v scr %d", p.pes[0], p.scr)
	}
	if !bytes.Equal(p.es(), annexB([][]byte{sps, pps, idr})) {
		t.Fatal("elementary stream differs")
	}
	for _, x := range p.pes[:3] {
		if 3+10*boolInt(x.hasDTS)+len(x.payload) > maxPESLength {
			t.Fatal("PES too long")
		}
	}
	if _, _, err := m.Append(nil, [][]byte{{}, nil}, 0, 0); err != ErrEmpty {
		t.Fatalf("empty AU: %v", err)
	}
	if Ticks(40*time.Millisecond) != 3600 || Ticks(26*time.Hour) != 26*3600*90000 {
		t.Fatal("Ticks")
	}
	if _, err := New(Codec(0x10)); err == nil {
		t.Fatal("MPEG-4 part 2 accepted")
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// splitFuzz cuts fuzz bytes into NAL units at each 0xFF byte.
func splitFuzz(data []byte) [][]byte {
	return bytes.Split(data, []byte{0xFF})
}

func FuzzMux(f *testing.F) {
	f.Add([]byte{0x67, 1, 2, 0xFF, 0x68, 3, 0xFF, 0x65, 4, 5}, int64(0), int64(0), false)
	f.Add([]byte{0x40, 1, 0xFF, 0x42, 1, 0xFF, 0x44, 1, 0xFF, 0x26, 1, 9}, int64(1<<33+5), int64(-1), true)
	f.Add([]byte{0x09, 0xFF, 0x65, 0xFF, 0xFF, 0x41}, int64(-90000), int64(90000), false)
	f.Fuzz(func(t *testing.T, data []byte, pts, dts int64, hevc bool) {
		codec := H264
		if hevc {
			codec = H265
		}
		m, _ := New(codec)
		var buf []byte
		muxed := false
		for round := range 2 { // the second round sees stored parameter sets
			au := splitFuzz(data)
			if round == 1 {
				au = append([][]byte{{0x09}}, au[min(1, len(au)):]...)
			}
			out, key, err := m.Append(buf[:0], au, pts, dts)
			if err == ErrEmpty {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, []byte{0, 0, 1, packStartCode}) {
				t.Fatalf("output starts % x", out[:min(8, len(out))])
			}
			packs, err := demux(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(packs) != 1 || (packs[0].psm != nil) != (key || !muxed) {
				t.Fatalf("%d packs, key %v", len(packs), key)
			}
			muxed = true
			es := packs[0].es()
			for _, n := range au {
				if len(n) > 0 && !bytes.Contains(es, n) {
					t.Fatal("NAL unit missing from the output")
				}
			}
			buf = out
		}
	})
}
