package setup

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// codeAccess is who may use the page: the setup code, tried through the
// guard (guard.go), and the sessions a right code opens (a cookie each,
// kept across the edge's restarts in SessionsFile).
type codeAccess struct {
	code    string
	dataDir string
	now     func() time.Time
	log     *slog.Logger
	guard   guard        // code tries
	checked atomic.Int64 // codes compared (tests)

	mu       sync.Mutex
	sessions map[string]time.Time // sessionKey → expiry
}

// session reports whether a session cookie is live.
func (s *codeAccess) session(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, found := s.sessions[sessionKey(tok)]
	return found && s.now().Before(exp)
}

// clear ends every session (the page closed).
func (s *codeAccess) clear() {
	s.mu.Lock()
	clear(s.sessions)
	s.mu.Unlock()
	os.Remove(filepath.Join(s.dataDir, SessionsFile))
}

// sessionKey is how a session cookie is kept: its SHA-256, so the file
// of sessions does not hold usable cookies.
func sessionKey(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// loadSessions reads the sessions an earlier run of the edge kept (it
// restarted on a new config revision): the installer stays logged in.
func (s *codeAccess) loadSessions() {
	b, err := os.ReadFile(filepath.Join(s.dataDir, SessionsFile))
	if err != nil {
		return
	}
	var kept map[string]time.Time
	if json.Unmarshal(b, &kept) != nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range kept {
		if now.Before(exp) && now.Add(sessionTTL).After(exp) {
			s.sessions[k] = exp
		}
	}
}

// saveSessionsLocked writes the live sessions (s.mu held), mode 0600.
func (s *codeAccess) saveSessionsLocked() {
	now := s.now()
	for k, exp := range s.sessions {
		if !now.Before(exp) {
			delete(s.sessions, k)
		}
	}
	b, _ := json.Marshal(s.sessions)
	path := filepath.Join(s.dataDir, SessionsFile)
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		s.log.Warn("setup sessions not kept across a restart", "err", err)
	}
}

// checkCode compares a presented code; only tryCode calls it, once the
// guard gave the try a slot.
func (s *codeAccess) checkCode(c string) bool {
	s.checked.Add(1)
	return subtle.ConstantTimeCompare([]byte(normCode(c)), []byte(normCode(s.code))) == 1
}

func (s *codeAccess) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad request")
		return
	}
	if !s.tryCode(w, r, body.Code) {
		return
	}
	now := s.now()
	s.mu.Lock()
	var b [24]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	s.sessions[sessionKey(tok)] = now.Add(sessionTTL)
	s.saveSessionsLocked()
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/setup/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
	s.log.Info("installer logged in to the setup page", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// tryCode checks a presented code through the guard. false: the answer
// (401 or 429) is written. A wrong code is counted and logged, not sent
// to central.
func (s *codeAccess) tryCode(w http.ResponseWriter, r *http.Request, code string) bool {
	addr := clientKey(r)
	if ref := s.guard.take(addr, s.now()); ref != nil {
		writeTooMany(w, ref)
		return false
	}
	right := s.checkCode(code)
	lockedFor, tripped := s.guard.done(addr, s.now(), right)
	if right {
		return true
	}
	s.log.Warn("wrong setup code", "remote", r.RemoteAddr, "path", r.URL.Path)
	if lockedFor > 0 {
		s.log.Warn("setup code locked out for an address after repeated wrong codes", "address", addr, "for", lockedFor)
	}
	if tripped {
		s.log.Error("setup code refused for everyone: too many wrong codes from many addresses", "per", failWindow, "limit", globalFailures)
	}
	writeError(w, http.StatusUnauthorized, "wrong setup code")
	return false
}
