package central

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestGStreamerCameraChangesResolution: a camera reconfigured from
// 640x480 to 320x240 mid-stream (GStreamer's RTSP server playing an
// MPEG-TS whose SPS changes) is recorded without a gap; an export across
// the change comes in two parts (Link rel="next"), each the size ffprobe
// reports and decoded silently by ffmpeg; and no tamper alert is raised.
func TestGStreamerCameraChangesResolution(t *testing.T) {
	big := testrig.Clip(t, footage.BurstsClip{Seconds: 12, FPS: 10, Width: 640, Height: 480, Bursts: []footage.Burst{{Start: 6, End: 9}}})
	small := testrig.Clip(t, footage.BurstsClip{Seconds: 12, FPS: 10, Width: 320, Height: 240, Bursts: []footage.Burst{{Start: 6, End: 9}}})
	dir := t.TempDir()
	list := filepath.Join(dir, "list.txt")
	os.WriteFile(list, []byte(fmt.Sprintf("file '%s'\nfile '%s'\n", big.Path, small.Path)), 0o600)
	ts := filepath.Join(dir, "changes.ts")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-i", list,
		"-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "mpegts", ts).CombinedOutput(); err != nil {
		t.Fatalf("making the stream: %v\n%s", err, out)
	}
	gst := testrig.StartGstCamera(t, testrig.GstOptions{Streams: map[string]string{"cam": ts}})

	s := startServer(t)
	g := &evidenceRig{t: t, s: s}
	g.cfg = edge.Config{
		EdgeID: northID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: edge.CentralConfig{URL: "wss://" + s.EdgeAddr() + wire.EdgePath, Token: northToken, Pin: wire.FormatPin(s.EdgePin()), BackoffMax: config.Duration(500 * time.Millisecond)},
		Cameras: []edge.CameraConfig{{ID: "reconf-cam", Name: "Reconfigured", URL: gst.URL("cam"), Armed: true}},
	}
	if errs := g.cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	g.startEdge()
	edgeAPI := "http://" + g.node.Addr()

	// The 24 s stream plays once; wait for its end to be recorded.
	var tl struct {
		Spans []struct{ Start, End time.Time } `json:"spans"`
		Gaps  []struct{ Start, End time.Time } `json:"gaps"`
	}
	until(t, "the whole stream recorded", 60*time.Second, func() bool {
		resp, err := edgeGet(t, s, northID, edgeAPI+"/api/v1/recordings/reconf-cam")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tl) != nil {
			return false
		}
		return len(tl.Spans) > 0 && tl.Spans[0].End.Sub(tl.Spans[0].Start) > 22*time.Second
	})
	if len(tl.Gaps) != 0 && tl.Gaps[0].Start.Before(tl.Spans[0].Start.Add(23*time.Second)) {
		t.Errorf("a gap at the change: %v", tl.Gaps)
	}
	start := tl.Spans[0].Start
	next := fmt.Sprintf("/api/v1/recordings/reconf-cam/mp4?start=%s&duration=23s", url.QueryEscape(start.Format(time.RFC3339Nano)))
	var sizes []string
	for part := 1; next != ""; part++ {
		resp, err := edgeGet(t, s, northID, edgeAPI+next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %s %s", part, resp.Status, body)
		}
		path := filepath.Join(dir, fmt.Sprintf("part%d.mp4", part))
		os.WriteFile(path, body, 0o600)
		if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("part %d: ffmpeg: %v %s", part, err, out)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
			"stream=width,height,nb_read_frames", "-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatalf("part %d: ffprobe: %v", part, err)
		}
		got := strings.TrimSpace(string(out))
		sizes = append(sizes, got)
		if want := resp.Header.Get("X-Vigil-Width") + "," + resp.Header.Get("X-Vigil-Height"); !strings.HasPrefix(got, want) {
			t.Errorf("part %d: ffprobe says %s, the edge said %s", part, got, want)
		}
		t.Logf("part %d of %s: %s..%s, ffprobe width,height,frames = %s", part, resp.Header.Get("X-Vigil-Parts"),
			resp.Header.Get("X-Vigil-Start"), resp.Header.Get("X-Vigil-End"), got)
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(strings.Split(l, ";")[0], "<"), ">")
		}
		if part > 3 {
			t.Fatal("more parts than changes")
		}
	}
	if len(sizes) != 2 || !strings.HasPrefix(sizes[0], "640,480,") || !strings.HasPrefix(sizes[1], "320,240,") {
		t.Errorf("parts %v, want 640x480 then 320x240", sizes)
	}
	recs, _, err := s.store.Query(AlertQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if strings.HasPrefix(r.Kind, "tamper.") && r.Kind != "tamper.signal_lost" {
			t.Errorf("tamper alert on a reconfigured camera: %s %s", r.Kind, r.Summary)
		}
	}
}
