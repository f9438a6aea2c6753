package av

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{H264: "H264", H265: "H265", 7: "Codec(7)"} {
		if got := c.String(); got != want {
			t.Errorf("Codec(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func nalType(c Codec, nalu []byte) int {
	if c == H264 {
		return int(nalu[0] & 0x1f)
	}
	return int(nalu[0]>>1) & 0x3f
}

func TestReadFileMatchesFFprobe(t *testing.T) {
	for _, tc := range []struct {
		clip  string
		codec Codec
		w, h  int
	}{
		{"h264_320.mp4", H264, 320, 240},
		{"h264_320.mkv", H264, 320, 240},
		{"h264_320.avi", H264, 320, 240},
		{"h264_320.h264", H264, 320, 240},
		{"h264_720.mp4", H264, 1280, 720},
		{"h265_320.mp4", H265, 320, 240},
		{"h265_320.mkv", H265, 320, 240},
		{"h265_320.h265", H265, 320, 240},
		{"vtest.mp4", H264, 768, 576},
	} {
		t.Run(tc.clip, func(t *testing.T) {
			path := clip(t, tc.clip)
			want := ffprobe(t, path)
			info, pkts, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Codec != tc.codec || info.Width != tc.w || info.Height != tc.h ||
				info.Width != want.Width || info.Height != want.Height {
				t.Errorf("info %v %dx%d, want %v %dx%d (ffprobe %dx%d)",
					info.Codec, info.Width, info.Height, tc.codec, tc.w, tc.h, want.Width, want.Height)
			}
			if info.Frames != want.Packets || len(pkts) != want.Packets {
				t.Errorf("Frames %d, packets %d; ffprobe counted %d", info.Frames, len(pkts), want.Packets)
			}
			if math.Abs(info.FPS-want.FPS) > 1e-6 {
				t.Errorf("FPS %v, ffprobe %v", info.FPS, want.FPS)
			}
			// Last PTS plus one frame; ffmpeg muxes this AVI with a frame
			// rate twice the real one, so take the frame from the PTS.
			wantDur := time.Duration(float64(len(pkts)) / want.FPS * float64(time.Second))
			if n := len(want.PTS); n > 1 && !math.IsNaN(want.PTS[0]) {
				wantDur = time.Duration((want.PTS[n-1] - want.PTS[0]) * float64(n) / float64(n-1) * float64(time.Second))
			}
			if d := info.Duration - wantDur; d < -2*time.Millisecond || d > 2*time.Millisecond {
				t.Errorf("Duration %v, want %v", info.Duration, wantDur)
			}

			// Parameter sets of the right types, without start codes.
			sets := map[string][]byte{"SPS": info.SPS, "PPS": info.PPS}
			wantTypes := map[string]int{"SPS": 7, "PPS": 8}
			if tc.codec == H265 {
				sets["VPS"] = info.VPS
				wantTypes = map[string]int{"VPS": 32, "SPS": 33, "PPS": 34}
			} else if info.VPS != nil {
				t.Errorf("H.264 file has a VPS")
			}
			for name, nalu := range sets {
				if len(nalu) < 2 || nalType(tc.codec, nalu) != wantTypes[name] {
					t.Errorf("%s = %x, want NAL type %d", name, nalu, wantTypes[name])
				}
			}

			if len(pkts) == 0 || !pkts[0].Key || pkts[0].PTS != 0 {
				t.Fatalf("first packet must be a keyframe at 0")
			}
			ptsOrigin := want.PTS[0]
			for i, p := range pkts {
				if i > 0 && p.PTS <= pkts[i-1].PTS {
					t.Errorf("packet %d: PTS %v not after %v", i, p.PTS, pkts[i-1].PTS)
				}
				if i < len(want.PTS) {
					// Raw streams carry no timestamps: one frame per AU.
					sec := want.PTS[i] - ptsOrigin
					if math.IsNaN(sec) {
						sec = float64(i) / want.FPS
					}
					wantPTS := time.Duration(sec * float64(time.Second))
					if d := p.PTS - wantPTS; d < -time.Millisecond || d > time.Millisecond {
						t.Errorf("packet %d: PTS %v, ffprobe %v", i, p.PTS, wantPTS)
					}
				}
				if wantKey := i%15 == 0; p.Key != wantKey {
					t.Errorf("packet %d: Key %v, want %v (GOP 15)", i, p.Key, wantKey)
				}
				if i < len(want.Keys) && want.Keys[i] != p.Key {
					t.Errorf("packet %d: Key %v, ffprobe says %v", i, p.Key, want.Keys[i])
				}
				if len(p.AU) == 0 {
					t.Fatalf("packet %d: no NAL units", i)
				}
				seen := map[int]bool{}
				for _, nalu := range p.AU {
					if len(nalu) == 0 || bytes.HasPrefix(nalu, []byte{0, 0, 1}) || bytes.HasPrefix(nalu, []byte{0, 0, 0, 1}) {
						t.Fatalf("packet %d: bad NAL unit %x", i, nalu[:min(len(nalu), 8)])
					}
					typ := nalType(tc.codec, nalu)
					for _, set := range wantTypes {
						if typ == set && seen[typ] {
							t.Errorf("packet %d: parameter set type %d repeated", i, typ)
						}
					}
					seen[typ] = true
				}
			}
		})
	}
}

func TestOpenFileStreams(t *testing.T) {
	for _, name := range []string{"h264_320.mp4", "h265_320.mkv", "h264_320.h264"} {
		t.Run(name, func(t *testing.T) {
			path := clip(t, name)
			whole, all, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info := f.Info()
			// MP4 knows its frame count and duration up front; MKV and raw
			// streams do not.
			if strings.HasSuffix(name, ".mp4") {
				if info.Frames != len(all) || info.Duration != whole.Duration {
					t.Errorf("Info Frames %d Duration %v, want %d %v", info.Frames, info.Duration, len(all), whole.Duration)
				}
			} else if info.Frames != 0 && info.Frames != len(all) {
				t.Errorf("Info Frames %d, want 0 or %d", info.Frames, len(all))
			}
			if d := info.Duration - whole.Duration; info.Duration != 0 && (d < -50*time.Millisecond || d > 50*time.Millisecond) {
				t.Errorf("Info Duration %v, want 0 or about %v", info.Duration, whole.Duration)
			}
			t.Logf("Info: %d frames, %v", info.Frames, info.Duration)
			if !bytes.Equal(info.SPS, whole.SPS) || !bytes.Equal(info.PPS, whole.PPS) {
				t.Errorf("parameter sets differ from ReadFile's")
			}
			for i := 0; ; i++ {
				p, err := f.Next()
				if err == io.EOF {
					if i != len(all) {
						t.Fatalf("EOF after %d packets, want %d", i, len(all))
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(all) || p.PTS != all[i].PTS || p.Key != all[i].Key || len(p.AU) != len(all[i].AU) {
					t.Fatalf("packet %d differs from ReadFile's", i)
				}
			}
			if _, err := f.Next(); err != io.EOF {
				t.Errorf("Next after EOF: %v", err)
			}
			f.Close()
			f.Close()
			if _, err := f.Next(); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Close: %v", err)
			}
		})
	}
}

// Files with B-frames come back in decode order with true PTS.
func TestReadFileBFrames(t *testing.T) {
	info, pkts := readClip(t, "h264_bf.mp4")
	reordered := false
	var pts []time.Duration
	for i, p := range pkts {
		if i > 0 && p.PTS < pkts[i-1].PTS {
			reordered = true
		}
		pts = append(pts, p.PTS)
	}
	if !reordered {
		t.Fatal("expected PTS out of decode order")
	}
	slices.Sort(pts)
	for i, p := range pts {
		want := time.Duration(float64(i) / info.FPS * float64(time.Second))
		if d := p - want; d < -time.Millisecond || d > time.Millisecond {
			t.Fatalf("sorted PTS %d = %v, want %v", i, p, want)
		}
	}

	// The decoder holds reordered pictures back; Drain releases them.
	d := newDecoder(t, H264)
	n := 0
	for i, p := range pkts {
		got, err := d.Decode(p.AU)
		if err != nil {
			t.Fatalf("AU %d: %v", i, err)
		}
		if got {
			n++
		}
	}
	for {
		got, err := d.Drain()
		if err != nil {
			t.Fatal(err)
		}
		if !got {
			break
		}
		n++
	}
	if n != len(pkts) {
		t.Errorf("%d pictures from %d AUs", n, len(pkts))
	}
	// The decoder is usable again after draining.
	if got, err := d.Decode(pkts[0].AU); err != nil || !got && n == 0 {
		t.Errorf("decode after drain: %v %v", got, err)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mp4")
	b := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(b)
	if err := os.WriteFile(garbage, b, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		path     string
		is       error
		contains []string
	}{
		{"missing", filepath.Join(dir, "nope.mp4"), fs.ErrNotExist, []string{"nope.mp4"}},
		// MPEG-4 part 2 (DivX 3) in AVI.
		{"mpeg4 avi", vtestAVI, ErrUnsupportedCodec, []string{"msmpeg4v3", "MPEG-4 part 2", "vtest.avi"}},
		{"audio only", clip(t, "audio.m4a"), ErrNoVideo, []string{"audio.m4a"}},
		{"garbage", garbage, nil, []string{"garbage.mp4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, pkts, err := ReadFile(tc.path)
			if err == nil || pkts != nil {
				t.Fatalf("err=%v, %d packets", err, len(pkts))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			t.Log(err)
		})
	}
}

func TestSplitAnnexB(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want [][]byte
	}{
		{nil, nil},
		{[]byte{1, 2, 3}, nil},
		{[]byte{0, 0, 1, 9, 0, 0, 0, 1, 7, 0, 0, 3, 0, 0, 1, 5, 0, 0}, [][]byte{{9}, {7, 0, 0, 3}, {5}}},
		{[]byte{0, 0, 0, 0, 1, 6, 6, 0, 0, 1}, [][]byte{{6, 6}}},
	} {
		got := splitAnnexB(tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("splitAnnexB(%x) = %x, want %x", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], tc.want[i]) {
				t.Errorf("splitAnnexB(%x) = %x, want %x", tc.in, got, tc.want)
			}
		}
	}
}
