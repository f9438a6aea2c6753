package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/streams"
)

// TestGStreamerCameraEndToEnd runs a real edge and central against
// cameras served by GStreamer's RTSP server (gst-rtsp-server 1.22 from
// Debian, nobody's code here): H.264 over TCP and UDP, with digest
// authentication, and H.265. Motion alerts carry the time the frame was
// served (to within 100 ms), the recording timeline has no gap where no
// frame was lost, a 60 s export decodes silently in ffmpeg with strictly
// increasing DTS and no jump beyond two frame intervals and is accepted
// by gst-discoverer-1.0 and decoded by GStreamer, and an evidence bundle
// of the camera downloads and verifies.
func TestGStreamerCameraEndToEnd(t *testing.T) {
	clip264, spec := testrig.BurstsClip(t)
	spec265 := footage.DefaultBursts()
	spec265.H265 = true
	clip265 := testrig.Clip(t, spec265)

	plain := testrig.StartGstCamera(t, testrig.GstOptions{Minutes: 3, Trace: []string{"h264"},
		Streams: map[string]string{"h264": clip264.Path, "h265": clip265.Path}})
	digest := testrig.StartGstCamera(t, testrig.GstOptions{Minutes: 3, User: "admin", Password: "Cam-2026!", Digest: true,
		Streams: map[string]string{"h264": clip264.Path}})
	// The shared h264 pipeline starts with its first client: the watcher.
	// served is when the frame at presentation time pts of the looped
	// clip reached a client.
	served := plain.Served(t, "h264", testrig.WatchArrivals(t, plain.URL("h264")))

	s := startGateCentral(t)
	cams := []edge.CameraConfig{
		{ID: "gst-tcp", Name: "GStreamer TCP", URL: plain.URL("h264"), Transport: "tcp", Armed: true},
		{ID: "gst-udp", Name: "GStreamer UDP", URL: plain.URL("h264"), Transport: "udp", Armed: true},
		{ID: "gst-digest", Name: "GStreamer digest", URL: digest.URL("h264"), Armed: true},
		{ID: "gst-h265", Name: "GStreamer H.265", URL: plain.URL("h265"), Armed: true},
	}
	node := startEvidenceEdge(t, s, edge.Config{
		EdgeID: edgeID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central:   s.Uplink(500 * time.Millisecond),
		Cameras:   cams,
		Recording: edge.RecordingConfig{PreRoll: config.Duration(2 * time.Second), PostRoll: config.Duration(3 * time.Second)},
	})
	police := s.SignIn("liaison", central.RolePolice)
	edgeStarted := time.Now()

	// 1. Every camera raises motion alerts timed by the camera's sender
	// reports; on the traced stream each alert is within 100 ms of the
	// moment the first analysed frame of its crossing was served (motion
	// is analysed at 5 fps: that frame is at most 200 ms into the crossing).
	alerts := map[string][]central.Record{}
	rig.Until(t, "two motion alerts from every camera", 60*time.Second, func() bool {
		clear(alerts)
		for _, r := range s.Alerts(500) {
			if r.Kind == "motion" {
				alerts[r.Source] = append(alerts[r.Source], r)
			}
		}
		for _, c := range cams {
			if len(alerts[c.ID]) < 2 {
				return false
			}
		}
		return true
	})
	// Frames the analyser shed because it fell behind (the box starved of
	// CPU, e.g. every package of make test at once under -race): then the
	// event may start later in the crossing; its time must still name its
	// frame within 100 ms.
	shed := edgeCounter(t, s, "http://"+node.Addr()+"/metrics", "vigil_camera_frames_dropped_total")
	starved := testrig.LoadAverage() > float64(runtime.NumCPU())
	for _, c := range cams {
		latest := 600 * time.Millisecond
		if shed[c.ID] > 0 || starved {
			latest = time.Duration((spec.Bursts[0].End - spec.Bursts[0].Start) * float64(time.Second))
			t.Logf("%s: the analyser shed %v frames, load average %.1f on %d CPUs: the event may start up to %v into the crossing",
				c.ID, shed[c.ID], testrig.LoadAverage(), runtime.NumCPU(), latest)
		}
		for _, a := range alerts[c.ID] {
			if a.TimeSource != streams.TimeRTCP {
				t.Errorf("%s: alert %s timed by %q, want rtcp", c.ID, a.ID, a.TimeSource)
			}
			if a.Time.After(a.ReceivedAt) {
				t.Errorf("%s: alert time %v is after central received it (%v)", c.ID, a.Time, a.ReceivedAt)
			}
			if c.URL != plain.URL("h264") {
				continue
			}
			// The crossing this alert belongs to: the latest that began
			// before it; and the frame it names: the one served nearest.
			var best time.Duration = -1
			var pts time.Duration
			for loop := 0; loop < 5; loop++ {
				for _, b := range spec.Bursts {
					p := time.Duration((float64(loop)*spec.Seconds + b.Start) * float64(time.Second))
					at, ok := served(p)
					if !ok {
						continue
					}
					if d := a.Time.Sub(at); d > -100*time.Millisecond && (best < 0 || d < best) {
						best, pts = d, p
					}
				}
			}
			if best < 0 {
				t.Errorf("%s: alert %s at %v belongs to no crossing", c.ID, a.ID, a.Time)
				continue
			}
			frame, off := pts, time.Duration(-1)
			for f := pts; f <= pts+time.Second; f += 100 * time.Millisecond {
				if at, ok := served(f); ok && (off < 0 || a.Time.Sub(at).Abs() < off) {
					frame, off = f, a.Time.Sub(at).Abs()
				}
			}
			t.Logf("%s: alert %s names the frame %v into its crossing, and is %v from the moment that frame was served",
				c.ID, a.ID, frame-pts, off.Round(time.Millisecond))
			// Analysed at 5 fps with persistence: the event starts within
			// three analysed frames (600 ms) of the crossing's start. The
			// sampling phase is random per run: when the first analysed
			// frame catches only the object's edge entering, persistence
			// confirms on the next two (seen: 500 ms in one run of many).
			// What this test holds tight is the time: within 100 ms of the
			// frame the alert names.
			if off > 100*time.Millisecond || frame-pts > latest {
				t.Errorf("%s: alert time %v is %v from the frame it names (%v into the crossing)", c.ID, a.Time, off, frame-pts)
			}
		}
	}

	// 2. Let a minute and more be recorded, then: no gap in the timeline.
	rig.Until(t, "70 s of recording", 120*time.Second, func() bool { return time.Since(edgeStarted) > 75*time.Second })
	edgeAPI := "http://" + node.Addr()
	for _, c := range cams {
		var tl struct {
			Spans []struct{ Start, End time.Time } `json:"spans"`
			Gaps  []struct{ Start, End time.Time } `json:"gaps"`
		}
		s.EdgeJSON(edgeID, edgeAPI+"/api/v1/recordings/"+c.ID, &tl)
		if len(tl.Spans) != 1 || len(tl.Gaps) != 0 {
			t.Errorf("%s: timeline has %d spans and gaps %v, want one span and no gap (no frame was lost)", c.ID, len(tl.Spans), tl.Gaps)
			continue
		}
		t.Logf("%s: one span %s..%s (%v)", c.ID, tl.Spans[0].Start.Format("15:04:05.000"), tl.Spans[0].End.Format("15:04:05.000"), tl.Spans[0].End.Sub(tl.Spans[0].Start).Round(time.Millisecond))
	}

	// 3. A 60 s export of each camera, judged by ffmpeg, ffprobe and GStreamer.
	for _, c := range cams {
		var tl struct {
			Spans []struct{ Start, End time.Time } `json:"spans"`
		}
		s.EdgeJSON(edgeID, edgeAPI+"/api/v1/recordings/"+c.ID, &tl)
		if len(tl.Spans) == 0 {
			t.Fatalf("%s: nothing recorded", c.ID)
		}
		from := tl.Spans[0].End.Add(-63 * time.Second)
		path := filepath.Join(t.TempDir(), c.ID+".mp4")
		u := fmt.Sprintf("%s/api/v1/recordings/%s/mp4?start=%s&duration=60s", edgeAPI, c.ID, url.QueryEscape(from.Format(time.RFC3339Nano)))
		resp, err := s.EdgeGet(edgeID, u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: export: %s %s", c.ID, resp.Status, body)
		}
		os.WriteFile(path, body, 0o600)
		judgeExport(t, c.ID, path, 60*time.Second, 100*time.Millisecond)
	}

	// 4. An evidence bundle of the TCP camera downloads and verifies.
	var tl struct {
		Spans []struct{ Start, End time.Time } `json:"spans"`
	}
	s.EdgeJSON(edgeID, edgeAPI+"/api/v1/recordings/gst-tcp", &tl)
	to := tl.Spans[0].End.Add(-2 * time.Second)
	from := to.Add(-20 * time.Second)
	body := map[string]any{"case_number": "GST-1", "reason": "interoperability: GStreamer camera",
		"cameras": []map[string]string{{"edge": edgeID, "camera": "gst-tcp"}}, "from": from, "to": to}
	resp, b := police.Do(http.MethodPost, "/api/v1/evidence/requests", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create request: %d %s", resp.StatusCode, b)
	}
	var r central.EvidenceRequest
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	waitEvidence(t, police, r.ID, central.RetrievalReady, 90*time.Second)
	resp, zb := police.Do(http.MethodGet, "/api/v1/evidence/requests/"+r.ID+"/bundle.zip", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bundle.zip: %d %s", resp.StatusCode, zb)
	}
	if _, err := evidence.Verify(context.Background(), bytes.NewReader(zb), int64(len(zb)), s.EvidencePublicKey()); err != nil {
		t.Fatalf("the bundle does not verify: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".mp4") {
			rc, _ := f.Open()
			data, _ := io.ReadAll(rc)
			rc.Close()
			path := filepath.Join(t.TempDir(), "bundle.mp4")
			os.WriteFile(path, data, 0o600)
			judgeExport(t, "bundle "+f.Name, path, to.Sub(from), 100*time.Millisecond)
		}
	}
	t.Logf("bundle %s: %d bytes, verified", r.ID, len(zb))
}

// edgeCounter reads one per-camera counter family from an edge's /metrics.
func edgeCounter(t *testing.T, s *rig.Central, u, family string) map[string]float64 {
	t.Helper()
	resp, err := s.EdgeGet(edgeID, u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, family+`{camera="`)
		if !ok {
			continue
		}
		cam, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		out[cam] = v
	}
	return out
}

// judgeExport checks an MP4 as three independent tools see it: ffmpeg
// decodes it without a word, its decode times (ffprobe) increase strictly
// and never jump more than two frame intervals, GStreamer's discoverer
// accepts it and GStreamer decodes it to the end.
func judgeExport(t *testing.T, name, path string, want, frame time.Duration) {
	t.Helper()
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("%s: ffmpeg -v error: %v\n%s", name, err, out)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=dts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("%s: ffprobe: %v", name, err)
	}
	var dts []time.Duration
	for _, l := range strings.Fields(string(out)) {
		f, err := strconv.ParseFloat(strings.Trim(l, ","), 64)
		if err != nil {
			t.Fatalf("%s: dts %q: %v", name, l, err)
		}
		dts = append(dts, time.Duration(f*float64(time.Second)))
	}
	var worst time.Duration
	for i := 1; i < len(dts); i++ {
		step := dts[i] - dts[i-1]
		if step <= 0 {
			t.Errorf("%s: DTS %v after %v (packet %d): not strictly increasing", name, dts[i], dts[i-1], i)
		}
		worst = max(worst, step)
	}
	if worst > 2*frame {
		t.Errorf("%s: DTS jumps %v, more than two frame intervals", name, worst)
	}
	// An export starts at the keyframe at or before the asked start: up
	// to one GOP (2 s in the test footage) more than asked for.
	span := dts[len(dts)-1] - dts[0] + frame
	if span < want-2*frame || span > want+2*time.Second+2*frame {
		t.Errorf("%s: %v of video, want about %v", name, span, want)
	}
	disc, err := exec.Command("gst-discoverer-1.0", path).CombinedOutput()
	if err != nil || !strings.Contains(string(disc), "video #") {
		t.Errorf("%s: gst-discoverer-1.0: %v\n%s", name, err, disc)
	}
	dec, err := exec.Command("gst-launch-1.0", "-q", "filesrc", "location="+path, "!", "decodebin", "!", "fakesink").CombinedOutput()
	if err != nil {
		t.Errorf("%s: GStreamer cannot decode it: %v\n%s", name, err, dec)
	}
	t.Logf("%s: %d frames over %v, largest DTS step %v; ffmpeg silent, gst-discoverer and GStreamer decode accept it", name, len(dts), span.Round(time.Millisecond), worst)
}

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

	s := startGateCentral(t)
	node := startEvidenceEdge(t, s, edge.Config{
		EdgeID: edgeID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: s.Uplink(500 * time.Millisecond),
		Cameras: []edge.CameraConfig{{ID: "reconf-cam", Name: "Reconfigured", URL: gst.URL("cam"), Armed: true}},
	})
	edgeAPI := "http://" + node.Addr()

	// The 24 s stream plays once; wait for its end to be recorded.
	var tl struct {
		Spans []struct{ Start, End time.Time } `json:"spans"`
		Gaps  []struct{ Start, End time.Time } `json:"gaps"`
	}
	rig.Until(t, "the whole stream recorded", 60*time.Second, func() bool {
		resp, err := s.EdgeGet(edgeID, edgeAPI+"/api/v1/recordings/reconf-cam")
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
		resp, err := s.EdgeGet(edgeID, edgeAPI+next)
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
	for _, r := range s.Alerts(100) {
		if strings.HasPrefix(r.Kind, "tamper.") && r.Kind != "tamper.signal_lost" {
			t.Errorf("tamper alert on a reconfigured camera: %s %s", r.Kind, r.Summary)
		}
	}
}

// startEvidenceEdge starts the edge of an evidence test and waits until
// central shows it connected.
func startEvidenceEdge(t *testing.T, s *rig.Central, cfg edge.Config) *edge.Node {
	t.Helper()
	node := rig.StartEdge(t, cfg, edge.Options{UplinkBackoffMin: 100 * time.Millisecond, CameraBackoffMax: 2 * time.Second})
	rig.Until(t, "edge connected", 10*time.Second, func() bool { return s.Online(cfg.EdgeID) })
	return node
}

// waitEvidence polls an evidence request (as its requester) until its
// status is want (failing on "failed" unless that is wanted), logging
// every status it passes.
func waitEvidence(t *testing.T, b *rig.Browser, id, want string, within time.Duration) central.EvidenceRequest {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		resp, body := b.Do(http.MethodGet, "/api/v1/evidence/requests/"+id, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("get request: %d %s", resp.StatusCode, body)
		}
		var r central.EvidenceRequest
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if s := r.Status + " " + r.Items[0].Detail; s != last {
			t.Logf("%s: %s (%d%%, %d/%d chunks)", id, s, r.Items[0].Percent, r.Items[0].ChunksVerified, r.Items[0].ChunksTotal)
			last = s
		}
		if r.Status == want {
			return r
		}
		if r.Status == central.RetrievalFailed {
			t.Fatalf("%s failed: %s", id, r.Items[0].Detail)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after %v, want %s", id, r.Status, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
