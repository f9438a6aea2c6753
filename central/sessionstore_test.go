package central

import (
	"net/http"
	"testing"
	"time"
)

// A guard signed in before central restarts is still signed in after it;
// a session that was logged out, or whose user was removed, is not.
func TestSessionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	s := newServer(t, testConfig(dir))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	guard := signIn(t, s, "night-guard", RoleGuard)
	gone := signIn(t, s, "leaver", RoleGuard)
	out := signIn(t, s, "logged-out", RoleGuard)
	admin := signIn(t, s, "root", RoleAdmin)
	if resp, _ := out.do(http.MethodPost, "/api/v1/logout", nil); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r := newServer(t, testConfig(dir))
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// The users were added through the API, so they are in the store too.
	admin.s, guard.s, gone.s, out.s = r, r, r, r
	if resp, body := admin.do(http.MethodDelete, "/api/v1/users/leaver", nil); resp.StatusCode >= 300 {
		t.Fatalf("delete user: %d %s", resp.StatusCode, body)
	}
	if resp, body := guard.do(http.MethodGet, "/api/v1/session", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("guard after the restart: %d %s, want still signed in", resp.StatusCode, body)
	}
	if resp, _ := out.do(http.MethodGet, "/api/v1/session", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("logged-out session after the restart: %d, want 401", resp.StatusCode)
	}
	if resp, _ := gone.do(http.MethodGet, "/api/v1/session", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("removed user's session: %d, want 401", resp.StatusCode)
	}
}

// Expired sessions are not brought back.
func TestRestoreDropsExpiredSessions(t *testing.T) {
	s := startServer(t)
	b := signIn(t, s, "early", RoleGuard)
	_ = b
	ss := newSessions()
	n, err := ss.restore(badgerSessions{s.store.db}, s.auth.users, time.Now().Add(sessionAbsolute+time.Minute))
	if err != nil || n != 0 {
		t.Fatalf("restored %d (%v) sessions past their absolute expiry, want 0", n, err)
	}
	n, err = newSessions().restore(badgerSessions{s.store.db}, s.auth.users, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("an expired session was dropped from the store, yet %d restored (%v)", n, err)
	}
}
