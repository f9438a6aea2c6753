package e2e

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// liveViewer is a browser's end of the live websocket.
type liveViewer struct {
	ws *websocket.Conn
}

func dialLive(t *testing.T, addr string, slow bool) *liveViewer {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if slow {
		// A viewer on a bad link: a small receive window it never drains.
		d.ReadBufferSize = 1024
		// (set before connect, so the window scale is chosen for it).
		nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
			return serr
		}}
		d.NetDialContext = nd.DialContext
	}
	hdr := http.Header{"Authorization": {"Bearer " + rig.AdminToken}}
	ws, resp, err := d.Dial("ws://"+addr+"/api/v1/live/gate-1/gate-cam/ws", hdr)
	if err != nil {
		if resp != nil {
			t.Fatalf("live websocket: %s: %v", resp.Status, err)
		}
		t.Fatal(err)
	}
	return &liveViewer{ws: ws}
}

// next returns the next binary live frame (skipping state messages).
func (v *liveViewer) next(t *testing.T, within time.Duration) (wire.LiveFrame, error) {
	t.Helper()
	v.ws.SetReadDeadline(time.Now().Add(within))
	for {
		mt, b, err := v.ws.ReadMessage()
		if err != nil {
			return wire.LiveFrame{}, err
		}
		if mt == websocket.TextMessage {
			t.Logf("state: %s", b)
			continue
		}
		f, err := wire.UnmarshalLive(b)
		if err != nil {
			t.Fatalf("central sent a binary frame that is not a live frame: %v", err)
		}
		return f, nil
	}
}

// TestLiveViewEndToEnd: simulated camera → edge → central → websocket
// viewers. The stream is the camera's H.264 in fMP4 (ffprobe reads it);
// a viewer that stops reading is cut off while another keeps receiving;
// a late joiner starts at an init and a key fragment; the last viewer
// leaving stops the edge's stream.
func TestLiveViewEndToEnd(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	srv := startGateCentral(t)
	addr := srv.Addr()
	node := rig.StartEdge(t, edge.Config{
		EdgeID: edgeID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: srv.Uplink(time.Second),
		Cameras: []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate")}},
	}, edge.Options{UplinkBackoffMin: 100 * time.Millisecond})
	waitFor(t, "edge connected to central", 10*time.Second, func() bool { return node.Uplink().Connected() })

	// 1. The first viewer starts the stream: init, then a key fragment.
	a := dialLive(t, addr, false)
	defer a.ws.Close()
	init, err := a.next(t, 10*time.Second)
	if err != nil {
		t.Fatalf("no init segment: %v", err)
	}
	if init.Kind != wire.LiveInit || !strings.HasPrefix(init.Codec, "avc1.") {
		t.Fatalf("first frame: kind %d codec %q, want an avc1 init", init.Kind, init.Codec)
	}
	if got := node.LiveStreams(); len(got) != 1 || got[0] != "gate-cam" {
		t.Errorf("edge streams %v", got)
	}
	var file bytes.Buffer
	file.Write(init.Data)
	first := true
	var delays []time.Duration
	take := func(f wire.LiveFrame) {
		if f.Kind != wire.LiveFragment {
			t.Fatalf("unexpected frame kind %d", f.Kind)
		}
		if first && !f.Key {
			t.Fatal("first fragment after the init does not start with a keyframe")
		}
		first = false
		file.Write(f.Data)
		delays = append(delays, time.Since(f.Time))
	}
	for i := 0; i < 12; i++ {
		f, err := a.next(t, 5*time.Second)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		take(f)
	}

	// 2. A second viewer that never reads: cut off, while the first keeps
	// receiving without a gap.
	b := dialLive(t, addr, true)
	defer b.ws.Close()
	start := time.Now()
	lastAt := time.Now()
	for time.Since(start) < 15*time.Second {
		f, err := a.next(t, 5*time.Second)
		if err != nil {
			t.Fatalf("the reading viewer stopped receiving while the other stalled: %v", err)
		}
		if gap := time.Since(lastAt); gap > 1500*time.Millisecond {
			t.Errorf("the reading viewer waited %v for a fragment", gap)
		}
		lastAt = time.Now()
		take(f)
	}
	// Its connection ends: with 4408 if the close frame still fits in the
	// socket, else abnormally (the server gave up writing to it).
	var cutCode int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		_, err := b.next(t, 10*time.Second)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			cutCode = ce.Code
			break
		}
		if err != nil {
			t.Fatalf("slow viewer: %v", err)
		}
	}
	if cutCode != 4408 && cutCode != websocket.CloseAbnormalClosure {
		t.Errorf("slow viewer closed with %d, want 4408 (too slow) or 1006", cutCode)
	}
	t.Logf("slow viewer cut off (close %d) while the other kept receiving", cutCode)

	// 3. A late joiner gets the init, then starts at a key fragment.
	c := dialLive(t, addr, false)
	f, err := c.next(t, 5*time.Second)
	if err != nil || f.Kind != wire.LiveInit {
		t.Fatalf("late joiner: first frame kind %d, err %v", f.Kind, err)
	}
	if f, err = c.next(t, 5*time.Second); err != nil || f.Kind != wire.LiveFragment || !f.Key {
		t.Fatalf("late joiner: second frame kind %d key %v, err %v", f.Kind, f.Key, err)
	}

	// What the first viewer got is valid H.264 fMP4.
	path := filepath.Join(t.TempDir(), "live.mp4")
	os.WriteFile(path, file.Bytes(), 0o600)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,nb_read_frames:format=duration", "-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "codec_name=h264") || !strings.Contains(string(out), "width=640") {
		t.Errorf("live stream is not the camera's H.264:\n%s", out)
	}
	t.Logf("viewer received %d bytes: %s", file.Len(), strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " "))
	t.Logf("camera clock → fragment at the viewer: %s", summarize(delays))

	// 4. The last viewers leave: the edge's stream stops.
	a.ws.Close()
	c.ws.Close()
	waitFor(t, "edge stream stopped after the last viewer left", 10*time.Second, func() bool { return len(node.LiveStreams()) == 0 })
	waitFor(t, "central forgot the feed", 5*time.Second, func() bool { return len(srv.LiveFeeds()) == 0 })
}

func summarize(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return "p50 " + s[len(s)/2].Round(time.Millisecond).String() + ", max " + s[len(s)-1].Round(time.Millisecond).String()
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
