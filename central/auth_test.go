package central

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// concrete turns a route pattern into a request path.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	r := strings.NewReplacer("{id}", "nobody", "{edge}", "nobody", "{camera}", "cam", "{uid}", "u1", "{action}", "acknowledge", "{name}", "nobody")
	return method, r.Replace(path)
}

// TestAuthRoleMatrix walks every route of the table (routes.go) as nobody,
// with bad credentials and as each role: a role the table allows gets past
// the gate (whatever the handler then answers), every other role gets 403,
// no credential or a bad one gets 401; public routes need nothing. The
// scrape token reads /metrics and nothing else.
func TestAuthRoleMatrix(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MetricsTokenSHA256 = HashToken("scrape-secret")
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for p, rt := range routeTable {
		if !rt.public {
			patterns = append(patterns, p)
		}
	}
	sort.Strings(patterns)
	// Logging out ends the session: do it last.
	patterns = slices.DeleteFunc(patterns, func(p string) bool { return p == "POST /api/v1/logout" })
	patterns = append(patterns, "POST /api/v1/logout")

	for _, role := range Roles {
		b := signIn(t, s, "u-"+strings.ReplaceAll(role, "_", "-"), role)
		for _, p := range patterns {
			method, path := concrete(p)
			resp, body := b.do(method, path, map[string]string{})
			allowed := slices.Contains(routeTable[p].roles, role)
			switch {
			case allowed && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
				t.Errorf("%s: %s %s: %d %s, want allowed", role, method, path, resp.StatusCode, body)
			case !allowed && resp.StatusCode != http.StatusForbidden:
				t.Errorf("%s: %s %s: %d, want 403", role, method, path, resp.StatusCode)
			}
		}
	}
	// A session that ended, a forged cookie, a wrong bearer token: 401.
	ended := signIn(t, s, "u-ended", RoleAdmin)
	if resp, _ := ended.do(http.MethodPost, "/api/v1/logout", nil); resp.StatusCode/100 != 2 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	bad := map[string]func(*http.Request){
		"nothing":       func(*http.Request) {},
		"ended session": func(r *http.Request) { r.AddCookie(ended.cookie); r.Header.Set(csrfHeader, "1") },
		"forged cookie": func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "forged"})
			r.Header.Set(csrfHeader, "1")
		},
		"wrong bearer":     func(r *http.Request) { r.Header.Set("Authorization", "Bearer not-the-admin-token") },
		"not a bearer":     func(r *http.Request) { r.Header.Set("Authorization", "Basic "+adminToken) },
		"edge's own token": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+northToken) },
	}
	for name, set := range bad {
		for _, p := range patterns {
			method, path := concrete(p)
			req, _ := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader("{}"))
			set(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %s %s: %d, want 401", name, method, path, resp.StatusCode)
			}
		}
	}
	// The scrape token: /metrics only.
	for _, p := range patterns {
		method, path := concrete(p)
		req, _ := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer scrape-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusForbidden
		if slices.Contains(routeTable[p].roles, roleScrape) {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("scrape token: %s %s: %d, want %d", method, path, resp.StatusCode, want)
		}
	}
	for p, rt := range routeTable {
		method, path := concrete(p)
		if !rt.public || method != http.MethodGet {
			continue
		}
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("public %s: %d", path, resp.StatusCode)
		}
	}
}

// TestAuthPolicyCoversEveryRoute: central registers routes only from the
// table, every row names a route that resolves to itself, and every row
// has roles or is public; a route that shows video or evidence has an
// audit rule.
func TestAuthPolicyCoversEveryRoute(t *testing.T) {
	s := startServer(t)
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`\.Handle(?:Func)?\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(src), "\n") {
			if !re.MatchString(line) {
				continue
			}
			switch {
			case f == "routes.go" && strings.Contains(line, "mux.Handle(pattern, rt.serve(s))"):
			case f == "server.go" && strings.Contains(line, "wire.Edge"), f == "server.go" && strings.Contains(line, "wire.Enrol"),
				f == "server.go" && strings.Contains(line, `"GET /api/v1/healthz"`):
				// The TLS edge hub's own three routes (hubRoutes): edges prove themselves.
			default:
				t.Errorf("%s registers a route outside the table: %s", f, strings.TrimSpace(line))
			}
		}
	}
	mux, _ := routesMux(s)
	for p, rt := range routeTable {
		method, path := concrete(p)
		req, _ := http.NewRequest(method, "http://x"+path, nil)
		if _, got := mux.Handler(req); got != p {
			t.Errorf("table entry %q matches route %q", p, got)
		}
		if !rt.public && len(rt.roles) == 0 {
			t.Errorf("%s: neither public nor any role", p)
		}
		if rt.public && len(rt.roles) > 0 {
			t.Errorf("%s: public and roles", p)
		}
		if (strings.Contains(p, "snapshot") || strings.Contains(p, "clip") || strings.Contains(p, "thumbnail") ||
			strings.Contains(p, "video") || strings.Contains(p, "bundle") || strings.Contains(p, "/live/") || strings.Contains(p, "backup")) &&
			rt.audit.action == "" && rt.auditedBy == "" {
			t.Errorf("%s shows video, pictures or evidence but has no audit rule", p)
		}
	}
	if len(routeTable) < 40 {
		t.Errorf("only %d routes in the table", len(routeTable))
	}
}

func TestAuthLoginLogoutAndCookie(t *testing.T) {
	s := startServer(t)
	addUser(t, s, "ann", RoleGuard, "correct horse battery")
	if b, resp := login(t, s, "ann", "wrong password!"); b != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if b, resp := login(t, s, "nobody", "correct horse battery"); b != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", resp.StatusCode)
	}
	b, resp := login(t, s, "ANN ", "correct horse battery")
	if b == nil {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if !b.cookie.HttpOnly || b.cookie.SameSite != http.SameSiteStrictMode || b.cookie.Path != "/" {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/", b.cookie)
	}
	var who sessionOut
	resp, body := b.do(http.MethodGet, "/api/v1/session", nil)
	if json.Unmarshal(body, &who); resp.StatusCode != http.StatusOK || who.User != "ann" || who.Role != RoleGuard || time.Until(who.ExpiresAt) < 50*time.Minute {
		t.Fatalf("session: %d %s", resp.StatusCode, body)
	}
	// Login without the header (a cross-site form) is refused.
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/v1/login", strings.NewReader(`{"user":"ann","password":"correct horse battery"}`))
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without %s: %d", csrfHeader, resp.StatusCode)
	}
	if resp, _ := b.do(http.MethodPost, "/api/v1/logout", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := b.do(http.MethodGet, "/api/v1/session", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, want 401", resp.StatusCode)
	}
}

// Five failed logins for one user within a minute, then 429 with
// Retry-After — even with the right password; other users are not affected.
func TestAuthLoginRateLimited(t *testing.T) {
	s := startServer(t)
	addUser(t, s, "ann", RoleGuard, "correct horse battery")
	addUser(t, s, "bo", RoleGuard, "another long password")
	for i := range loginPerUser {
		if _, resp := login(t, s, "ann", "guess "+strconv.Itoa(i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	_, resp := login(t, s, "ann", "correct horse battery")
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || ra < 1 || ra > 60 {
		t.Fatalf("6th attempt: %d Retry-After %q, want 429 and 1..60", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if b, resp := login(t, s, "bo", "another long password"); b == nil {
		t.Fatalf("another user from the same address: %d", resp.StatusCode)
	}
	// Per address: many names from one address are limited too.
	for i := range loginPerIP {
		login(t, s, "spray-"+strconv.Itoa(i), "x-password")
	}
	if _, resp := login(t, s, "bo", "another long password"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after a spray from this address: %d, want 429", resp.StatusCode)
	}
}

func TestAuthLimiterWindow(t *testing.T) {
	l := newLimiter(2, time.Minute)
	t0 := time.Now()
	l.take("k", t0)
	l.take("k", t0.Add(10*time.Second))
	if d := l.take("k", t0.Add(20*time.Second)); d != 40*time.Second {
		t.Fatalf("retry after %v, want 40s", d)
	}
	l.release("k", t0.Add(10*time.Second)) // that attempt succeeded
	if d := l.take("k", t0.Add(20*time.Second)); d != 0 {
		t.Fatalf("a released slot: wait %v", d)
	}
	if d := l.take("k", t0.Add(81*time.Second)); d != 0 {
		t.Fatalf("after the window: %v", d)
	}
}

// TestLoginLimitHoldsUnderConcurrency: wrong passwords sent all at once
// cannot outrun the limit (the first version checked before hashing and
// counted after: 59 concurrent attempts all got a guess); the right
// password afterwards is refused until the window passes.
func TestLoginLimitHoldsUnderConcurrency(t *testing.T) {
	s := startServer(t)
	addUser(t, s, "cy", RoleGuard, "cy's long password")
	const n = 40
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, resp := login(t, s, "cy", "wrong password guess")
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	guesses := 0
	for c := range codes {
		switch c {
		case http.StatusUnauthorized:
			guesses++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("concurrent wrong login: %d", c)
		}
	}
	if guesses > loginPerUser {
		t.Errorf("%d concurrent wrong passwords were checked, the limit is %d", guesses, loginPerUser)
	}
	if _, resp := login(t, s, "cy", "cy's long password"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password inside the locked window: %d, want 429", resp.StatusCode)
	}
	t.Logf("%d concurrent wrong passwords: %d checked, the rest 429", n, guesses)
}

// Sessions end after the idle time and after the absolute lifetime.
func TestAuthSessionExpiry(t *testing.T) {
	ss := newSessions()
	t0 := time.Now()
	u := User{Name: "ann", Role: RoleGuard}
	tok, _ := ss.create(u, t0)
	if ss.get(tok, t0.Add(ss.idle-time.Second)) == nil {
		t.Fatal("session ended before its idle time")
	}
	if ss.get(tok, t0.Add(2*ss.idle-time.Second)) == nil {
		t.Fatal("use did not extend the session")
	}
	if ss.get(tok, t0.Add(3*ss.idle)) != nil {
		t.Fatal("idle session still valid")
	}
	tok, sess := ss.create(u, t0)
	for at := t0; at.Before(t0.Add(ss.absolute)); at = at.Add(ss.idle / 2) {
		ss.get(tok, at)
	}
	if ss.get(tok, t0.Add(ss.absolute+time.Second)) != nil {
		t.Fatal("session valid past its absolute lifetime")
	}
	select {
	case <-sess.done:
	default:
		t.Fatal("ended session's done channel is open")
	}
}

// State-changing requests signed in by cookie need the CSRF header, and
// nothing is accepted from a foreign Origin.
func TestAuthCSRF(t *testing.T) {
	s := startServer(t)
	b := signIn(t, s, "ann", RoleGuard)
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/v1/alerts/x/acknowledge", strings.NewReader("{}"))
	req.AddCookie(b.cookie)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without %s: %d, want 403", csrfHeader, resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/v1/alerts/x/acknowledge", strings.NewReader("{}"))
	req.AddCookie(b.cookie)
	req.Header.Set(csrfHeader, "1")
	req.Header.Set("Origin", "http://evil.example")
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %d, want 403", resp.StatusCode)
	}
	req.Header.Set("Origin", "http://"+s.Addr())
	req.Body = http.NoBody
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("same origin: %d, want 404 (no such alert)", resp.StatusCode)
	}
}

// The server records the signed-in user as the actor, whatever the body says;
// a police liaison may read but not act.
func TestAuthActorIsSessionUser(t *testing.T) {
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	edge.sendAlert(testAlert(northID, "a-1"))
	guard := signIn(t, s, "ann", RoleGuard)
	resp, body := guard.do(http.MethodPost, "/api/v1/alerts/a-1/acknowledge", map[string]string{"actor": "mallory"})
	var rec Record
	if json.Unmarshal(body, &rec); resp.StatusCode != http.StatusOK || rec.History[len(rec.History)-1].Actor != "ann" {
		t.Fatalf("acknowledge: %d %s", resp.StatusCode, body)
	}
	police := signIn(t, s, "pol", RolePolice)
	if resp, _ := police.do(http.MethodGet, "/api/v1/alerts/a-1", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("police reads alert: %d", resp.StatusCode)
	}
	if resp, _ := police.do(http.MethodPost, "/api/v1/alerts/a-1/resolve", map[string]string{"note": "x"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("police resolves: %d, want 403", resp.StatusCode)
	}
}

// Logging out (or an admin deleting the user) closes that user's console.
func TestAuthLogoutClosesConsole(t *testing.T) {
	s := startServer(t)
	b := signIn(t, s, "ann", RoleGuard)
	h := http.Header{"Cookie": {b.cookie.String()}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/api/v1/console/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // the snapshot
		t.Fatal(err)
	}
	admin := signIn(t, s, "root", RoleAdmin)
	if resp, _ := admin.do(http.MethodDelete, "/api/v1/users/ann", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete user: %d", resp.StatusCode)
	}
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	_, _, err = ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != closeSessionEnded {
		t.Fatalf("console after the user was deleted: %v, want close %d", err, closeSessionEnded)
	}
	if resp, _ := b.do(http.MethodGet, "/api/v1/session", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("deleted user's session: %d", resp.StatusCode)
	}
}

// Admins manage users over the API; passwords are stored as argon2id and
// never shown.
func TestAuthUsersAPI(t *testing.T) {
	s := startServer(t)
	s.authAPI.pwParams = cheapParams
	admin := signIn(t, s, "root", RoleAdmin)
	if resp, _ := admin.do(http.MethodPost, "/api/v1/users", map[string]string{"name": "cy", "role": RoleSupervisor, "password": "short"}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("short password: %d", resp.StatusCode)
	}
	if resp, _ := admin.do(http.MethodPost, "/api/v1/users", map[string]string{"name": "cy", "role": "king", "password": "long enough password"}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad role: %d", resp.StatusCode)
	}
	if resp, body := admin.do(http.MethodPost, "/api/v1/users", map[string]string{"name": "cy", "role": RoleSupervisor, "password": "long enough password"}); resp.StatusCode != http.StatusCreated || bytes.Contains(body, []byte("argon2")) {
		t.Fatalf("add: %d %s", resp.StatusCode, body)
	}
	if resp, _ := admin.do(http.MethodPost, "/api/v1/users", map[string]string{"name": "cy", "role": RoleGuard, "password": "long enough password"}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("add again: %d", resp.StatusCode)
	}
	if b, resp := login(t, s, "cy", "long enough password"); b == nil {
		t.Fatalf("new user logs in: %d", resp.StatusCode)
	}
	resp, body := admin.do(http.MethodGet, "/api/v1/users", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"cy"`)) || bytes.Contains(body, []byte("argon2")) {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if u, _ := s.auth.users.get("cy"); !strings.HasPrefix(u.Hash, "$argon2id$v=19$") {
		t.Fatalf("stored hash %q", u.Hash)
	}
}

func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || !ValidPasswordHash(h) {
		t.Fatalf("hash %q", h)
	}
	if !checkPassword(h, "correct horse battery") || checkPassword(h, "correct horse batterY") {
		t.Fatal("check")
	}
	if h == HashPassword("correct horse battery") {
		t.Fatal("same hash twice: no salt")
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5"} {
		if ValidPasswordHash(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Users declared in central.yaml are stored at start; the file decides
// their role and password.
func TestAuthConfigUsers(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Users = []UserConfig{{Name: "boss", Role: RoleAdmin, PasswordHash: hashPasswordWith("boss password 1", cheapParams)}}
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if b, resp := login(t, s, "boss", "boss password 1"); b == nil {
		t.Fatalf("config user: %d", resp.StatusCode)
	}
	cfg.Users[0].Role = "nobody"
	cfg.Users[0].PasswordHash = "plain"
	fes := cfg.Validate()
	if len(fes) != 2 {
		t.Fatalf("validate: %v", fes)
	}
}
