package edge_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/sipp"
)

// TestGB28181LiveToSIPp: SIPp plays the platform and asks for a camera
// that GStreamer's RTSP server serves to the edge; the edge answers the
// INVITE and streams the camera's own H.264, untouched, as MPEG-PS over
// RTP to the address of the offer, which the test keeps in a file that
// ffprobe (-f mpeg) decodes: H.264, the camera's size, the SSRC of the
// offer's y=. The platform's BYE ends the stream, and the view is in the
// audit records queued for central.
func TestGB28181LiveToSIPp(t *testing.T) {
	clip := testrig.Testsrc(t, filepath.Join(t.TempDir(), "north.mp4"), 4, "-c:v", "libx264", "-bf", "0", "-g", "25")
	cam := testrig.StartGstCamera(t, testrig.GstOptions{Streams: map[string]string{"north": clip}, Minutes: 1})
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := gbNodeConfig(t, fmt.Sprintf("127.0.0.1:%d", port), nil, time.Hour)
	cfg.Cameras[0].URL = cam.URL("north")
	rx := testrig.ListenRTP(t)
	p := sipp.Start(t, sipp.Options{Scenario: "../gb28181/device/testdata/edge_live.xml", Port: port, Remote: cfg.GB28181.LocalAddr,
		Calls: 1, Timeout: 30 * time.Second, Keys: map[string]string{"cam": gbCamID, "srv": gbServerID, "domain": gbDomain,
			"rtpip": "127.0.0.1", "rtpport": fmt.Sprint(rx.Port())}})
	node, _ := startGBNode(t, cfg)
	res := p.Wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s\nmessages:\n%s", res.ExitCode, res.Errors, res.Messages)
	}
	ps, frames, ssrcs := rx.Stream()
	if len(ssrcs) != 1 || !ssrcs[100000009] {
		t.Errorf("SSRCs %v, want only 100000009 (y=0100000009)", ssrcs)
	}
	path := filepath.Join(t.TempDir(), "live.mpg")
	if err := os.WriteFile(path, ps, 0o600); err != nil {
		t.Fatal(err)
	}
	probe := testrig.FFprobePS(t, path)
	t.Logf("received %d RTP frames, %d bytes: ffprobe %s %dx%d, %d frames decoded, %d keyframes",
		frames, len(ps), probe.Codec, probe.Width, probe.Height, len(probe.FramePTS), probe.Keyframes)
	// 5 s of a 25 fps camera, less the wait for the first keyframe (1 s
	// GOP) and the camera's own start.
	if probe.Codec != "h264" || probe.Width != 320 || probe.Height != 240 || len(probe.FramePTS) < 50 || probe.Keyframes < 1 {
		t.Errorf("ffprobe: %+v", probe)
	}
	for i := 1; i < len(probe.FramePTS); i++ {
		if probe.FramePTS[i] <= probe.FramePTS[i-1] {
			t.Fatalf("frame %d PTS %d after %d: not increasing", i, probe.FramePTS[i], probe.FramePTS[i-1])
		}
	}
	// BYE ended the call: nothing more arrives.
	n := len(ps)
	time.Sleep(500 * time.Millisecond)
	if again, _, _ := rx.Stream(); len(again) != n {
		t.Errorf("%d more bytes after BYE", len(again)-n)
	}
	recs, err := node.QueuedAccessRecords()
	if err != nil {
		t.Fatal(err)
	}
	var views []string
	for _, r := range recs {
		views = append(views, fmt.Sprintf("%s %s %s %s %s", r.User, r.Role, r.Action, r.Target, r.Details))
	}
	if len(views) != 1 || !strings.HasPrefix(views[0], "gb28181:"+gbServerID+" platform view north") || !strings.Contains(views[0], gbCamID) {
		t.Errorf("audit records %q, want one view of north by the platform", views)
	}
}
