package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// TestPlaybackEndToEnd: simulated camera → edge (recording) → central →
// a guard's playback session. A window of the last seconds is the
// camera's H.264 as fMP4 that ffprobe decodes, with as many frames as
// X-Vigil-Frames says; keyframes=1 gives keyframes only; the timeline
// shows what was recorded; the audit log holds the guard's one entry for
// the session with its camera and range.
func TestPlaybackEndToEnd(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	c := startGateCentral(t)
	node := rig.StartEdge(t, edge.Config{
		EdgeID: edgeID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: c.Uplink(time.Second),
		Cameras: []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate")}},
	}, edge.Options{UplinkBackoffMin: 100 * time.Millisecond})
	rig.Until(t, "edge connected to central", 10*time.Second, func() bool { return node.Uplink().Connected() })
	began := time.Now()
	time.Sleep(15 * time.Second) // recording

	guard := c.SignIn("gina", central.RoleGuard)
	to := time.Now().Add(-2 * time.Second).UTC()
	from := to.Add(-10 * time.Second)
	resp, b := guard.Do(http.MethodPost, "/api/v1/playback/sessions", map[string]any{
		"cameras": []map[string]string{{"edge": edgeID, "camera": "gate-cam"}}, "from": from, "to": to})
	var sess central.PlaybackSession
	if err := json.Unmarshal(b, &sess); err != nil || resp.StatusCode != http.StatusCreated || !sess.Origin.Equal(from) || len(sess.Cameras) != 1 {
		t.Fatalf("session: %d %s", resp.StatusCode, b)
	}
	if sess.Cameras[0].Name != "Gate" {
		t.Errorf("camera named %q, want the edge's name Gate", sess.Cameras[0].Name)
	}
	base := "/api/v1/playback/sessions/" + sess.ID
	var tl central.Timeline
	if resp, b := guard.Do(http.MethodGet, base+"/timeline", nil); resp.StatusCode != http.StatusOK || json.Unmarshal(b, &tl) != nil ||
		len(tl.Cameras) != 1 || tl.Cameras[0].Error != "" || len(tl.Cameras[0].Spans) == 0 {
		t.Fatalf("timeline: %d %s", resp.StatusCode, b)
	}
	window := fmt.Sprintf("%s/video?edge=%s&camera=gate-cam&from=%s&to=%s", base, edgeID,
		url.QueryEscape(from.Format(time.RFC3339Nano)), url.QueryEscape(to.Format(time.RFC3339Nano)))

	all := fetchWindow(t, guard, window, "0")
	p := testrig.FFprobe(t, all.path)
	if p.Codec != "h264" || p.Width != 640 || !p.FirstKey || p.Frames != all.frames || p.Frames < 50 {
		t.Errorf("window: ffprobe %+v, headers say %d frames", p, all.frames)
	}
	if !strings.HasPrefix(all.codec, "avc1.") || all.start.After(from) || all.start.Before(from.Add(-10*time.Second)) || all.end.Before(to.Add(-time.Second)) {
		t.Errorf("window headers: codec %s, %v..%v for %v..%v", all.codec, all.start, all.end, from, to)
	}
	kf := fetchWindow(t, guard, window+"&keyframes=1", "1")
	pk := testrig.FFprobe(t, kf.path)
	flags := packetFlags(t, kf.path)
	if pk.Frames != kf.frames || kf.frames == 0 || kf.frames >= all.frames || len(flags) != kf.frames ||
		slices.ContainsFunc(flags, func(f string) bool { return !strings.HasPrefix(f, "K") }) {
		t.Errorf("keyframes only: ffprobe %+v, packet flags %v, headers say %d frames (all: %d)", pk, flags, kf.frames, all.frames)
	}
	t.Logf("recorded %.0f s; window %v..%v: %d frames (%s), keyframes only: %d", time.Since(began).Seconds(),
		all.start.Format(time.RFC3339Nano), all.end.Format(time.RFC3339Nano), all.frames, all.codec, kf.frames)

	var views []audit.Entry
	for _, e := range c.Audit("action=view&user=gina") {
		if e.Target == "playback" {
			views = append(views, e)
		}
	}
	if len(views) != 1 {
		t.Fatalf("%d playback view entries for one session and its windows, want 1: %+v", len(views), views)
	}
	var d struct {
		Cameras  []string `json:"cameras"`
		From, To string
		Session  string `json:"session"`
	}
	_ = json.Unmarshal(views[0].Details, &d)
	if views[0].Actor.Role != central.RoleGuard || !slices.Equal(d.Cameras, []string{edgeID + "/gate-cam"}) || d.Session != sess.ID ||
		d.From != from.Format(time.RFC3339Nano) || d.To != to.Format(time.RFC3339Nano) {
		t.Errorf("audit entry: %+v %s", views[0].Actor, views[0].Details)
	}
}

// playbackWindow is a fetched window: the file and what its headers said.
type playbackWindow struct {
	path       string
	frames     int
	codec      string
	start, end time.Time
}

func fetchWindow(t *testing.T, b *rig.Browser, path, keyframesOnly string) playbackWindow {
	t.Helper()
	asked := time.Now()
	resp, body := b.Do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	h := resp.Header
	w := playbackWindow{path: filepath.Join(t.TempDir(), "window.mp4"), codec: h.Get("X-Vigil-Codec")}
	w.frames, _ = strconv.Atoi(h.Get("X-Vigil-Frames"))
	w.start, _ = time.Parse(time.RFC3339Nano, h.Get("X-Vigil-Start"))
	w.end, _ = time.Parse(time.RFC3339Nano, h.Get("X-Vigil-End"))
	if h.Get("X-Vigil-Keyframes-Only") != keyframesOnly || w.start.IsZero() || !w.end.After(w.start) {
		t.Fatalf("GET %s: headers %v", path, h)
	}
	t.Logf("GET %s: %d bytes in %v", path, len(body), time.Since(asked).Round(time.Millisecond))
	if err := os.WriteFile(w.path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// packetFlags lists the flags of every video packet ("K_" for a keyframe).
func packetFlags(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", path, err)
	}
	return strings.Fields(string(out))
}
