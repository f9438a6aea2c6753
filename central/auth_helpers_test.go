package central

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// cheapParams keep password hashing fast under -race; the hash string
// carries its parameters, so verification is the real code path.
var cheapParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

// addUser stores (or replaces) a user with a cheap hash of pw.
func addUser(t *testing.T, s *Server, name, role, pw string) {
	t.Helper()
	if _, err := s.auth.users.add(name, role, hashPasswordWith(pw, cheapParams), "test", true); err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
}

// browser is a signed-in console: its session cookie and the CSRF header.
type browser struct {
	t      *testing.T
	s      *Server
	cookie *http.Cookie
}

// signIn creates a user with role and logs in as it.
func signIn(t *testing.T, s *Server, name, role string) *browser {
	t.Helper()
	pw := "password-of-" + name
	addUser(t, s, name, role, pw)
	b, resp := login(t, s, name, pw)
	if b == nil {
		t.Fatalf("login %s: %d", name, resp.StatusCode)
	}
	return b
}

// login posts the login form; a nil browser if it was refused.
func login(t *testing.T, s *Server, name, pw string) (*browser, *http.Response) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user": name, "password": pw})
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/v1/login", bytes.NewReader(body))
	req.Header.Set(csrfHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && resp.StatusCode == http.StatusOK {
			return &browser{t: t, s: s, cookie: c}, resp
		}
	}
	return nil, resp
}

// do sends a request with the session cookie (and, for writes, the CSRF
// header); body is JSON-encoded unless nil.
func (b *browser) do(method, path string, body any) (*http.Response, []byte) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, "http://"+b.s.Addr()+path, rd)
	req.AddCookie(b.cookie)
	if method != http.MethodGet {
		req.Header.Set(csrfHeader, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}
