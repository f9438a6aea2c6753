package setup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// testClock is an injectable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// call serves one request from remote ("10.0.0.1:1234") straight to s: a
// header code (unless empty) and a JSON body (unless nil).
func call(t *testing.T, s *Server, method, path, remote, headerCode string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, "http://box"+path, rd)
	req.RemoteAddr = remote
	if headerCode != "" {
		req.Header.Set("X-Setup-Code", headerCode)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func login(t *testing.T, s *Server, remote, code string) *httptest.ResponseRecorder {
	t.Helper()
	return call(t, s, "POST", "/setup/api/login", remote, "", map[string]string{"code": code})
}

func newGuarded(t *testing.T, clk *testClock, b fakeBackend) *Server {
	t.Helper()
	s, err := New(Config{DataDir: t.TempDir(), Backend: b, Log: testrig.Logger(t), Now: clk.Now, EdgeID: func() string { return "gate-1" }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func retryAfter(t *testing.T, w *httptest.ResponseRecorder) int {
	t.Helper()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("want 429, got %d %s", w.Code, w.Body)
	}
	n, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	return n
}

const wrongCode = "0000-0000-0001"

// TestHeaderCodeTriesAreCounted: the X-Setup-Code header of any API route
// counts with the login form's tries; the eleventh try is refused (429,
// Retry-After) and not compared, even with the right code, on any route.
func TestHeaderCodeTriesAreCounted(t *testing.T) {
	clk := newTestClock()
	s := newGuarded(t, clk, fakeBackend{})
	const me = "192.0.2.7:40000"
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != 200 {
		t.Fatalf("right header code: %d", w.Code)
	}
	for i := range 10 {
		path := []string{"/setup/api/status", "/setup/api/gates/config"}[i%2]
		if i >= 8 {
			if w := login(t, s, me, wrongCode); w.Code != http.StatusUnauthorized {
				t.Fatalf("wrong login %d: %d", i, w.Code)
			}
			continue
		}
		if w := call(t, s, "GET", path, me, wrongCode, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong header code %d: %d", i, w.Code)
		}
	}
	checked := s.access.checked.Load()
	if n := retryAfter(t, call(t, s, "GET", "/setup/api/gates/config", me, s.access.code, nil)); n < 50 || n > 60 {
		t.Errorf("first lock: Retry-After %d, want ~60", n)
	}
	retryAfter(t, login(t, s, me, s.access.code))
	retryAfter(t, call(t, s, "POST", "/setup/api/gates/save", me, s.access.code, map[string]any{"gates": []any{}}))
	if s.access.checked.Load() != checked {
		t.Error("a locked address's codes were compared")
	}
	// The lock ends after a minute.
	clk.Add(time.Minute + time.Second)
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != 200 {
		t.Fatalf("after the lock: %d", w.Code)
	}
}

// TestLockIsPerAddress: an address locked out does not lock out the
// installer at another one; repeated locks double, capped at an hour.
func TestLockIsPerAddress(t *testing.T) {
	clk := newTestClock()
	s := newGuarded(t, clk, fakeBackend{})
	const attacker, installer = "203.0.113.9:5000", "192.168.1.20:6000"
	lock := func() int {
		t.Helper()
		for range 10 {
			if w := call(t, s, "GET", "/setup/api/status", attacker, wrongCode, nil); w.Code != http.StatusUnauthorized {
				t.Fatalf("wrong code: %d", w.Code)
			}
		}
		return retryAfter(t, login(t, s, attacker, wrongCode))
	}
	prev := lock()
	if prev > 60 {
		t.Errorf("first lock %d s", prev)
	}
	if w := login(t, s, installer, strings.ReplaceAll(s.access.code, "-", " ")); w.Code != 200 {
		t.Fatalf("the installer at another address: %d %s", w.Code, w.Body)
	}
	// The same machine's other port and an IPv6 neighbour in its /64 count as one.
	retryAfter(t, login(t, s, "203.0.113.9:5001", s.access.code))
	want := []int{120, 240, 480, 960, 1920, 3600, 3600}
	for i, w := range want {
		clk.Add(time.Duration(prev) * time.Second) // the lock ends; locked again at once
		if prev = lock(); prev != w {
			t.Errorf("lock %d: Retry-After %d, want %d", i+2, prev, w)
		}
	}
	// Quiet for an hour after the lock ended: the next lock is short again.
	clk.Add(time.Duration(prev)*time.Second + time.Hour)
	if n := lock(); n != 60 {
		t.Errorf("after a quiet hour: Retry-After %d, want 60", n)
	}
	// IPv6: the /64 is one address.
	for i := range 10 {
		call(t, s, "GET", "/setup/api/status", "[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:443", wrongCode, nil)
	}
	retryAfter(t, login(t, s, "[2001:db8:1:2:ffff::1]:443", s.access.code))
	if w := login(t, s, "[2001:db8:1:3::1]:443", s.access.code); w.Code != 200 {
		t.Errorf("another /64: %d", w.Code)
	}
}

// TestGlobalBackstop: 100 wrong codes a minute from many addresses stop
// code tries from everyone for the rest of that minute.
func TestGlobalBackstop(t *testing.T) {
	clk := newTestClock()
	s := newGuarded(t, clk, fakeBackend{})
	for a := range 10 {
		for range 10 {
			if w := call(t, s, "GET", "/setup/api/status", "198.51.100."+strconv.Itoa(a+1)+":1000", wrongCode, nil); w.Code != http.StatusUnauthorized {
				t.Fatalf("wrong code: %d", w.Code)
			}
		}
	}
	checked := s.access.checked.Load()
	w := login(t, s, "192.168.1.20:6000", s.access.code)
	retryAfter(t, w)
	if !strings.Contains(w.Body.String(), "from anyone") {
		t.Errorf("global refusal: %s", w.Body)
	}
	if s.access.checked.Load() != checked {
		t.Error("a code was compared past the global backstop")
	}
	clk.Add(time.Minute)
	if w := login(t, s, "192.168.1.20:6000", s.access.code); w.Code != 200 {
		t.Errorf("a minute later: %d %s", w.Code, w.Body)
	}
}

// TestConcurrentWrongCodes: 50 wrong codes at once from one address: at
// most 10 are compared, the rest refused; then the right code is refused.
func TestConcurrentWrongCodes(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make(chan int, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var req *http.Request
			if i%2 == 0 {
				req, _ = http.NewRequest("GET", srv.URL+"/setup/api/status", nil)
				req.Header.Set("X-Setup-Code", wrongCode)
			} else {
				req, _ = http.NewRequest("POST", srv.URL+"/setup/api/login", strings.NewReader(`{"code":"`+wrongCode+`"}`))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[http.StatusUnauthorized] > 10 || n[http.StatusUnauthorized]+n[http.StatusTooManyRequests] != 50 {
		t.Errorf("answers %v: at most 10 may be compared", n)
	}
	if c := s.access.checked.Load(); c > 10 {
		t.Errorf("%d codes compared, want at most 10", c)
	}
	c := client{t, srv.URL, srv.Client()}
	if code, _ := c.post("/setup/api/login", map[string]string{"code": s.access.code}); code != http.StatusTooManyRequests {
		t.Errorf("the right code after 50 wrong ones: %d, want 429", code)
	}
}

// TestCodeStrengthAndMigration: codes are 12 digits in groups of 4,
// accepted with or without dashes and spaces; a box's old 8-digit code
// is replaced at start by a strong one, which is logged and kept 0600.
func TestCodeStrengthAndMigration(t *testing.T) {
	format := regexp.MustCompile(`^[0-9]{4}-[0-9]{4}-[0-9]{4}$`)
	seen := map[string]bool{}
	for range 20 {
		c, err := newCode()
		if err != nil || !format.MatchString(c) || !strongCode(c) {
			t.Fatalf("code %q %v", c, err)
		}
		seen[c] = true
	}
	if len(seen) < 20 {
		t.Error("codes repeat")
	}
	for _, weak := range []string{"1234-5678", "12345678", "1234-5678-901", "abcd-efgh-ijkl", ""} {
		if strongCode(weak) {
			t.Errorf("%q counted as strong", weak)
		}
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CodeFile), []byte("1234-5678\n"), 0o600)
	log, logs := testrig.CapturingLogger(t)
	s, err := New(Config{DataDir: dir, Backend: fakeBackend{}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if !format.MatchString(s.access.code) {
		t.Fatalf("migrated code %q", s.access.code)
	}
	b, _ := os.ReadFile(filepath.Join(dir, CodeFile))
	fi, _ := os.Stat(filepath.Join(dir, CodeFile))
	if strings.TrimSpace(string(b)) != s.access.code || fi.Mode().Perm() != 0o600 {
		t.Errorf("code file %q %v", b, fi.Mode())
	}
	if !strings.Contains(logs.String(), "NEW SETUP CODE") || !strings.Contains(logs.String(), s.access.code) {
		t.Error("the new code was not logged")
	}
	if code, created, _ := LoadOrCreateCode(dir); created || code != s.access.code {
		t.Errorf("a strong code was replaced: %q %v", code, created)
	}
	const me = "192.0.2.1:1"
	if w := login(t, s, me, "1234-5678"); w.Code != http.StatusUnauthorized {
		t.Errorf("the old code: %d", w.Code)
	}
	for _, form := range []string{strings.ReplaceAll(s.access.code, "-", ""), strings.ReplaceAll(s.access.code, "-", " "), " " + s.access.code + " "} {
		if w := login(t, s, me, form); w.Code != 200 {
			t.Errorf("code as %q: %d", form, w.Code)
		}
	}
}

// TestPageClosesAfterOpenHours: an unenrolled box's page closes OpenFor
// after it was opened, counted across restarts; closed, it says so and
// how to re-open it; re-opened from central or on the box, the clock
// starts again, and the re-opening is recorded first.
func TestPageClosesAfterOpenHours(t *testing.T) {
	dir := t.TempDir()
	clk := newTestClock()
	rec := &recorder{}
	start := func() *Server {
		t.Helper()
		s, err := New(Config{DataDir: dir, Backend: fakeBackend{rec: rec}, Log: testrig.Logger(t), Now: clk.Now, OpenFor: 2 * time.Hour,
			EdgeID: func() string { return "gate-1" }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	const me = "192.0.2.1:1"
	clk.Add(time.Hour)
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != 200 {
		t.Fatalf("after an hour: %d", w.Code)
	}
	s = start() // a restart does not restart the clock
	clk.Add(time.Hour - time.Second)
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != 200 {
		t.Fatalf("just before: %d", w.Code)
	}
	clk.Add(time.Second)
	w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil)
	if w.Code != http.StatusGone || !strings.Contains(w.Body.String(), "vigil provision reopen") || !strings.Contains(w.Body.String(), "central") {
		t.Fatalf("after open_hours: %d %s", w.Code, w.Body)
	}
	if !s.Closed() {
		t.Fatal("not closed")
	}
	w = call(t, s, "GET", "/setup/", me, "", nil)
	if w.Code != http.StatusGone || !strings.Contains(w.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(w.Body.String(), "closed") || !strings.Contains(w.Body.String(), "vigil provision reopen") {
		t.Fatalf("the closed page: %d %s", w.Code, w.Body)
	}
	if a, _ := rec.calls(); len(a) != 1 || a[0].Action != ActionConfigChange || a[0].Target != "gate-1/setup" {
		t.Errorf("closing by itself recorded as %+v", a)
	}

	// Central re-opens: recorded first; refused while it cannot be.
	rec.mu.Lock()
	rec.err = errors.New("outbox: disk full")
	rec.mu.Unlock()
	if err := s.Reopen(); err == nil || !s.Closed() {
		t.Fatalf("re-opened unrecorded: %v", err)
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	if err := s.Reopen(); err != nil || s.Closed() {
		t.Fatal(err)
	}
	clk.Add(2*time.Hour - time.Second)
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != 200 {
		t.Fatalf("re-opened: %d", w.Code)
	}
	clk.Add(time.Second)
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != http.StatusGone {
		t.Fatalf("re-opened, after open_hours: %d", w.Code)
	}

	// `vigil provision reopen` on the box: the running page records the
	// re-opening before it serves anything.
	if err := Reopen(dir); err != nil {
		t.Fatal(err)
	}
	clk.mu.Lock()
	clk.t = time.Now() // Reopen's clock
	clk.mu.Unlock()
	rec.mu.Lock()
	rec.err = errors.New("outbox: disk full")
	rec.mu.Unlock()
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("re-opened on the box, unrecorded: %d", w.Code)
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	if w := call(t, s, "GET", "/setup/api/status", me, s.access.code, nil); w.Code != 200 {
		t.Fatalf("re-opened on the box: %d %s", w.Code, w.Body)
	}
	a, _ := rec.calls()
	last := a[len(a)-1]
	if d, _ := json.Marshal(last.Details); last.Action != ActionConfigChange || !strings.Contains(string(d), "vigil provision reopen") {
		t.Errorf("re-opening on the box recorded as %+v %s", last, d)
	}
	if n := len(a); call(t, s, "GET", "/setup/api/status", me, s.access.code, nil).Code != 200 || func() int { a, _ := rec.calls(); return len(a) }() != n {
		t.Error("the re-opening was recorded twice")
	}
}

// TestChangesAuditedFirst: enrolment, zones, gates (arming), sensors, the
// police platform and finish
// are recorded for central's audit log with the right action, target and
// client before they are made, never with the code or a secret; when
// that fails the change is refused with 503 and not made.
func TestChangesAuditedFirst(t *testing.T) {
	clk := newTestClock()
	rec := &recorder{}
	s := newGuarded(t, clk, fakeBackend{rec: rec})
	const me = "192.0.2.44:5555"
	zones := map[string]any{"camera": "north", "zones": []Zone{{Name: "gate", Points: [][2]float64{{0, 0}, {1, 0}, {1, 1}}}}}
	gates := map[string]any{"gates": []map[string]any{{"id": "north-gate", "arming": "never", "cameras": []string{"north"}}},
		"webhook": []map[string]any{{"id": "c1", "gates": []string{"north-gate"}, "new_secret": true}},
		"mqtt":    map[string]any{"broker": "tcp://10.0.0.2:1883", "username": "u", "password": "mqtt-pass", "devices": []any{}}}
	enrol := EnrolRequest{Central: "https://c:8443", Token: "good-token-secret", Entrance: "North"}
	sens := map[string]any{"sensors": []map[string]any{{"id": "gas-1", "kind": "gas", "source": "zigbee", "device": "kitchen", "field": "gas_density"}},
		"mqtt": map[string]any{"broker": "tcp://10.0.0.2:1883"}}
	gb := map[string]any{"enabled": true, "server_id": gbServer, "server_addr": "10.1.2.3:5060", "device_id": gbDevice, "password": "gb-platform-pass",
		"channels": []map[string]any{{"kind": "camera", "device": "north", "id": gbCam1}}}

	// Refused while the audit log cannot take them: nothing changes.
	rec.err = errors.New("outbox: disk full")
	for _, p := range []struct {
		path string
		body any
	}{{"/setup/api/zones/save", zones}, {"/setup/api/gates/save", gates}, {"/setup/api/sensors/save", sens}, {"/setup/api/gb28181/save", gb}, {"/setup/api/enrol", enrol}, {"/setup/api/finish", nil}} {
		w := call(t, s, "POST", p.path, me, s.access.code, p.body)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "audit log") {
			t.Errorf("%s unrecorded: %d %s", p.path, w.Code, w.Body)
		}
	}
	if _, changes := rec.calls(); len(changes) != 0 || s.Closed() {
		t.Fatalf("changed unrecorded: %v closed=%v", changes, s.Closed())
	}

	rec.err = nil
	for _, p := range []struct {
		path string
		body any
	}{{"/setup/api/zones/save", zones}, {"/setup/api/gates/save", gates}, {"/setup/api/sensors/save", sens}, {"/setup/api/gb28181/save", gb}, {"/setup/api/enrol", EnrolRequest{Central: "https://c:8443", Token: "good", Entrance: "North"}}} {
		if w := call(t, s, "POST", p.path, me, s.access.code, p.body); w.Code != 200 {
			t.Fatalf("%s: %d %s", p.path, w.Code, w.Body)
		}
	}
	call(t, s, "POST", "/setup/api/enrol", me, s.access.code, enrol) // refused by central, recorded as tried
	// Wrong codes are counted and logged, not sent.
	if w := call(t, s, "POST", "/setup/api/zones/save", me, wrongCode, zones); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong code: %d", w.Code)
	}
	if w := call(t, s, "POST", "/setup/api/finish", me, s.access.code, nil); w.Code != 200 || !s.Closed() {
		t.Fatalf("finish: %d", w.Code)
	}
	audits, changes := rec.calls()
	want := []struct{ action, target, detail string }{
		{"config_change", "gate-1/zones/north", `"zones":1`},
		{"config_change", "gate-1/gates", `"arming":"never"`},
		{"config_change", "gate-1/sensors", `"id":"gas-1","kind":"gas","source":"zigbee"`},
		{"config_change", "gate-1/gb28181", `"device_id":"` + gbDevice + `"`},
		{"enrol", "gate-1/enrolment", `"central":"https://c:8443"`},
		{"enrol", "gate-1/enrolment", `"entrance":"North"`},
		{"config_change", "gate-1/setup", `"setup":"finished"`},
	}
	if len(audits) != len(want) || len(changes) != 6 {
		t.Fatalf("audits %+v changes %v", audits, changes)
	}
	for i, w := range want {
		a := audits[i]
		d, _ := json.Marshal(a.Details)
		if a.Action != w.action || a.Target != w.target || a.Client != me || !strings.Contains(string(d), w.detail) {
			t.Errorf("audit %d: %+v %s, want %+v", i, a, d, w)
		}
		for _, secret := range []string{s.access.code, normCode(s.access.code), "good-token-secret", "mqtt-pass", "gb-platform-pass", `"good"`} {
			if strings.Contains(string(d), secret) {
				t.Errorf("audit %d holds a secret: %s", i, d)
			}
		}
	}
}

// TestSetupRoutesNeedTheCode walks every /setup/api/ route the page
// registers (read from setup.go, so a new one cannot be missed): without a
// session or code, and with a wrong code, each answers 401 and runs
// nothing; with the code it gets past the check. Only the login form
// takes a code in its body.
func TestSetupRoutesNeedTheCode(t *testing.T) {
	src, err := os.ReadFile("setup.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`s\.mux\.Handle\("([A-Z]+) (/setup/api/[^"]*)", s\.(open|authed)\(`)
	routes := re.FindAllStringSubmatch(string(src), -1)
	if len(routes) < 12 {
		t.Fatalf("found %d setup API routes; did the registration style change?", len(routes))
	}
	clk := newTestClock()
	s := newGuarded(t, clk, fakeBackend{})
	for i, m := range routes {
		method, path, guard := m[1], m[2], m[3]
		if path == "/setup/api/login" {
			if guard != "open" {
				t.Errorf("login is %s", guard)
			}
			continue
		}
		if guard != "authed" {
			t.Errorf("%s %s is not behind the code (%s)", method, path, guard)
			continue
		}
		// A fresh address each time: the wrong codes below must not lock
		// the walk out.
		addr := fmt.Sprintf("198.51.100.%d:4000", i+1)
		var body any
		if method == http.MethodPost {
			body = map[string]any{}
		}
		if w := call(t, s, method, path, addr, "", body); w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s without the code: %d", method, path, w.Code)
		}
		if w := call(t, s, method, path, addr, wrongCode, body); w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s with a wrong code: %d", method, path, w.Code)
		}
		if path == "/setup/api/gates/events" || path == "/setup/api/finish" {
			continue // an event stream would stay open; finish would close the page for the rest
		}
		if w := call(t, s, method, path, addr, s.access.code, body); w.Code == http.StatusUnauthorized || w.Code == http.StatusTooManyRequests {
			t.Errorf("%s %s with the code: %d", method, path, w.Code)
		}
	}
}
