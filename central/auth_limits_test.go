package central

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// loginFrom posts the login form through the server's handler as if the
// connection came from remote (host:port); xff, when given, are
// X-Forwarded-For headers in order.
func loginFrom(t *testing.T, s *Server, remote, name, pw string, xff ...string) *httptest.ResponseRecorder {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user": name, "password": pw})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/login", bytes.NewReader(body))
	req.RemoteAddr = remote
	req.Header.Set(csrfHeader, "1")
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

func wantStatus(t *testing.T, what string, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("%s: %d %s, want %d", what, rec.Code, strings.TrimSpace(rec.Body.String()), want)
	}
}

// Finding 5: twenty wrong passwords for an account from one address lock
// that address out of that account, not the account: its owner, at
// another address, logs in; at the guessing address even the right
// password is refused.
func TestLoginLockoutIsPerAddress(t *testing.T) {
	s := startServer(t)
	addUser(t, s, "pol", RolePolice, "police liaison password")
	addUser(t, s, "bo", RoleGuard, "another long password")
	const attacker, office, other = "198.51.100.7:40000", "203.0.113.9:50000", "192.0.2.44:1234"
	for i := range 20 {
		want := http.StatusUnauthorized
		if i >= loginPerUser {
			want = http.StatusTooManyRequests
		}
		wantStatus(t, "wrong password "+strconv.Itoa(i), loginFrom(t, s, attacker, "pol", "guess "+strconv.Itoa(i)), want)
	}
	rec := loginFrom(t, s, attacker, "pol", "police liaison password")
	wantStatus(t, "right password from the guessing address", rec, http.StatusTooManyRequests)
	if ra, _ := strconv.Atoi(rec.Header().Get("Retry-After")); ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1..60", rec.Header().Get("Retry-After"))
	}
	wantStatus(t, "right password from another address", loginFrom(t, s, office, "pol", "police liaison password"), http.StatusOK)
	wantStatus(t, "and from a third", loginFrom(t, s, other, "pol", "police liaison password"), http.StatusOK)
	// The guessing address made 5 failed attempts in all: it is not locked for other names.
	wantStatus(t, "another user from the guessing address", loginFrom(t, s, attacker, "bo", "another long password"), http.StatusOK)
}

// An address that fails too often, over many names, is locked for every
// name, a right password included; other addresses are not affected.
func TestLoginAddressLockCoversEveryName(t *testing.T) {
	s := startServer(t)
	addUser(t, s, "pol", RolePolice, "police liaison password")
	const spray, office = "198.51.100.8:1", "203.0.113.9:1"
	for i := range loginPerIP {
		wantStatus(t, "spray "+strconv.Itoa(i), loginFrom(t, s, spray, "name-"+strconv.Itoa(i), "x-password"), http.StatusUnauthorized)
	}
	wantStatus(t, "right password from the spraying address", loginFrom(t, s, spray, "pol", "police liaison password"), http.StatusTooManyRequests)
	wantStatus(t, "right password from another address", loginFrom(t, s, office, "pol", "police liaison password"), http.StatusOK)
}

// The per-user backstop: guesses at one account from many addresses (5
// each, under the per-address limit) lock that account out everywhere
// once they reach loginPerUserAll a window; before that its owner logs
// in from elsewhere, and other accounts are never affected.
func TestLoginPerUserBackstopAcrossAddresses(t *testing.T) {
	s := startServer(t)
	addUser(t, s, "pol", RolePolice, "police liaison password")
	addUser(t, s, "bo", RoleGuard, "another long password")
	guessFrom := func(n int) {
		addr := "198.51.100." + strconv.Itoa(n) + ":999"
		for i := range loginPerUser {
			wantStatus(t, addr+" guess "+strconv.Itoa(i), loginFrom(t, s, addr, "pol", "guess "+strconv.Itoa(i)), http.StatusUnauthorized)
		}
	}
	perAddr := loginPerUserAll / loginPerUser
	for n := 1; n < perAddr; n++ {
		guessFrom(n)
	}
	wantStatus(t, "owner below the backstop", loginFrom(t, s, "203.0.113.1:1", "pol", "police liaison password"), http.StatusOK)
	guessFrom(perAddr)
	rec := loginFrom(t, s, "203.0.113.2:1", "pol", "police liaison password")
	wantStatus(t, "right password from a fresh address once the backstop tripped", rec, http.StatusTooManyRequests)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	wantStatus(t, "one more guess from a fresh address", loginFrom(t, s, "198.51.100.200:1", "pol", "guess"), http.StatusTooManyRequests)
	wantStatus(t, "another account", loginFrom(t, s, "203.0.113.2:1", "bo", "another long password"), http.StatusOK)
}

// Lock-outs double for a repeat offender (1, 2, 4, 8 minutes, then 15 at
// most) and are forgotten loginMaxLock after the last one ended.
func TestAuthLimiterLockoutGrows(t *testing.T) {
	l := newLimiter(2, time.Minute)
	now := time.Now()
	// fill uses the key's two slots a second apart and returns the lock-out
	// the third attempt meets, measured from the first slot.
	fill := func() time.Duration {
		t.Helper()
		for range 2 {
			if d := l.take("k", now); d != 0 {
				t.Fatalf("at +%v: locked for %v, want a slot", now, d)
			}
			now = now.Add(time.Second)
		}
		d := l.take("k", now)
		if d2 := l.take("k", now.Add(d-time.Second)); d2 != time.Second {
			t.Fatalf("a second before the lock-out ends: wait %v, want 1s", d2)
		}
		now = now.Add(d)
		return d + 2*time.Second
	}
	for i, want := range []time.Duration{1, 2, 4, 8, 15, 15} {
		if got := fill(); got != want*time.Minute {
			t.Fatalf("lock-out %d: %v, want %v", i+1, got, want*time.Minute)
		}
	}
	now = now.Add(loginMaxLock - 3*time.Second) // not quite forgiven
	if got := fill(); got != loginMaxLock {
		t.Fatalf("repeat offender after a pause: %v, want %v", got, loginMaxLock)
	}
	now = now.Add(loginMaxLock)
	if got := fill(); got != time.Minute {
		t.Fatalf("after %v without a lock-out: %v, want 1m", loginMaxLock, got)
	}
}

// clientAddr: X-Forwarded-For counts only from a trusted proxy, read from
// the right; what a client wrote at the left is ignored.
func TestProxyClientAddr(t *testing.T) {
	trusted := newClientAddrs([]string{"127.0.0.1", "10.0.0.0/8", "::1"})
	none := clientAddrs{}
	tests := []struct {
		name   string
		s      clientAddrs
		remote string
		xff    []string
		want   string
	}{
		{"no proxies: header ignored", none, "127.0.0.1:5000", []string{"203.0.113.5"}, "127.0.0.1"},
		{"no proxies: no header", none, "198.51.100.3:5000", nil, "198.51.100.3"},
		{"trusted proxy, one hop", trusted, "127.0.0.1:5000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"trusted proxy, no header", trusted, "127.0.0.1:5000", nil, "127.0.0.1"},
		{"trusted proxy, empty header", trusted, "127.0.0.1:5000", []string{""}, "127.0.0.1"},
		{"spoofed left-most entry", trusted, "127.0.0.1:5000", []string{"6.6.6.6, 203.0.113.5"}, "203.0.113.5"},
		{"spoofed trusted-looking left-most entry", trusted, "127.0.0.1:5000", []string{"10.9.9.9, 203.0.113.5"}, "203.0.113.5"},
		{"spoofed header, proxy appends its own", trusted, "127.0.0.1:5000", []string{"6.6.6.6", "203.0.113.5"}, "203.0.113.5"},
		{"chain through an inner proxy", trusted, "127.0.0.1:5000", []string{"6.6.6.6, 203.0.113.5, 10.1.2.3"}, "203.0.113.5"},
		{"every hop trusted", trusted, "127.0.0.1:5000", []string{"10.0.0.9, 10.0.0.8"}, "10.0.0.9"},
		{"garbage at the left is the client's", trusted, "127.0.0.1:5000", []string{"not-an-ip, 203.0.113.5"}, "203.0.113.5"},
		{"garbage from the proxy", trusted, "127.0.0.1:5000", []string{"203.0.113.5, unknown"}, "127.0.0.1"},
		{"garbage behind an inner proxy", trusted, "127.0.0.1:5000", []string{"203.0.113.5, unknown, 10.1.2.3"}, "10.1.2.3"},
		{"hop with a port", trusted, "127.0.0.1:5000", []string{"203.0.113.5:5120"}, "203.0.113.5"},
		{"IPv6 hop with a port", trusted, "127.0.0.1:5000", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"IPv6 proxy", trusted, "[::1]:5000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped proxy", trusted, "[::ffff:127.0.0.1]:5000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"IPv4-mapped hop", trusted, "127.0.0.1:5000", []string{"::ffff:203.0.113.5"}, "203.0.113.5"},
		{"untrusted peer: header ignored", trusted, "198.51.100.1:5000", []string{"203.0.113.5"}, "198.51.100.1"},
		{"untrusted peer in a trusted-looking range", trusted, "11.0.0.1:5000", []string{"203.0.113.5"}, "11.0.0.1"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := tc.s.addr(r); got.String() != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
}

// Finding 7: behind a trusted proxy every browser is its own client for
// the limits, and a client cannot escape its lock by writing its own
// X-Forwarded-For; without trusted_proxies the header changes nothing.
func TestProxyLoginLimitsPerBrowser(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.1"}
	s := newServer(t, cfg)
	addUser(t, s, "pol", RolePolice, "police liaison password")
	const proxy = "127.0.0.1:443"
	for i := range loginPerIP {
		wantStatus(t, "spray "+strconv.Itoa(i), loginFrom(t, s, proxy, "name-"+strconv.Itoa(i), "x-password", "203.0.113.5"), http.StatusUnauthorized)
	}
	wantStatus(t, "the spraying browser", loginFrom(t, s, proxy, "pol", "police liaison password", "203.0.113.5"), http.StatusTooManyRequests)
	wantStatus(t, "the spraying browser, spoofing an address", loginFrom(t, s, proxy, "pol", "police liaison password", "192.0.2.1, 203.0.113.5"), http.StatusTooManyRequests)
	wantStatus(t, "another browser through the same proxy", loginFrom(t, s, proxy, "pol", "police liaison password", "203.0.113.6"), http.StatusOK)

	plain := newServer(t, testConfig(t.TempDir()))
	addUser(t, plain, "pol", RolePolice, "police liaison password")
	for i := range loginPerIP {
		wantStatus(t, "spray "+strconv.Itoa(i), loginFrom(t, plain, proxy, "name-"+strconv.Itoa(i), "x-password", "203.0.113.5"), http.StatusUnauthorized)
	}
	wantStatus(t, "no trusted proxies: a spoofed header is not another client", loginFrom(t, plain, proxy, "pol", "police liaison password", "203.0.113.6"), http.StatusTooManyRequests)
}

// The audit log records the browser's address for a login through a
// trusted proxy, and the connection's address when the header comes
// from elsewhere or no proxy is trusted.
func TestProxyAuditRecordsClientAddr(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.1"}
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addUser(t, s, "pol", RolePolice, "police liaison password")
	wantStatus(t, "wrong password via the proxy", loginFrom(t, s, "127.0.0.1:443", "pol", "wrong password", "6.6.6.6, 203.0.113.5"), http.StatusUnauthorized)
	wantStatus(t, "login via the proxy", loginFrom(t, s, "127.0.0.1:443", "pol", "police liaison password", "6.6.6.6, 203.0.113.5"), http.StatusOK)
	wantStatus(t, "login from outside the proxy", loginFrom(t, s, "198.51.100.20:5000", "pol", "police liaison password", "203.0.113.77"), http.StatusOK)
	es := auditEntries(t, s, "user=pol")
	wantEntry(t, es, audit.ActionLoginFailed, "pol", "", "", map[string]any{"addr": "203.0.113.5"})
	wantEntry(t, es, audit.ActionLogin, "pol", RolePolice, "", map[string]any{"addr": "203.0.113.5"})
	wantEntry(t, es, audit.ActionLogin, "pol", RolePolice, "", map[string]any{"addr": "198.51.100.20"})
	for _, e := range es {
		if bytes.Contains(e.Details, []byte("6.6.6.6")) || bytes.Contains(e.Details, []byte("203.0.113.77")) {
			t.Errorf("seq %d records a client-written address: %s", e.Seq, e.Details)
		}
	}

	// Without trusted_proxies, over a real connection from 127.0.0.1.
	plain := startServer(t)
	addUser(t, plain, "pol", RolePolice, "police liaison password")
	body, _ := json.Marshal(map[string]string{"user": "pol", "password": "police liaison password"})
	req, _ := http.NewRequest(http.MethodPost, "http://"+plain.Addr()+"/api/v1/login", bytes.NewReader(body))
	req.Header.Set(csrfHeader, "1")
	req.Header.Set("X-Forwarded-For", "203.0.113.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	wantEntry(t, auditEntries(t, plain, "user=pol"), audit.ActionLogin, "pol", RolePolice, "", map[string]any{"addr": "127.0.0.1"})
}

// trusted_proxies is checked entry by entry; each problem names its
// entry, and central.yaml's error its line.
func TestConfigTrustedProxies(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8", "::ffff:10.0.0.0/104",
		"10.0.0.1/8", "proxy.lan", "0.0.0.0/0", "10.0.0.0/33", "fe80::1%eth0", ""}
	got := map[string]string{}
	for _, fe := range cfg.Validate() {
		got[fe.Field] = fe.Msg
	}
	want := map[string]string{
		"trusted_proxies[5]":  "host bits set; did you mean 10.0.0.0/8?",
		"trusted_proxies[6]":  "is not an IP address or CIDR",
		"trusted_proxies[7]":  "trusts every address",
		"trusted_proxies[8]":  "is not an IP address or CIDR",
		"trusted_proxies[9]":  "is not an IP address or CIDR",
		"trusted_proxies[10]": "is not an IP address or CIDR",
	}
	for f, w := range want {
		if !strings.Contains(got[f], w) {
			t.Errorf("%s: %q, want it to say %q", f, got[f], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("errors: %v, want exactly %v", got, want)
	}
	if p := trustedProxies(cfg.TrustedProxies); len(p) != 5 || p[4].String() != "10.0.0.0/8" {
		t.Errorf("parsed %v", p)
	}

	path := filepath.Join(t.TempDir(), "central.yaml")
	yml := "listen: 127.0.0.1:8080\ndata_dir: /var/lib/vigil\ntrusted_proxies:\n  - 127.0.0.1\n  - 10.0.0.300/8\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), path, "central.yaml"), `central.yaml:5: trusted_proxies[1]: "10.0.0.300/8" is not an IP address or CIDR`) {
		t.Fatalf("LoadConfig: %v", err)
	}
}
