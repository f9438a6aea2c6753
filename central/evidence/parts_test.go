package evidence

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// recordChangeAndExport records a camera reconfigured mid-stream
// (640x360 H.264 for 10 s, then 320x240 H.265) into a real clip store
// and exports 5 s before the change to 5 s after: one MP4 per part, as
// the edge sends them for a retrieval.
func recordChangeAndExport(t *testing.T, camera string) []exported {
	t.Helper()
	clip := func(w, h int, h265 bool) *sim.Clip {
		return testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: w, Height: h, Bursts: []footage.Burst{{Start: 2, End: 6}}, H265: h265})
	}
	dir := t.TempDir()
	fp := clips.Footprint{MemTableSize: 1 << 20, BlockCacheSize: 1 << 20, IndexCacheSize: 1 << 20, ValueLogFileSize: 1 << 20}
	s, err := clips.Open(clips.Config{Dir: filepath.Join(dir, "store"), Footprint: fp, MinFreeBytes: fp.Reserve(),
		BucketDuration: 10 * time.Second, FlushInterval: 100 * time.Millisecond, Registerer: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Recorder(camera)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []*sim.Clip{clip(640, 360, false), clip(320, 240, true)} {
		pts0 := time.Duration(i) * 10 * time.Second
		for _, p := range c.Packets {
			n := 0
			for _, nalu := range p.AU {
				n += 4 + len(nalu)
			}
			for r.Pending() > 1<<20 {
				time.Sleep(time.Millisecond)
			}
			r.Write(streams.AccessUnit{Codec: c.Info.Codec, NALUs: p.AU, PTS: pts0 + p.PTS, Time: epoch.Add(pts0 + p.PTS),
				TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: n})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	req := Range{Start: epoch.Add(5 * time.Second), End: epoch.Add(15 * time.Second)}
	var out []exported
	for from := req.Start; ; {
		path := filepath.Join(dir, fmt.Sprintf("part%d.mp4", len(out)+1))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Export(ctx, f, camera, from, req.End)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, withSheet(t, exported{path: path, info: info, req: req}, camera))
		if info.Next.IsZero() {
			return out
		}
		from = info.Next
	}
}

// A camera that changed picture size and codec within the range has one
// entry per part, each with its own MP4, actual range, codec and size;
// the bundle verifies, names the files <camera>.mp4 and <camera>-2.mp4,
// and README.txt says which part each is. The same part listed twice
// (overlapping ranges) is refused.
func TestOneCameraInParts(t *testing.T) {
	f := getFixture(t)
	parts := recordChangeAndExport(t, "north-gate")
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	var cams []Camera
	for _, p := range parts {
		cams = append(cams, testCamera(p, "north-gate", "North gate, inside"))
	}
	out := filepath.Join(t.TempDir(), "bundle.zip")
	zf, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(ctx, zf, testRequest(t, f.key, cams...))
	zf.Close()
	if err != nil {
		t.Fatal(err)
	}
	res, err := VerifyFile(ctx, out, pub(f.key))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	t.Log(Summary(res))
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	want := []struct {
		video, codec, probe string
		w, h, frames        int
		start, end          time.Duration
	}{
		{"video/north-gate.mp4", "h264", "h264", 640, 360, 60, 4 * time.Second, 10 * time.Second},
		{"video/north-gate-2.mp4", "h265", "hevc", 320, 240, 50, 10 * time.Second, 15 * time.Second},
	}
	m := res.Manifest
	if len(m.Cameras) != len(want) {
		t.Fatalf("%d camera entries, want %d", len(m.Cameras), len(want))
	}
	for i, w := range want {
		c := m.Cameras[i]
		if c.Video != w.video || c.Codec != w.codec || c.Width != w.w || c.Height != w.h || c.Frames != w.frames ||
			!c.Actual.Start.Equal(epoch.Add(w.start)) || !c.Actual.End.Equal(epoch.Add(w.end)) || !c.Requested.Start.Equal(parts[0].req.Start) {
			t.Errorf("entry %d: %s %s %dx%d %d frames %s..%s, want %+v", i, c.Video, c.Codec, c.Width, c.Height, c.Frames, ts(c.Actual.Start), ts(c.Actual.End), w)
		}
		path := filepath.Join(t.TempDir(), "v.mp4")
		if err := os.WriteFile(path, member(t, zr, c.Video), 0o644); err != nil {
			t.Fatal(err)
		}
		if p := ffprobe(t, path); p.Codec != w.probe || p.Width != w.w || p.Height != w.h || p.Frames != w.frames || !p.FirstKey {
			t.Errorf("%s: ffprobe %+v, want %s %dx%d, %d frames", c.Video, p, w.probe, w.w, w.h, w.frames)
		}
		if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s: ffmpeg decoding: %v: %s", c.Video, err, out)
		}
	}
	readme := string(member(t, zr, ReadmeName))
	for _, s := range []string{"part 1 of 2", "part 2 of 2", "video/north-gate-2.mp4", "320×240"} {
		if !strings.Contains(readme, s) {
			t.Errorf("README.txt lacks %q", s)
		}
	}

	// The same part twice: its video overlaps itself.
	var buf bytes.Buffer
	if _, err := Build(ctx, &buf, testRequest(t, f.key, cams[0], cams[0])); err == nil || !strings.Contains(err.Error(), "parts follow one another") {
		t.Errorf("the same part twice: %v, want it refused", err)
	}
	// Parts out of order.
	if _, err := Build(ctx, &buf, testRequest(t, f.key, cams[1], cams[0])); err == nil {
		t.Error("parts out of order: built")
	}
	// The same camera ID on another edge is another camera.
	other := cams[0]
	other.EdgeID = "edge-south-1"
	if _, err := Build(ctx, &buf, testRequest(t, f.key, cams[0], other)); err != nil {
		t.Errorf("the same camera ID on two edges: %v", err)
	}
}
