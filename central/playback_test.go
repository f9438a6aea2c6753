package central

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/wire"
)

// answeringEdge is a connected test edge that answers central's requests
// over the wire protocol, as answer says, on its own goroutine.
type answeringEdge struct {
	mu   sync.Mutex
	reqs []wire.Request
	done chan struct{}
}

// answer serves e's requests with f from now on: f sends the parts of
// one answer. The test goroutine must not write on e afterwards.
func answer(t *testing.T, e *edgeClient, f func(req wire.Request, send func(wire.Response))) *answeringEdge {
	ae := &answeringEdge{done: make(chan struct{})}
	go func() {
		defer close(ae.done)
		for {
			_ = e.ws.SetReadDeadline(time.Time{})
			_, frame, err := e.ws.ReadMessage()
			if err != nil {
				return
			}
			env, err := wire.Unmarshal(frame)
			var req wire.Request
			if err != nil || env.Type != wire.TypeRequest || wire.DecodeBody(env, &req) != nil {
				continue
			}
			ae.mu.Lock()
			ae.reqs = append(ae.reqs, req)
			ae.mu.Unlock()
			f(req, func(p wire.Response) {
				p.ID = req.ID
				b, _ := wire.Marshal(wire.TypeResponse, p)
				_ = e.ws.WriteMessage(websocket.TextMessage, b)
			})
		}
	}()
	t.Cleanup(func() { e.ws.Close(); <-ae.done })
	return ae
}

func (ae *answeringEdge) requests(method string) []wire.Request {
	ae.mu.Lock()
	defer ae.mu.Unlock()
	var out []wire.Request
	for _, r := range ae.reqs {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// heartbeat reports cameras (ID → name) and waits until central lists them.
func heartbeat(t *testing.T, s *Server, e *edgeClient, edge string, cams map[string]string) {
	t.Helper()
	hb := wire.Heartbeat{Time: time.Now().UTC(), CPUPercent: 1}
	for id, name := range cams {
		hb.Cameras = append(hb.Cameras, wire.CameraStatus{ID: id, Name: name, Online: true})
	}
	e.send(wire.TypeHeartbeat, hb)
	eventually(t, "cameras listed", func() bool {
		for _, st := range s.edges.statuses() {
			if st.ID == edge && len(st.Cameras) == len(cams) {
				return true
			}
		}
		return false
	})
}

// open sends a GET with b's session and returns the response unread.
func (b *browser) open(path string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+b.s.Addr()+path, nil)
	req.AddCookie(b.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	b.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func rfc(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

func createSession(t *testing.T, b *browser, from, to time.Time, cams ...string) (PlaybackSession, int, []byte) {
	t.Helper()
	var list []map[string]string
	for _, c := range cams {
		e, cam, _ := strings.Cut(c, "/")
		list = append(list, map[string]string{"edge": e, "camera": cam})
	}
	resp, body := b.do(http.MethodPost, "/api/v1/playback/sessions", map[string]any{"cameras": list, "from": from, "to": to})
	var s PlaybackSession
	_ = json.Unmarshal(body, &s)
	return s, resp.StatusCode, body
}

// A guard's playback session: made and audited once with its cameras
// and range; its windows come from the edge with the session's origin,
// headers from the edge's info part, the video streamed part by part;
// windows outside the session, too long or of another camera are
// refused, and another guard cannot use it.
func TestPlaybackSessionVideo(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	heartbeat(t, s, e, northID, map[string]string{"gate-cam": "Gate road"})
	release := make(chan struct{})
	start := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	edge := answer(t, e, func(req wire.Request, send func(wire.Response)) {
		if req.Method != wire.MethodPlayback {
			send(wire.Response{Status: wire.StatusBadRequest, Error: "not here", Final: true})
			return
		}
		if req.From.After(start.Add(3 * time.Minute)) {
			send(wire.Response{Status: wire.StatusNotAvailable, Error: "no video", Final: true})
			return
		}
		info, _ := json.Marshal(wire.PlaybackInfo{Camera: req.Camera, Codec: "avc1.4d401f", Origin: req.Playback.Origin,
			Start: req.From.Add(-time.Second), End: req.To, Frames: 42, KeyframesOnly: req.Playback.KeyframesOnly, Next: req.To.Add(-time.Second)})
		send(wire.Response{Status: wire.StatusOK, ContentType: "application/json", Data: info})
		send(wire.Response{Status: wire.StatusOK, ContentType: "video/mp4", Part: 1, Data: []byte("INIT")})
		send(wire.Response{Status: wire.StatusOK, ContentType: "video/mp4", Part: 2, Data: []byte("FRAG1")})
		if req.From.Equal(start) {
			<-release // the first fragment must reach the client before the rest exists
		}
		send(wire.Response{Status: wire.StatusOK, ContentType: "video/mp4", Part: 3, Data: []byte("FRAG2"), Final: true})
	})
	ann := signIn(t, s, "ann", RoleGuard)
	sess, code, body := createSession(t, ann, start, start.Add(5*time.Minute), northID+"/gate-cam", northID+"/gate-cam", southID+"/yard-cam")
	if code != http.StatusCreated || !sess.Origin.Equal(start) || !sess.From.Equal(start) || len(sess.Cameras) != 2 ||
		sess.Cameras[0].Name != "Gate road" || sess.Cameras[1].Name != "yard-cam" || time.Until(sess.Expires) < 29*time.Minute {
		t.Fatalf("create: %d %s", code, body)
	}
	vid := func(from, to time.Time, extra string) string {
		return fmt.Sprintf("/api/v1/playback/sessions/%s/video?edge=%s&camera=gate-cam&from=%s&to=%s%s", sess.ID, northID, rfc(from), rfc(to), extra)
	}
	// Streamed: the first fragment arrives while the edge still holds the last.
	resp := ann.open(vid(start, start.Add(wire.MaxPlaybackWindow), ""))
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "video/mp4" || h.Get("X-Vigil-Codec") != "avc1.4d401f" ||
		h.Get("X-Vigil-Frames") != "42" || h.Get("X-Vigil-Keyframes-Only") != "0" ||
		h.Get("X-Vigil-Start") != start.Add(-time.Second).Format(time.RFC3339Nano) ||
		h.Get("X-Vigil-End") != start.Add(time.Minute).Format(time.RFC3339Nano) || h.Get("X-Vigil-Next") != start.Add(59*time.Second).Format(time.RFC3339Nano) {
		t.Fatalf("window: %d %v", resp.StatusCode, h)
	}
	got := make([]byte, len("INITFRAG1"))
	read := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, got); read <- err }()
	select {
	case err := <-read:
		if err != nil || string(got) != "INITFRAG1" {
			t.Fatalf("first parts: %q %v", got, err)
		}
	case <-time.After(waitFor):
		close(release)
		t.Fatal("the first fragment did not reach the client before the edge finished the window (not streamed)")
	}
	close(release)
	if rest, _ := io.ReadAll(resp.Body); string(rest) != "FRAG2" {
		t.Fatalf("last part: %q", rest)
	}
	// keyframes=1 asks the edge for keyframes only, with the session's origin.
	resp, body = ann.do(http.MethodGet, vid(start.Add(time.Minute), start.Add(90*time.Second), "&keyframes=1"), nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Vigil-Keyframes-Only") != "1" || string(body) != "INITFRAG1FRAG2" {
		t.Fatalf("keyframes window: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	reqs := edge.requests(wire.MethodPlayback)
	if len(reqs) != 2 || !reqs[1].Playback.KeyframesOnly || reqs[0].Playback.KeyframesOnly || !reqs[1].Playback.Origin.Equal(start) || reqs[1].Camera != "gate-cam" {
		t.Fatalf("requests to the edge: %+v", reqs)
	}
	if kf, all := metricValue(t, s, "vigil_central_playback_windows_total", "keyframes_only", "true"), metricValue(t, s, "vigil_central_playback_windows_total", "keyframes_only", "false"); kf != 1 || all != 1 {
		t.Errorf("windows counted: %v keyframes only, %v all frames; want 1 and 1", kf, all)
	}
	if n := metricValue(t, s, "vigil_central_playback_sessions"); n != 1 {
		t.Errorf("sessions open: %v, want 1", n)
	}
	checkPlaybackRefusals(t, s, ann, sess, vid, start)
	// One audit entry for the session, none per window.
	es := auditEntries(t, s, "action=view&user=ann")
	wantEntry(t, es, audit.ActionView, "ann", RoleGuard, "playback", map[string]any{"what": "playback", "session": sess.ID,
		"cameras": []string{northID + "/gate-cam", southID + "/yard-cam"}, "from": start.Format(time.RFC3339Nano), "to": start.Add(5 * time.Minute).Format(time.RFC3339Nano)})
	if len(es) != 1 {
		t.Errorf("%d view entries for one session and its windows, want 1", len(es))
	}
	// Ended: gone.
	if resp, _ := ann.do(http.MethodDelete, "/api/v1/playback/sessions/"+sess.ID, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, _ := ann.do(http.MethodGet, vid(start, start.Add(time.Second), ""), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a window of an ended session: %d", resp.StatusCode)
	}
}

// checkPlaybackRefusals: windows the session does not cover, a camera
// whose edge is offline, a window without video, and another guard.
func checkPlaybackRefusals(t *testing.T, s *Server, ann *browser, sess PlaybackSession, vid func(from, to time.Time, extra string) string, start time.Time) {
	t.Helper()
	base := "/api/v1/playback/sessions/" + sess.ID
	for _, c := range []struct {
		path string
		want int
	}{
		{vid(start, start.Add(wire.MaxPlaybackWindow+time.Second), ""), http.StatusBadRequest},            // too long
		{vid(start.Add(-time.Minute), start.Add(-30*time.Second), ""), http.StatusBadRequest},             // before the session
		{vid(start.Add(5*time.Minute), start.Add(6*time.Minute), ""), http.StatusBadRequest},              // after it
		{vid(start.Add(-5*time.Second), start.Add(5*time.Second), "&keyframes=2"), http.StatusBadRequest}, // keyframes 0 or 1
		{vid(start.Add(4*time.Minute), start.Add(5*time.Minute), ""), http.StatusNotFound},                // no video there
		{vid(start.Add(time.Second), start, ""), http.StatusBadRequest},                                   // backwards
		{fmt.Sprintf("%s/video?edge=%s&camera=other-cam&from=%s&to=%s", base, northID, rfc(start), rfc(start.Add(time.Second))), http.StatusForbidden},
		{fmt.Sprintf("%s/video?edge=%s&camera=yard-cam&from=%s&to=%s", base, southID, rfc(start), rfc(start.Add(time.Second))), http.StatusServiceUnavailable},
		{fmt.Sprintf("%s/overlay?edge=%s&camera=gate-cam&from=%s&to=%s", base, northID, rfc(start), rfc(start.Add(wire.MaxOverlayRange+time.Second))), http.StatusBadRequest},
	} {
		if resp, body := ann.do(http.MethodGet, c.path, nil); resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.path, resp.StatusCode, body, c.want)
		}
	}
	bob := signIn(t, s, "bob", RoleGuard)
	for _, p := range []string{vid(start, start.Add(time.Second), ""), base + "/timeline"} {
		if resp, _ := bob.do(http.MethodGet, p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another guard: GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := bob.do(http.MethodDelete, base, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another guard's delete: %d, want 404", resp.StatusCode)
	}
	installer := signIn(t, s, "ivan", RoleInstaller)
	if _, code, _ := createSession(t, installer, start, start.Add(time.Minute), northID+"/gate-cam"); code != http.StatusForbidden {
		t.Errorf("an installer's session: %d, want 403", code)
	}
	var many []string
	for i := range maxPlaybackCameras + 1 {
		many = append(many, fmt.Sprintf("%s/cam-%d", northID, i))
	}
	now := time.Now()
	for name, c := range map[string]struct {
		from, to time.Time
		cams     []string
	}{
		"too many cameras": {start, start.Add(time.Minute), many},
		"no camera":        {start, start.Add(time.Minute), nil},
		"over a day":       {now.Add(-25 * time.Hour), now, []string{northID + "/gate-cam"}},
		"in the future":    {now, now.Add(5 * time.Minute), []string{northID + "/gate-cam"}},
		"unknown edge":     {start, start.Add(time.Minute), []string{"nowhere/gate-cam"}},
		"backwards":        {start, start.Add(-time.Minute), []string{northID + "/gate-cam"}},
	} {
		if _, code, body := createSession(t, ann, c.from, c.to, c.cams...); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, code, body)
		}
	}
}

// The timeline: spans and gaps from the edge, an error for a camera on an
// offline edge, the alerts of each camera (source or linked) in range,
// the edge's gate events and the camera's bookmarks; overlays proxied.
func TestPlaybackTimeline(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	heartbeat(t, s, e, northID, map[string]string{"gate-cam": "Gate", "yard-cam": "Yard"})
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	alert := func(id, source string, m int, links ...string) {
		a := testAlert(northID, id)
		a.Source, a.Time = source, at(m)
		for _, l := range links {
			a.Links = append(a.Links, wire.Link{Camera: l})
		}
		e.sendAlert(a)
	}
	alert("in-gate", "gate-cam", 5)
	alert("linked", "barrier-a", 6, "yard-cam", "gate-cam")
	alert("in-yard", "yard-cam", 7)
	alert("before", "gate-cam", -5)
	e.send(wire.TypeEventBatch, wire.EventBatch{ID: "gb-1", EdgeID: northID, Events: []wire.Event{
		{Time: at(6), Source: "barrier-a", Kind: "gate.opened", Summary: "opened"}, {Time: at(-1), Source: "barrier-a", Kind: "gate.closed"}}})
	e.expectAck("gb-1")
	answer(t, e, func(req wire.Request, send func(wire.Response)) {
		var v any
		switch {
		case req.Method == wire.MethodRecordings && req.Camera == "gate-cam":
			v = wire.Recordings{Camera: req.Camera, Spans: []wire.Span{{Start: at(0), End: at(8), Bytes: 9}, {Start: at(9), End: at(10)}}, Gaps: []wire.Span{{Start: at(8), End: at(9)}}}
		case req.Method == wire.MethodOverlay:
			v = wire.Overlay{Camera: req.Camera, Boxes: []wire.BoxFrame{{Time: req.From, Boxes: []wire.Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}}}}, Zones: []wire.OverlayZone{}, Lines: []wire.OverlayLine{}}
		default:
			send(wire.Response{Status: wire.StatusError, Error: "disk gone", Final: true})
			return
		}
		b, _ := json.Marshal(v)
		send(wire.Response{Status: wire.StatusOK, ContentType: "application/json", Data: b, Final: true})
	})
	ann := signIn(t, s, "ann", RoleGuard)
	if resp, body := ann.do(http.MethodPost, "/api/v1/bookmarks", map[string]any{"edge": northID, "camera": "gate-cam", "at": at(3), "note": "van stops"}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("bookmark: %d %s", resp.StatusCode, body)
	}
	sess, code, body := createSession(t, ann, at(0), at(10), northID+"/gate-cam", northID+"/yard-cam", southID+"/dock-cam")
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var tl Timeline
	if resp := getAs(t, ann, "/api/v1/playback/sessions/"+sess.ID+"/timeline", &tl); resp != http.StatusOK || len(tl.Cameras) != 3 {
		t.Fatalf("timeline: %d %+v", resp, tl)
	}
	gate, yard, dock := tl.Cameras[0], tl.Cameras[1], tl.Cameras[2]
	if gate.Name != "Gate" || len(gate.Spans) != 2 || len(gate.Gaps) != 1 || !gate.Gaps[0].Start.Equal(at(8)) || gate.Error != "" {
		t.Errorf("gate-cam's recordings: %+v", gate)
	}
	if alertIDs(gate.Alerts) != "in-gate,linked" || alertIDs(yard.Alerts) != "linked,in-yard" || len(dock.Alerts) != 0 {
		t.Errorf("alerts: gate %s, yard %s, dock %d", alertIDs(gate.Alerts), alertIDs(yard.Alerts), len(dock.Alerts))
	}
	if gate.Alerts[0].Severity != wire.Red || gate.Alerts[0].State != StateRaised || gate.Alerts[0].Priority == 0 {
		t.Errorf("an alert on the timeline: %+v", gate.Alerts[0])
	}
	if len(gate.Events) != 1 || gate.Events[0].Kind != "gate.opened" || len(yard.Events) != 1 || len(dock.Events) != 0 {
		t.Errorf("events: gate %+v, yard %+v, dock %+v", gate.Events, yard.Events, dock.Events)
	}
	if len(gate.Bookmarks) != 1 || gate.Bookmarks[0].Note != "van stops" || len(yard.Bookmarks) != 0 {
		t.Errorf("bookmarks: gate %+v, yard %+v", gate.Bookmarks, yard.Bookmarks)
	}
	if !strings.Contains(yard.Error, "disk gone") || len(yard.Spans) != 0 || dock.Error != "the edge is offline" || len(dock.Spans) != 0 {
		t.Errorf("errors: yard %q, dock %q", yard.Error, dock.Error)
	}
	var ov wire.Overlay
	path := fmt.Sprintf("/api/v1/playback/sessions/%s/overlay?edge=%s&camera=gate-cam&from=%s&to=%s", sess.ID, northID, rfc(at(1)), rfc(at(2)))
	if code := getAs(t, ann, path, &ov); code != http.StatusOK || len(ov.Boxes) != 1 || !ov.Boxes[0].Time.Equal(at(1)) {
		t.Errorf("overlay: %d %+v", code, ov)
	}
}

func getAs(t *testing.T, b *browser, path string, v any) int {
	t.Helper()
	resp, body := b.do(http.MethodGet, path, nil)
	if err := json.Unmarshal(body, v); err != nil && resp.StatusCode == http.StatusOK {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return resp.StatusCode
}

func alertIDs(as []TimelineAlert) string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return strings.Join(ids, ",")
}

// The session table: a session lives 30 minutes from its last use, the
// sweeper ends idle ones, a user's oldest session goes beyond the cap.
func TestPlaybackSessionTable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tb := newPlaybackSessions(playbackIdle, func() time.Time { return now })
	tb.add(PlaybackSession{ID: "a", user: "ann"})
	now = now.Add(20 * time.Minute)
	if _, ok := tb.use("a", "ann"); !ok {
		t.Fatal("a session used within 30 minutes")
	}
	if _, ok := tb.use("a", "bob"); ok {
		t.Fatal("another user's session")
	}
	now = now.Add(29 * time.Minute) // 49 minutes after it was made, 29 after its last use
	if _, ok := tb.use("a", "ann"); !ok {
		t.Fatal("expired although used 29 minutes ago")
	}
	now = now.Add(30 * time.Minute)
	if _, ok := tb.use("a", "ann"); ok || tb.len() != 0 {
		t.Fatal("a session idle for 30 minutes is still there")
	}
	tb.add(PlaybackSession{ID: "b", user: "ann"})
	now = now.Add(31 * time.Minute)
	tb.sweep()
	if tb.len() != 0 {
		t.Fatal("the sweeper left an idle session")
	}
	for i := range maxSessionsPerUser + 1 {
		now = now.Add(time.Second)
		tb.add(PlaybackSession{ID: fmt.Sprint("s", i), user: "ann"})
	}
	tb.add(PlaybackSession{ID: "bob's", user: "bob"})
	if _, ok := tb.use("s0", "ann"); ok || tb.len() != maxSessionsPerUser+1 {
		t.Fatalf("over the cap: %d sessions, the oldest kept %v", tb.len(), ok)
	}
	if !tb.end("s1", "ann") || tb.end("bob's", "ann") {
		t.Fatal("end: a user ends only their own sessions")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tb.run(ctx); close(done) }()
	cancel()
	<-done
}

// The session's audit entry is the gate: when it cannot be written the
// session is refused.
func TestPlaybackRefusedWhenNotAudited(t *testing.T) {
	s := startServer(t)
	ann := signIn(t, s, "ann", RoleGuard)
	s.auditor.log.Close()
	start := time.Now().Add(-time.Hour)
	if _, code, body := createSession(t, ann, start, start.Add(time.Minute), northID+"/gate-cam"); code != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("audit")) {
		t.Fatalf("a session the audit log cannot record: %d %s", code, body)
	}
	if s.playback.sessions.len() != 0 {
		t.Fatal("the session was kept")
	}
}

// FuzzPlaybackHeaders: whatever an edge sends as a window's info part,
// reading it never panics, and what it accepts gives headers a player
// can parse.
func FuzzPlaybackHeaders(f *testing.F) {
	good, _ := json.Marshal(wire.PlaybackInfo{Camera: "c", Codec: "avc1.4d401f", Start: time.Unix(1e9, 5), End: time.Unix(1e9+2, 0), Frames: 50, Next: time.Unix(1e9+2, 0)})
	f.Add(good)
	f.Add([]byte(`{"codec":"hvc1.1.6.L93.B0","start":"2026-01-01T00:00:00+08:00","end":"2026-01-01T00:00:01Z","frames":-1}`))
	f.Add([]byte(`{"codec":"\r\nX-Evil: 1","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := http.Header{}
		if playbackHeaders(h, data) != nil {
			return
		}
		for _, k := range []string{"X-Vigil-Start", "X-Vigil-End"} {
			if _, err := time.Parse(time.RFC3339Nano, h.Get(k)); err != nil {
				t.Fatalf("%s %q: %v", k, h.Get(k), err)
			}
		}
		if n, err := strconv.Atoi(h.Get("X-Vigil-Frames")); err != nil || n < 0 || h.Get("X-Vigil-Codec") == "" || strings.ContainsAny(h.Get("X-Vigil-Codec"), "\r\n :") {
			t.Fatalf("headers %v", h)
		}
	})
}
