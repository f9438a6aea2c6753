package clips

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// packet is one video packet as ffprobe reads it from a file.
type packet struct {
	pts, dts float64 // seconds
	key      bool
}

// probePackets lists a file's video packets in file order.
func probePackets(t testing.TB, path string) []packet {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,dts_time,flags",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", path, err)
	}
	var ps []packet
	for _, line := range strings.Fields(string(out)) {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			t.Fatalf("ffprobe packet line %q", line)
		}
		pts, err1 := strconv.ParseFloat(f[0], 64)
		dts, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("ffprobe packet line %q", line)
		}
		ps = append(ps, packet{pts: pts, dts: dts, key: strings.HasPrefix(f[2], "K")})
	}
	return ps
}

// window writes a playback window to a buffer.
func window(t testing.TB, s *Store, camera string, from, to, origin time.Time, keys bool) ([]byte, FragmentInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := s.Fragments(context.Background(), &buf, camera, from, to, origin, keys)
	if err != nil {
		t.Fatalf("fragments %v..%v: %v", from, to, err)
	}
	return buf.Bytes(), info
}

func writeFile(t testing.TB, parts ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "play.mp4")
	if err := os.WriteFile(path, bytes.Join(parts, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFragments records real H.264 and H.265 footage (10 fps, a keyframe
// every 2 s) and plays a window from mid-GOP as fMP4: ffprobe decodes it
// without a word, every frame from the keyframe before the window is
// there, each shown at its wall time minus the origin; keyframes only
// sends just the keyframes, the last lasting to the window's end.
func TestFragments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		clip   func(testing.TB) *sim.Clip
		codec  string
		prefix string
	}{
		{"h264", bursts, "h264", "avc1."},
		{"h265", burstsH265, "hevc", "hvc1."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, testConfig(t, t.TempDir()))
			record(t, recorder(t, s, "gate"), newFeed(tc.clip(t), epoch), epoch.Add(30*time.Second))
			flush(t, s)
			origin := epoch.Add(5 * time.Second)
			from, to := epoch.Add(10550*time.Millisecond), epoch.Add(15550*time.Millisecond)

			b, info := window(t, s, "gate", from, to, origin, false)
			path := writeFile(t, b)
			p := ffprobe(t, path)
			if p.Codec != tc.codec || p.Width != 640 || p.Height != 480 || p.Frames != 56 || !p.FirstKey {
				t.Errorf("ffprobe %+v, want %s 640x480, 56 frames from a keyframe", p, tc.codec)
			}
			if !strings.HasPrefix(info.Codec, tc.prefix) || info.Frames != 56 || info.Width != 640 || info.Height != 480 ||
				!info.Start.Equal(epoch.Add(10*time.Second)) || !info.End.Equal(epoch.Add(15600*time.Millisecond)) || info.Bytes == 0 {
				t.Errorf("info %+v", info)
			}
			ps := probePackets(t, path)
			for i, pk := range ps {
				if want := 5 + float64(i)/10; math.Abs(pk.pts-want) > 0.0006 || math.Abs(pk.dts-want) > 0.0006 {
					t.Fatalf("packet %d at pts %v dts %v, want %.1f s (its wall time minus the origin)", i, pk.pts, pk.dts, want)
				}
			}

			b, info = window(t, s, "gate", from, to, origin, true)
			path = writeFile(t, b)
			p = ffprobe(t, path)
			ps = probePackets(t, path)
			if p.Frames != 3 || info.Frames != 3 || !info.KeyframesOnly || len(ps) != 3 {
				t.Fatalf("keyframes only: %d frames decoded, %d packets, info %+v; want the 3 keyframes", p.Frames, len(ps), info)
			}
			for i, pk := range ps {
				if want := 5 + 2*float64(i); !pk.key || math.Abs(pk.pts-want) > 0.0006 {
					t.Errorf("keyframes only: packet %d key %v at %v, want a keyframe at %v", i, pk.key, pk.pts, want)
				}
			}
			// 10, 12, 14 s and the last to the window's end, 15.6 s: the
			// stream ends at 10.6 s of media time.
			if math.Abs(p.Duration-10.6) > 0.0006 {
				t.Errorf("keyframes only: ends at %.4f s, want 10.6 s", p.Duration)
			}
		})
	}
}

// TestFragmentsConcatenate plays a session as a player appends it: the
// first window starts at the origin (its keyframe lies before it), the
// second where the first ended. The init segment and both windows'
// fragments make one file that decodes whole, in strictly increasing
// decode order, every frame from the origin on at its wall time.
func TestFragmentsConcatenate(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	record(t, recorder(t, s, "gate"), newFeed(bursts(t), epoch), epoch.Add(30*time.Second))
	flush(t, s)
	origin := epoch.Add(5 * time.Second)
	first, a := window(t, s, "gate", origin, epoch.Add(14*time.Second), origin, false)
	second, b := window(t, s, "gate", epoch.Add(14*time.Second), epoch.Add(24*time.Second), origin, false)
	init, _, err := initOf(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(second, init) {
		t.Fatal("the second window does not start with the same init segment")
	}
	if !a.Start.Equal(epoch.Add(4*time.Second)) || !a.End.Equal(b.Start) || a.Frames != 100 || b.Frames != 100 {
		t.Fatalf("windows %+v and %+v: want 4 s..14 s and 14 s..24 s, 100 frames each", a, b)
	}
	path := writeFile(t, first, second[len(init):])
	if p := ffprobe(t, path); p.Frames != 200 {
		t.Fatalf("%d frames decoded, want 200", p.Frames)
	}
	ps := probePackets(t, path)
	if len(ps) != 200 {
		t.Fatalf("%d packets, want 200", len(ps))
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].dts <= ps[i-1].dts {
			t.Fatalf("packet %d decodes at %v after %v", i, ps[i].dts, ps[i-1].dts)
		}
	}
	// The 10 frames before the origin take a tick each from 0; the frame
	// at the origin is shown 10 ticks late, the rest at their times.
	for i := 10; i < len(ps); i++ {
		want := float64(i-10) / 10
		tol := 0.0006
		if i == 10 {
			tol = 0.001
		}
		if math.Abs(ps[i].pts-want) > tol {
			t.Fatalf("frame %d shown at %v, want %.1f s", i, ps[i].pts, want)
		}
	}
	if ps[0].pts != 0 || ps[9].pts > 0.001 {
		t.Errorf("frames before the origin shown at %v..%v, want packed at 0", ps[0].pts, ps[9].pts)
	}
}

// initOf is the init segment of a window of camera gate (for comparing).
func initOf(s *Store) ([]byte, FragmentInfo, error) {
	w, err := s.OpenWindow("gate", epoch.Add(20*time.Second), epoch.Add(21*time.Second), epoch, false)
	if err != nil {
		return nil, FragmentInfo{}, err
	}
	defer w.Close()
	return w.init, w.Info(), nil
}

// TestFragmentsAcrossChange: a window across a picture-size change stops
// there and says where the rest starts; the rest plays at its own size.
func TestFragmentsAcrossChange(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	play(t, r, changeClip(t, 640, 360, false), 0, epoch)
	play(t, r, changeClip(t, 320, 240, false), 10*time.Second, epoch.Add(10*time.Second))
	flush(t, s)
	b, info := window(t, s, "gate", epoch.Add(5*time.Second), epoch.Add(15*time.Second), epoch, false)
	if !info.Next.Equal(epoch.Add(10*time.Second)) || info.Frames != 60 || !info.End.Equal(info.Next) {
		t.Fatalf("info %+v: want frames 4 s..10 s and next at 10 s", info)
	}
	if p := ffprobe(t, writeFile(t, b)); p.Width != 640 || p.Frames != 60 {
		t.Errorf("before the change: %+v", p)
	}
	b, info = window(t, s, "gate", info.Next, epoch.Add(15*time.Second), epoch, false)
	if !info.Next.IsZero() || info.Frames != 50 || info.Width != 320 {
		t.Fatalf("after the change: %+v", info)
	}
	p := ffprobe(t, writeFile(t, b))
	if p.Width != 320 || p.Height != 240 || p.Frames != 50 {
		t.Errorf("after the change: %+v", p)
	}
	if ps := probePackets(t, writeFile(t, b)); len(ps) == 0 || math.Abs(ps[0].pts-10) > 0.0006 {
		t.Errorf("after the change: first frame at %v, want 10 s", ps)
	}
}

// TestFragmentsErrors: no video, an unknown camera, a cut segment (before
// a byte is written), a cancelled context.
func TestFragmentsErrors(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, testConfig(t, dir))
	record(t, recorder(t, s, "gate"), newFeed(bursts(t), epoch), epoch.Add(30*time.Second))
	flush(t, s)
	var buf bytes.Buffer
	ctx := context.Background()
	if _, err := s.Fragments(ctx, &buf, "gate", epoch.Add(time.Hour), epoch.Add(time.Hour+time.Minute), epoch, false); !errors.Is(err, ErrNoVideo) {
		t.Errorf("after the video: %v, want ErrNoVideo", err)
	}
	if _, err := s.Fragments(ctx, &buf, "nope", epoch, epoch.Add(time.Minute), epoch, false); !errors.Is(err, ErrUnknownCamera) {
		t.Errorf("unknown camera: %v, want ErrUnknownCamera", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Fragments(cancelled, &buf, "gate", epoch, epoch.Add(10*time.Second), epoch, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed windows wrote %d bytes", buf.Len())
	}
	s.Close()
	segs := storeSegments(t, dir)
	fi, _ := os.Stat(segs[2])
	os.Truncate(segs[2], fi.Size()/2)
	cut, _ := segmentStart(filepath.Base(segs[2]))
	s = openStore(t, testConfig(t, dir))
	if _, err := s.Fragments(ctx, &buf, "gate", time.Unix(0, cut), time.Unix(0, cut).Add(2*time.Second), epoch, false); !errors.Is(err, ErrDamaged) || buf.Len() != 0 {
		t.Errorf("cut segment: %d bytes, %v; want ErrDamaged before any byte", buf.Len(), err)
	}
}

// BenchmarkFirstByte measures the time from asking for a 10 s window of
// a recorded store to its first byte (the plan, then the init segment).
func BenchmarkFirstByte(b *testing.B) {
	s := openStore(b, testConfig(b, b.TempDir()))
	record(b, recorder(b, s, "gate"), newFeed(bursts(b), epoch), epoch.Add(5*time.Minute))
	flush(b, s)
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		from := epoch.Add(time.Duration(i%25)*10*time.Second + 1500*time.Millisecond)
		start := time.Now()
		w := &firstByte{}
		if _, err := s.Fragments(context.Background(), w, "gate", from, from.Add(10*time.Second), epoch, false); err != nil {
			b.Fatal(err)
		}
		total += w.at.Sub(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-first-byte")
}

type firstByte struct{ at time.Time }

func (w *firstByte) Write(p []byte) (int, error) {
	if w.at.IsZero() {
		w.at = time.Now()
	}
	return len(p), nil
}

// TestFragmentsBFrames plays a window of a stream with B-frames (decode
// order differs from presentation order): decode times rise strictly,
// and every frame is shown at its wall time minus the origin.
func TestFragmentsBFrames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := filepath.Join(footage.SamplesDir, "vtest.avi")
	path, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, "bframes-320x240", []string{"-i", src, "-t", "12", "-an",
		"-vf", "scale=320:240", "-r", "10", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-bf", "2", "-g", "20", "-keyint_min", "20", "-sc_threshold", "0", "-x264-params", "repeat-headers=1"})
	if err != nil {
		t.Fatal(err)
	}
	clip, err := sim.LoadClip(path)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, testConfig(t, t.TempDir()))
	record(t, recorder(t, s, "gate"), newFeed(clip, epoch), epoch.Add(12*time.Second))
	flush(t, s)

	// From the keyframe at 2 s through the frame at 7.0 s, the origin at 1 s.
	b, info := window(t, s, "gate", epoch.Add(3050*time.Millisecond), epoch.Add(7050*time.Millisecond), epoch.Add(time.Second), false)
	out := writeFile(t, b)
	p := ffprobe(t, out)
	ps := probePackets(t, out)
	if p.Frames != info.Frames || len(ps) != info.Frames || p.Frames < 51 || !p.FirstKey {
		t.Fatalf("%d frames decoded, %d packets, info %d; want the 51 of the window (and a reference or two)", p.Frames, len(ps), info.Frames)
	}
	reordered := false
	var shown []float64
	for i, pk := range ps {
		if i > 0 && pk.dts <= ps[i-1].dts {
			t.Fatalf("packet %d decodes at %v after %v", i, pk.dts, ps[i-1].dts)
		}
		reordered = reordered || (i > 0 && pk.pts < ps[i-1].pts)
		if pk.pts < pk.dts {
			t.Fatalf("packet %d shown at %v before it decodes at %v", i, pk.pts, pk.dts)
		}
		shown = append(shown, pk.pts)
	}
	if !reordered {
		t.Fatal("no frame is reordered: the window has no B-frames")
	}
	slices.Sort(shown)
	for i := 0; i <= 50; i++ {
		if want := 1 + float64(i)/10; math.Abs(shown[i]-want) > 0.0006 {
			t.Fatalf("frame %d shown at %v, want %.1f s (all: %v)", i, shown[i], want, shown)
		}
	}
}
