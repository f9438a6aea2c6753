package clips

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// TestExport records real H.264 and H.265 camera footage, exports ranges
// (one starting mid-GOP) and checks them with ffprobe: codec, size, frame
// count, duration to the frame, a keyframe first, and a bitstream that
// decodes without an error.
func TestExport(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clip  func(testing.TB) *sim.Clip
		codec string
	}{
		{"h264", bursts, "h264"},
		{"h265", burstsH265, "hevc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clip := tc.clip(t)
			s := openStore(t, testConfig(t, t.TempDir()))
			r := recorder(t, s, "gate")
			record(t, r, newFeed(clip, epoch), epoch.Add(60*time.Second))
			flush(t, s)

			// 10 fps with a keyframe every 2 s: a range starting at 10.55 s
			// starts at the keyframe at 10 s and ends with the frame at
			// 15.5 s, which lasts until 15.6 s.
			for _, rg := range []struct {
				name          string
				from, to      time.Duration
				frames        int
				first, length time.Duration
			}{
				{"mid-GOP", 10550 * time.Millisecond, 15550 * time.Millisecond, 56, 10 * time.Second, 5600 * time.Millisecond},
				{"everything", -time.Minute, 2 * time.Minute, 600, 0, 60 * time.Second},
				{"across the clip's loop", 38 * time.Second, 42 * time.Second, 40, 38 * time.Second, 4 * time.Second},
			} {
				path, info := exportFile(t, s, "gate", epoch.Add(rg.from), epoch.Add(rg.to))
				p := ffprobe(t, path)
				if p.Codec != tc.codec || p.Width != 640 || p.Height != 480 {
					t.Errorf("%s: ffprobe %s %dx%d, want %s 640x480", rg.name, p.Codec, p.Width, p.Height, tc.codec)
				}
				if p.Frames != rg.frames || info.Frames != rg.frames {
					t.Errorf("%s: %d frames (info %d), want %d", rg.name, p.Frames, info.Frames, rg.frames)
				}
				if math.Abs(p.Duration-rg.length.Seconds()) > 0.0005 {
					t.Errorf("%s: duration %.4f s, want %.4f s", rg.name, p.Duration, rg.length.Seconds())
				}
				if !p.FirstKey {
					t.Errorf("%s: first frame is not a keyframe", rg.name)
				}
				if want := epoch.Add(rg.first); !info.Start.Equal(want) {
					t.Errorf("%s: starts at %v, want the keyframe at %v", rg.name, info.Start, want)
				}
			}
		})
	}
}

// TestExportErrors: no video, unknown camera, a range too long.
func TestExportErrors(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	record(t, r, newFeed(bursts(t), epoch), epoch.Add(10*time.Second))
	flush(t, s)
	var buf bytes.Buffer
	if _, err := s.Export(context.Background(), &buf, "gate", epoch.Add(time.Hour), epoch.Add(time.Hour+time.Minute)); !errors.Is(err, ErrNoVideo) {
		t.Errorf("export after the video: %v, want ErrNoVideo", err)
	}
	if _, err := s.Export(context.Background(), &buf, "nope", epoch, epoch.Add(time.Minute)); !errors.Is(err, ErrUnknownCamera) {
		t.Errorf("export of an unknown camera: %v, want ErrUnknownCamera", err)
	}
	if _, err := s.Export(context.Background(), &buf, "gate", epoch, epoch.Add(3*time.Hour)); !errors.Is(err, ErrTooLong) {
		t.Errorf("export of 3 h: %v, want ErrTooLong", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed exports wrote %d bytes", buf.Len())
	}
}

// TestThumbnail decodes the frame at an instant in the middle of a GOP.
func TestThumbnail(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	record(t, r, newFeed(bursts(t), epoch), epoch.Add(10*time.Second))
	flush(t, s)

	at := epoch.Add(3270 * time.Millisecond)
	th, err := s.Thumbnail("gate", at, 320)
	if err != nil {
		t.Fatal(err)
	}
	if want := epoch.Add(3200 * time.Millisecond); !th.Time.Equal(want) {
		t.Errorf("frame at %v, want %v", th.Time, want)
	}
	img, err := jpeg.Decode(bytes.NewReader(th.JPEG))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
		t.Errorf("thumbnail %v, want 320x240", b)
	}
	if _, err := s.Thumbnail("gate", epoch.Add(time.Hour), 0); !errors.Is(err, ErrNoVideo) {
		t.Errorf("thumbnail after the video: %v, want ErrNoVideo", err)
	}
}

// TestExportBFrames exports a stream with B-frames (decode order differs
// from presentation order): every frame of the range must be shown at
// its camera timestamp, in order, and decode cleanly.
func TestExportBFrames(t *testing.T) {
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
	reordered := false
	for i := 1; i < len(clip.Packets); i++ {
		reordered = reordered || clip.Packets[i].PTS < clip.Packets[i-1].PTS
	}
	if !reordered {
		t.Fatal("the clip has no B-frames")
	}
	s := openStore(t, testConfig(t, t.TempDir()))
	record(t, recorder(t, s, "gate"), newFeed(clip, epoch), epoch.Add(12*time.Second))
	flush(t, s)

	// From the keyframe at 2 s through the frame at 7.0 s.
	out, _ := exportFile(t, s, "gate", epoch.Add(3050*time.Millisecond), epoch.Add(7050*time.Millisecond))
	p := ffprobe(t, out)
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	var shown []float64
	for _, f := range strings.Fields(string(b)) {
		v, _ := strconv.ParseFloat(f, 64)
		shown = append(shown, v)
	}
	for i := 0; i <= 50; i++ {
		if i >= len(shown) || math.Abs(shown[i]-float64(i)/10) > 0.0006 {
			t.Fatalf("frame %d shown at %v, want %.1f s (all: %v)", i, shown[min(i, len(shown)-1)], float64(i)/10, shown)
		}
	}
	if p.Frames < 51 || p.Frames > 53 || !p.FirstKey {
		t.Errorf("%d frames, first key %v; want the 51 of the range (and a reference or two)", p.Frames, p.FirstKey)
	}
}
