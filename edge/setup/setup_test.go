package setup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/onvif"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

type fakeBackend struct {
	enrolled bool
	events   chan any
	rec      *recorder // nil: audits accepted, not kept
	// perimeter answers SetupPerimeterPreview (nil: ErrNoPerimeterPreview).
	perimeter func(camera string, lines []Line, dwell []Dwell) (PerimeterPreview, error)
}

// recorder keeps what a fakeBackend was asked to audit and to change.
type recorder struct {
	mu      sync.Mutex
	audits  []auditCall
	err     error // SetupAudit fails with it
	changes []string
	// perimeter is each SetupSaveZones' lines and dwell.
	perimeter []Perimeter
}

type auditCall struct {
	Action, Target, Client string
	Details                any
}

func (r *recorder) changed(what string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.changes = append(r.changes, what)
	r.mu.Unlock()
}

func (r *recorder) calls() ([]auditCall, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]auditCall(nil), r.audits...), append([]string(nil), r.changes...)
}

func (f fakeBackend) SetupAudit(action, target, client string, details any) error {
	if f.rec == nil {
		return nil
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if f.rec.err != nil {
		return f.rec.err
	}
	f.rec.audits = append(f.rec.audits, auditCall{action, target, client, details})
	return nil
}

func (f fakeBackend) SetupEnrolled() bool { return f.enrolled }
func (f fakeBackend) SetupEnrol(_ context.Context, r EnrolRequest) (EnrolResult, error) {
	f.rec.changed("enrol")
	if r.Token != "good" {
		return EnrolResult{}, errors.New("central refused: unknown enrolment token")
	}
	return EnrolResult{EdgeID: "gate-1", Message: "Enrolled"}, nil
}
func (f fakeBackend) SetupSaveZones(cam string, z []Zone, m [][][2]float64, per Perimeter) (any, error) {
	f.rec.changed("zones/" + cam)
	if f.rec != nil {
		f.rec.mu.Lock()
		f.rec.perimeter = append(f.rec.perimeter, per)
		f.rec.mu.Unlock()
	}
	return map[string]any{"revision": "r2", "camera": cam, "zones": len(z), "lines": len(per.Lines), "dwell": len(per.Dwell)}, nil
}
func (fakeBackend) SetupSnapshot(context.Context, string) ([]byte, error) {
	return []byte{0xff, 0xd8}, nil
}
func (fakeBackend) SetupMotionPreview(context.Context, string, []Zone, [][][2]float64) ([]byte, error) {
	return []byte("\x89PNG"), nil
}
func (f fakeBackend) SetupPerimeterPreview(_ context.Context, cam string, lines []Line, dwell []Dwell) (PerimeterPreview, error) {
	if f.perimeter == nil {
		return PerimeterPreview{}, ErrNoPerimeterPreview
	}
	return f.perimeter(cam, lines, dwell)
}
func (f fakeBackend) SetupGateEvents(ctx context.Context) <-chan any { return f.events }

func (fakeBackend) SetupStatus() any { return map[string]any{"edge_id": "gate-1"} }
func (fakeBackend) SetupSelfTest(context.Context, time.Duration) any {
	return map[string]any{"ok": true, "checks": []map[string]string{{"id": "disk", "status": "green", "reason": "ok"}}}
}

// onvifResponder answers any datagram with one ProbeMatch.
func onvifResponder(t *testing.T) string {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 8192)
		for {
			_, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			conn.WriteToUDP([]byte(`<Envelope><Body><ProbeMatches><ProbeMatch><EndpointReference><Address>urn:uuid:1</Address></EndpointReference>
<Scopes>onvif://www.onvif.org/name/Gate</Scopes><XAddrs>http://10.1.2.3/onvif/device_service</XAddrs></ProbeMatch></ProbeMatches></Body></Envelope>`), from)
		}
	}()
	return conn.LocalAddr().String()
}

type client struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (c client) post(path string, body any) (int, map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := c.c.Post(c.base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestSetupPage(t *testing.T) {
	dir := t.TempDir()
	log, logs := testrig.CapturingLogger(t)
	s, err := New(Config{DataDir: dir, Backend: fakeBackend{}, Log: log, Discovery: onvif.Options{Target: onvifResponder(t), Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	// The code is printed on first boot and kept 0600.
	fi, err := os.Stat(filepath.Join(dir, CodeFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("code file: %v %v", fi, err)
	}
	if !strings.Contains(logs.String(), "SETUP CODE") || !strings.Contains(logs.String(), s.access.code) {
		t.Error("the setup code was not logged on first boot")
	}
	if again, created, _ := LoadOrCreateCode(dir); created || again != s.access.code {
		t.Error("the code changed on the second boot")
	}

	srv := httptest.NewServer(s)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := client{t, srv.URL, &http.Client{Jar: jar}}

	// The page itself is served; the API needs the code.
	resp, err := http.Get(srv.URL + "/setup/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "setup.js") {
		t.Fatalf("page: %d", resp.StatusCode)
	}
	if code, _ := c.post("/setup/api/selftest", nil); code != http.StatusUnauthorized {
		t.Errorf("self-test without the code: %d", code)
	}
	if code, _ := c.post("/setup/api/login", map[string]string{"code": "0000-0000"}); code != http.StatusUnauthorized {
		t.Errorf("wrong code: %d", code)
	}
	if code, _ := c.post("/setup/api/login", map[string]string{"code": strings.ReplaceAll(s.access.code, "-", "")}); code != http.StatusOK {
		t.Fatalf("right code: %d", code)
	}

	// Probe: a good camera and a wrong password.
	clip := testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: 320, Height: 240, Bursts: []footage.Burst{{Start: 5, End: 9}}})
	cam, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: clip}}, User: "admin", Password: "s3cret", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	code, ans := c.post("/setup/api/probe", map[string]string{"url": cam.URL("cam"), "user": "admin", "password": "s3cret"})
	if code != 200 || ans["ok"] != true || ans["codec"] != "H264" || !strings.HasPrefix(ans["snapshot"].(string), "data:image/jpeg;base64,") {
		t.Errorf("probe: %d %v", code, ans["error"])
	}
	_, ans = c.post("/setup/api/probe", map[string]string{"url": cam.URL("cam"), "user": "admin", "password": "guess"})
	if ans["ok"] != false || ans["error"] != "wrong user name or password" || ans["kind"] != "auth" {
		t.Errorf("wrong password: %v", ans)
	}

	// Discovery through the page.
	_, ans = c.post("/setup/api/discover", map[string]any{})
	devs, _ := ans["devices"].([]any)
	if len(devs) != 1 || devs[0].(map[string]any)["rtsp"] != "rtsp://10.1.2.3:554/" {
		t.Errorf("discover: %v", ans)
	}

	// Zones: a good polygon gives the YAML; a degenerate one is refused.
	code, ans = c.post("/setup/api/zones", map[string]any{"camera": "gate-cam",
		"zones": []map[string]any{{"name": "gate", "points": [][2]float64{{0.1, 0.5}, {0.9, 0.5}, {0.9, 1}, {0.1, 1}}}},
		"masks": [][][2]float64{{{0, 0}, {0.3, 0}, {0.3, 0.2}}}})
	if code != 200 || !strings.Contains(ans["yaml"].(string), `name: "gate"`) || !strings.Contains(ans["yaml"].(string), "masks:") {
		t.Errorf("zones: %d %v", code, ans)
	}
	t.Logf("zones YAML:\n%s", ans["yaml"])
	code, ans = c.post("/setup/api/zones", map[string]any{"zones": []map[string]any{{"name": "line", "points": [][2]float64{{0.1, 0.1}, {0.2, 0.2}}}}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(ans["error"].(string), `zone "line"`) {
		t.Errorf("bad zone: %d %v", code, ans)
	}

	// Self-test, then finish: the page closes.
	if code, ans = c.post("/setup/api/selftest", nil); code != 200 || ans["ok"] != true {
		t.Errorf("self-test: %d %v", code, ans)
	}
	if code, _ = c.post("/setup/api/finish", nil); code != 200 {
		t.Fatalf("finish: %d", code)
	}
	if code, _ = c.post("/setup/api/selftest", nil); code != http.StatusGone {
		t.Errorf("after finish: %d, want 410", code)
	}
	if err := Reopen(dir); err != nil || s.Closed() {
		t.Errorf("reopen: %v", err)
	}
}

// TestLoginRateLimit: ten wrong codes in a minute lock the login.
func TestLoginRateLimit(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := client{t, srv.URL, srv.Client()}
	for range 10 {
		c.post("/setup/api/login", map[string]string{"code": "1111-1111"})
	}
	if code, _ := c.post("/setup/api/login", map[string]string{"code": s.access.code}); code != http.StatusTooManyRequests {
		t.Errorf("after 10 wrong codes: %d", code)
	}
}

func loggedIn(t *testing.T, s *Server) client {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := client{t: t, base: srv.URL, c: &http.Client{Jar: jar}}
	if code, _ := c.post("/setup/api/login", map[string]string{"code": s.access.code}); code != 200 {
		t.Fatalf("login: %d", code)
	}
	return c
}

// The enrolment step answers the backend's reason in words; gate events
// stream as Server-Sent Events the moment they arrive; an enrolled box's
// page closes by itself once the installer has left, and re-opens.
func TestSetupEnrolEventsIdleClose(t *testing.T) {
	dir := t.TempDir()
	events := make(chan any, 1)
	clk := newTestClock()
	s, err := New(Config{DataDir: dir, Backend: fakeBackend{enrolled: true, events: events}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := loggedIn(t, s)
	if code, out := c.post("/setup/api/enrol", EnrolRequest{Central: "https://c:8443", Token: "bad"}); code != 422 || !strings.Contains(out["error"].(string), "unknown enrolment token") {
		t.Fatalf("bad token: %d %v", code, out)
	}
	if code, out := c.post("/setup/api/enrol", EnrolRequest{Central: "https://c:8443", Token: "good"}); code != 200 || out["edge_id"] != "gate-1" {
		t.Fatalf("good token: %d %v", code, out)
	}
	if code, out := c.post("/setup/api/zones/save", map[string]any{"camera": "north", "zones": []Zone{{Name: "gate", Points: [][2]float64{{0, 0}, {1, 0}, {1, 1}}}}}); code != 200 || out["revision"] != "r2" {
		t.Fatalf("save: %d %v", code, out)
	}
	resp, err := c.c.Get(c.base + `/setup/api/preview?camera=north&draft={"zones":[{"name":"a","points":[[0,0],[1,0],[0.5,1]]}]}`)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("preview: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, _ := c.c.Get(c.base + `/setup/api/preview?camera=north&draft={"zones":[{"name":"a","points":[[0,0],[1,0]]}]}`); resp.StatusCode != 422 {
		t.Fatalf("preview of a two-point zone: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/setup/api/gates/events", nil)
	resp, err = c.c.Do(req)
	if err != nil || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events <- map[string]string{"gate": "north", "kind": "opened"}
	sc := bufio.NewScanner(resp.Body)
	got := ""
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			got = sc.Text()
			break
		}
	}
	if !strings.Contains(got, `"kind":"opened"`) {
		t.Fatalf("event: %q", got)
	}
	cancel()

	// Idle past IdleClose on an enrolled box: closed, sessions gone.
	clk.Add(IdleClose + time.Minute)
	if code, _ := c.post("/setup/api/selftest", map[string]any{}); code != http.StatusGone {
		t.Fatalf("idle enrolled box: %d, want 410", code)
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.post("/setup/api/login", map[string]string{"code": s.access.code}); code != 200 {
		t.Fatalf("after reopen: %d", code)
	}
}
