package central

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sessions and login limits.
const (
	sessionCookie   = "vigil_session"
	csrfHeader      = "X-Vigil-Request" // any value; a cross-site form cannot set it
	sessionIdle     = time.Hour         // no request for this long ends a session
	sessionAbsolute = 12 * time.Hour    // a shift; then log in again
	loginWindow     = time.Minute
	loginPerUser    = 5                // failed logins per user name from one client address per window
	loginPerIP      = 20               // failed logins per client address per window, all names (a guard room shares one)
	loginPerUserAll = 20               // failed logins per user name per window, all addresses (the backstop)
	loginMaxLock    = 15 * time.Minute // lock-outs double for repeat offenders, up to this
	maxHashing      = 2                // concurrent password hashes (each takes ~19 MiB)
	bearerActor     = "admin-token"
	scrapeActor     = "metrics-scraper" // the scrape token (metrics_token_sha256)
)

// Roles of the route table (routes.go).
var (
	rolesAll      = Roles
	rolesWatch    = []string{RoleGuard, RoleSupervisor, RolePolice, RoleAdmin}
	rolesWorkflow = []string{RoleGuard, RoleSupervisor, RoleAdmin}
	rolesEnrol    = []string{RoleInstaller, RoleAdmin}
	rolesAdmin    = []string{RoleAdmin}
	rolesAudit    = []string{RoleSupervisor, RoleAdmin}
)

// principal is who makes a request: a signed-in user or the admin token.
type principal struct {
	Name string
	Role string
	sess *session // nil for the bearer token
	// forwarded: another replica authenticated the request and forwarded
	// it here (replicas.go); clientAddr is the client's address there.
	forwarded  bool
	clientAddr string
}

type principalKey struct{}

func principalOf(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// session is one login. Only the SHA-256 of its token is kept.
type session struct {
	key      string
	user     string
	role     string
	created  time.Time
	lastSeen time.Time
	saved    time.Time     // lastSeen as last written to the store
	done     chan struct{} // closed when the session ends; consoles on it close
	timer    *time.Timer
	ended    bool
}

// sessions holds the logins, kept in the store (sessionstore.go) so that
// a restart of central signs nobody out.
type sessions struct {
	mu       sync.Mutex
	m        map[string]*session
	book     sessionBook // nil: in memory only (set by restore)
	users    *users      // whose sessions these are (set by restore)
	idle     time.Duration
	absolute time.Duration
}

func newSessions() *sessions {
	return &sessions{m: map[string]*session{}, idle: sessionIdle, absolute: sessionAbsolute}
}

func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func (ss *sessions) create(u User, now time.Time) (string, *session) {
	var b [32]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	s := &session{key: tokenKey(tok), user: u.Name, role: u.Role, created: now, lastSeen: now, done: make(chan struct{})}
	ss.mu.Lock()
	ss.m[s.key] = s
	s.timer = time.AfterFunc(ss.absolute, func() { ss.end(s) })
	ss.sweepLocked(now)
	ss.save(s)
	ss.mu.Unlock()
	return tok, s
}

// get returns the live session for a cookie value and marks it used.
func (ss *sessions) get(tok string, now time.Time) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	key := tokenKey(tok)
	s := ss.m[key]
	if s == nil || now.Sub(s.lastSeen) > ss.idle {
		// Another replica may know it (shared book), or have seen it since.
		if found := ss.lookupLocked(key, now); found != nil {
			s = found
		}
	}
	if s == nil {
		return nil
	}
	if now.Sub(s.lastSeen) > ss.idle || now.Sub(s.created) > ss.absolute {
		ss.endLocked(s)
		return nil
	}
	s.lastSeen = now
	if now.Sub(s.saved) >= sessionSaveEvery {
		ss.save(s)
	}
	return s
}

func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	ss.endLocked(s)
	ss.mu.Unlock()
}

func (ss *sessions) endLocked(s *session) {
	if ss.dropLocked(s) {
		ss.forget(s.key)
	}
}

// dropLocked ends s here (its consoles close) without forgetting it in
// the book: another replica ended it already. It reports whether s was
// live.
func (ss *sessions) dropLocked(s *session) bool {
	if s.ended {
		return false
	}
	s.ended = true
	s.timer.Stop()
	close(s.done)
	delete(ss.m, s.key)
	return true
}

// userChanged applies another replica's change of a user (found false:
// deleted at at): if its role or password changed, or it is gone, its
// sessions made before the change end here.
func (a *auth) userChanged(name string, x User, found bool, at time.Time) {
	if a.users.reloaded(name, x, found) {
		a.sessions.endUserBefore(name, at)
	}
}

// usersReloaded applies the users as stored now (after the replicas'
// notices may have been missed); of those known before the reload began,
// the ones not stored any more are gone.
func (a *auth) usersReloaded(all, known []User) {
	now := time.Now()
	seen := map[string]bool{}
	for _, x := range all {
		seen[x.Name] = true
		a.userChanged(x.Name, x, true, now)
	}
	for _, x := range known {
		if !seen[x.Name] {
			a.userChanged(x.Name, User{}, false, now)
		}
	}
}

// endedElsewhere ends a session here that another replica ended.
func (ss *sessions) endedElsewhere(key string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s := ss.m[key]; s != nil {
		ss.dropLocked(s)
	}
}

// endUserBefore ends the user's sessions made before at (zero: all).
func (ss *sessions) endUserBefore(name string, at time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.m {
		if s.user == name && (at.IsZero() || s.created.Before(at)) {
			ss.endLocked(s)
		}
	}
}

// endUser ends every session of a user (deleted, or role changed).
func (ss *sessions) endUser(name string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.m {
		if s.user == name {
			ss.endLocked(s)
		}
	}
}

func (ss *sessions) sweepLocked(now time.Time) {
	_, shared := ss.book.(sharedSessionBook)
	for _, s := range ss.m {
		switch {
		case now.Sub(s.lastSeen) <= ss.idle:
		case shared:
			// Idle here, maybe busy on another replica: get looks it up
			// before ending it.
		default:
			ss.endLocked(s)
		}
	}
}

// closeAll closes every open console as central shuts down; the sessions
// themselves stay in the store for the next start.
func (ss *sessions) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.book = nil
	for _, s := range ss.m {
		ss.endLocked(s)
	}
}

func (s *session) expiresAt(idle, absolute time.Duration) time.Time {
	t := s.lastSeen.Add(idle)
	if a := s.created.Add(absolute); a.Before(t) {
		t = a
	}
	return t.UTC()
}

// limiter counts login attempts that may fail, per key, in a sliding
// window. An attempt takes its slot before the password is hashed, in the
// same locked step that checks the limit, so concurrent attempts cannot all
// pass the check first; a successful login gives its slot back.
//
// A key whose slots are used up is locked out: the first time until its
// oldest slot leaves the window, then, each time it is locked out again,
// twice as long as the time before (2, 4, 8 windows ... at most maxLock).
// A key forgets its lock-outs after maxLock without one.
type limiter struct {
	mu      sync.Mutex
	keys    map[string]*limitKey
	max     int
	window  time.Duration
	maxLock time.Duration
	sweepAt int // forget stale keys when there are this many
}

// limitKey is one key's state.
type limitKey struct {
	slots    []time.Time // attempts in the window that were not given back
	until    time.Time   // locked out until
	lockedAt time.Time   // when the last lock-out was decided
	strikes  int         // lock-outs remembered; the next lasts window<<strikes
}

const limiterSweep = 10000

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{keys: map[string]*limitKey{}, max: max, window: window, maxLock: loginMaxLock, sweepAt: limiterSweep}
}

// take reserves a slot for an attempt at now, or reports how long key must
// wait when it is locked out (its slots are used up).
func (l *limiter) take(key string, now time.Time) (wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k == nil {
		k = &limitKey{}
		l.keys[key] = k
	}
	l.prune(k, now)
	if now.Before(k.until) {
		return k.until.Sub(now)
	}
	if len(k.slots) >= l.max {
		d := l.window
		for i := 0; i < k.strikes && d < l.maxLock; i++ {
			d *= 2
		}
		d = min(d, max(l.maxLock, l.window))
		k.until = k.slots[len(k.slots)-l.max].Add(d) // > now: the slot is in the window
		k.lockedAt = now
		k.strikes++
		return k.until.Sub(now)
	}
	k.slots = append(k.slots, now)
	if len(l.keys) >= l.sweepAt { // a spray of names or addresses: forget the stale ones
		for key, k := range l.keys {
			if l.prune(k, now); len(k.slots) == 0 && k.strikes == 0 {
				delete(l.keys, key)
			}
		}
		l.sweepAt = max(limiterSweep, 2*len(l.keys))
	}
	return 0
}

// release gives back the slot an attempt took at at (it succeeded). A
// lock-out decided while that slot was held counted an attempt that did
// not fail: it is undone if the key is now under its limit.
func (l *limiter) release(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k == nil {
		return
	}
	for i := len(k.slots) - 1; i >= 0; i-- {
		if k.slots[i].Equal(at) {
			k.slots = slices.Delete(k.slots, i, i+1)
			if k.strikes > 0 && k.until.After(k.lockedAt) && !k.lockedAt.Before(at) && len(k.slots) < l.max {
				k.until = k.lockedAt
				k.strikes--
			}
			break
		}
	}
	if len(k.slots) == 0 && k.strikes == 0 {
		delete(l.keys, key)
	}
}

// prune drops k's slots that left the window and forgets its lock-outs
// maxLock after the last one ended.
func (l *limiter) prune(k *limitKey, now time.Time) {
	i := 0
	for i < len(k.slots) && now.Sub(k.slots[i]) >= l.window {
		i++
	}
	k.slots = k.slots[i:]
	if k.strikes > 0 && now.Sub(k.until) >= l.maxLock {
		k.strikes = 0
	}
}

// auth is the server's login state.
//
// Failed logins are counted three ways, each a limiter (above):
//
//   - perUserAddr: one user name from one client address, loginPerUser a
//     window. A guesser meets this first, and it shuts only that address out
//     of that account: the user, at another address, still logs in.
//   - perIP: one client address, all names, loginPerIP a window. An address
//     that fails this often is hostile (a spray of names, or one name
//     guessed by many): it is locked out for every name, a right password
//     included. Other addresses are not touched.
//   - perUser: one user name from all addresses, loginPerUserAll a window:
//     the backstop against guessing one account from many addresses. One
//     address adds at most loginPerUser failures a window to it (fewer once
//     its lock-outs grow), so it trips only when at least
//     loginPerUserAll/loginPerUser addresses guess together; then that one
//     account is locked out from everywhere for the lock-out, the price of
//     not letting a botnet guess on.
//
// An attempt is checked in that order and takes a slot in all three or in
// none, so attempts a lock refuses add to no other count. Every lock covers
// one address or one account, never the whole console — as long as each
// browser has its own address: behind a reverse proxy, list it in
// trusted_proxies (clientaddr.go), or every browser is the proxy. Lock-outs
// double for repeat offenders, up to loginMaxLock.
type auth struct {
	users       *users
	sessions    *sessions
	perUserAddr *limiter // name + "\x00" + address
	perIP       *limiter // address
	perUser     *limiter // name
	hashing     chan struct{}
}

func newAuth(u *users) *auth {
	return &auth{users: u, sessions: newSessions(), perUserAddr: newLimiter(loginPerUser, loginWindow),
		perIP: newLimiter(loginPerIP, loginWindow), perUser: newLimiter(loginPerUserAll, loginWindow),
		hashing: make(chan struct{}, maxHashing)}
}

// take reserves a login attempt's slots, before its password is hashed:
// in all three limits, or, when one is locked out, in none, reporting how
// long to wait.
func (a *auth) take(name, addr string, now time.Time) time.Duration {
	if wait := a.perIP.take(addr, now); wait > 0 {
		return wait
	}
	if wait := a.perUserAddr.take(name+"\x00"+addr, now); wait > 0 {
		a.perIP.release(addr, now)
		return wait
	}
	if wait := a.perUser.take(name, now); wait > 0 {
		a.perIP.release(addr, now)
		a.perUserAddr.release(name+"\x00"+addr, now)
		return wait
	}
	return 0
}

// release gives back the slots an attempt took at now (it succeeded, or
// was abandoned before its password was checked).
func (a *auth) release(name, addr string, now time.Time) {
	a.perIP.release(addr, now)
	a.perUserAddr.release(name+"\x00"+addr, now)
	a.perUser.release(name, now)
}

// policy is the console port's access policy: who is asking (session
// cookie, admin or scrape bearer token), whether the route table lets
// that role through, the CSRF and origin checks, and then the audit rule
// (auditor.serveAudited). New (server.go) builds it.
type policy struct {
	adminSum  []byte // SHA-256 of the admin bearer token (nil: none)
	scrapeSum []byte // SHA-256 of the metrics scrape token (nil: none)
	auth      *auth  // sessions and the users they belong to
	audit     *auditor
	log       *slog.Logger
	// replicas forwards requests for an edge connected to another
	// replica (nil: one central); replicaKey checks what others forward.
	replicas   *replicaRouter
	replicaKey ed25519.PublicKey
}

// withAuth puts the route policy in front of mux: the request's principal
// (session cookie or the admin bearer token) must hold a role the route
// allows; state-changing requests signed in by cookie must carry the
// X-Vigil-Request header; a request from a foreign Origin is refused.
func (pl *policy) withAuth(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "", "request from another origin")
			return
		}
		rt, listed := routeTable[pattern]
		roles := rt.roles
		if rt.public || (!listed && !strings.HasPrefix(r.URL.Path, "/api/")) {
			pl.audit.serveAudited(mux, pattern, w, r)
			return
		}
		p, status, msg := pl.principal(r)
		if p == nil {
			deny(w, r, status, msg)
			return
		}
		if p.sess != nil && stateChanging(r.Method) && r.Header.Get(csrfHeader) == "" {
			deny(w, r, http.StatusForbidden, "missing "+csrfHeader+" header")
			return
		}
		if listed && !slices.Contains(roles, p.Role) {
			pl.log.Info("request refused by role", "user", p.Name, "role", p.Role, "method", r.Method, "path", r.URL.Path)
			deny(w, r, http.StatusForbidden, "your role ("+p.Role+") may not do this")
			return
		}
		if rt.edge != "" && pl.replicas != nil && pl.replicas.forward(w, r, p, pathValue(pattern, r.URL.Path, rt.edge)) {
			return // the edge's replica served and audited it
		}
		pl.audit.serveAudited(mux, pattern, w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// deny answers an API request with JSON and a page request with a short
// HTML page that leads back to the console.
func deny(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status == http.StatusUnauthorized && r.Header.Get("Authorization") != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-admin"`)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeError(w, status, "", msg)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><title>Vigil</title><h1 data-testid="denied">` +
		strconv.Itoa(status) + " " + http.StatusText(status) + `</h1><p><a href="/">Vigil console</a></p>`))
}

func stateChanging(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// sameOrigin is false when the request names an Origin that is not this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// principal finds who is asking: the admin bearer token, else the session
// cookie. A wrong bearer token is refused even with a good cookie.
func (pl *policy) principal(r *http.Request) (*principal, int, string) {
	if r.Header.Get(hdrReplicaIdentity) != "" {
		p, err := forwardedPrincipal(r, pl.replicaKey, time.Now())
		if err != nil {
			pl.log.Warn("forwarded request refused", "from", r.RemoteAddr, "err", err)
			return nil, http.StatusUnauthorized, err.Error()
		}
		return p, 0, ""
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		sum := sha256.Sum256([]byte(token))
		if ok && strings.EqualFold(scheme, "Bearer") && pl.scrapeSum != nil && subtle.ConstantTimeCompare(sum[:], pl.scrapeSum) == 1 {
			return &principal{Name: scrapeActor, Role: roleScrape}, 0, ""
		}
		if pl.adminSum == nil {
			return nil, http.StatusForbidden, "no admin token configured (admin_token_sha256 in central.yaml)"
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], pl.adminSum) != 1 {
			return nil, http.StatusUnauthorized, "admin token required"
		}
		return &principal{Name: bearerActor, Role: RoleAdmin}, 0, ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, http.StatusUnauthorized, "log in first"
	}
	sess := pl.auth.sessions.get(c.Value, time.Now())
	if sess == nil {
		return nil, http.StatusUnauthorized, "session expired; log in again"
	}
	if u, ok := pl.auth.users.get(sess.user); !ok || u.Role != sess.role {
		pl.auth.sessions.end(sess)
		return nil, http.StatusUnauthorized, "session ended; log in again"
	}
	return &principal{Name: sess.user, Role: sess.role, sess: sess}, 0, ""
}

// allowed re-checks the principal's role inside a handler (the route
// policy already did; this keeps a handler safe if it is mounted elsewhere).
func allowed(w http.ResponseWriter, r *http.Request, roles ...string) bool {
	p := principalOf(r)
	if p == nil {
		writeError(w, http.StatusUnauthorized, "", "log in first")
		return false
	}
	if !slices.Contains(roles, p.Role) {
		writeError(w, http.StatusForbidden, "", "your role ("+p.Role+") may not do this")
		return false
	}
	return true
}

// sessionOut is the body of login and GET /api/v1/session.
type sessionOut struct {
	User      string    `json:"user"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// authAPI is the console's account component: login, logout, the
// session, and user administration. New (server.go) builds it.
type authAPI struct {
	auth     *auth          // users, sessions, login limits
	pwParams PasswordParams // cost of new password hashes (tests lower it)
	// clientAddr is the browser's address, behind a trusted proxy too
	// (clientaddr.go).
	clientAddr    func(*http.Request) string
	allowed       func(w http.ResponseWriter, r *http.Request, roles ...string) bool
	internalError func(http.ResponseWriter, *http.Request, error)
	log           *slog.Logger
}

// handleLogin serves POST /api/v1/login with {"user": "...", "password": "..."}.
func (a *authAPI) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(csrfHeader) == "" {
		writeError(w, http.StatusForbidden, "", "missing "+csrfHeader+" header")
		return
	}
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !readBody(w, r, &req) {
		return
	}
	name := strings.ToLower(strings.TrimSpace(req.User))
	if name == "" || req.Password == "" || len(req.Password) > maxPasswordLen || len(name) > 64 {
		writeError(w, http.StatusBadRequest, "", "user and password are required")
		return
	}
	now := time.Now()
	au := a.auth
	ip := a.clientAddr(r) // behind a trusted proxy, the browser's address
	// The attempt takes its slots before the password is hashed: 59
	// concurrent wrong passwords get 5 tries, not argon2's speed.
	if wait := au.take(name, ip, now); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		a.log.Warn("login rate-limited", "user", name, "remote", ip)
		writeError(w, http.StatusTooManyRequests, "", "too many failed logins; try again later")
		return
	}
	select {
	case au.hashing <- struct{}{}:
	case <-r.Context().Done():
		au.release(name, ip, now)
		return
	}
	u, ok := au.users.authenticate(name, req.Password)
	<-au.hashing
	if !ok {
		a.log.Warn("login failed", "user", name, "remote", ip)
		writeError(w, http.StatusUnauthorized, "", "wrong user name or password")
		return
	}
	au.release(name, ip, now)
	tok, sess := au.sessions.create(u, time.Now())
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r)})
	a.log.Info("login", "user", u.Name, "role", u.Role, "remote", ip)
	writeJSON(w, http.StatusOK, sessionOut{User: u.Name, Role: u.Role, ExpiresAt: sess.expiresAt(au.sessions.idle, au.sessions.absolute)})
}

func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// handleLogout serves POST /api/v1/logout.
func (a *authAPI) handleLogout(w http.ResponseWriter, r *http.Request) {
	if p := principalOf(r); p != nil && p.sess != nil {
		a.auth.sessions.end(p.sess)
		a.log.Info("logout", "user", p.Name)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r)})
	w.WriteHeader(http.StatusNoContent)
}

// handleSession serves GET /api/v1/session: who is signed in, until when.
func (a *authAPI) handleSession(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	out := sessionOut{User: p.Name, Role: p.Role}
	if p.sess != nil {
		a.auth.sessions.mu.Lock()
		out.ExpiresAt = p.sess.expiresAt(a.auth.sessions.idle, a.auth.sessions.absolute)
		a.auth.sessions.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, out)
}

// handleUsers serves GET /api/v1/users (admin).
func (a *authAPI) handleUsers(w http.ResponseWriter, r *http.Request) {
	if !a.allowed(w, r, RoleAdmin) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": a.auth.users.list(), "roles": Roles})
}

// handleAddUser serves POST /api/v1/users (admin) with {"name", "role",
// "password"}; "replace": true changes an existing user's role and password.
func (a *authAPI) handleAddUser(w http.ResponseWriter, r *http.Request) {
	if !a.allowed(w, r, RoleAdmin) {
		return
	}
	var req struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
		Replace  bool   `json:"replace"`
	}
	if !readBody(w, r, &req) {
		return
	}
	if err := ValidatePassword(req.Password); err != nil {
		writeError(w, http.StatusBadRequest, "password", err.Error())
		return
	}
	if err := ValidateUserName(req.Name); err != nil {
		writeError(w, http.StatusBadRequest, "name", err.Error())
		return
	}
	if !ValidRole(req.Role) {
		writeError(w, http.StatusBadRequest, "role", "role must be one of "+strings.Join(Roles, ", "))
		return
	}
	a.auth.hashing <- struct{}{}
	hash := hashPasswordWith(req.Password, a.pwParams)
	<-a.auth.hashing
	u, err := a.auth.users.add(req.Name, req.Role, hash, principalOf(r).Name, req.Replace)
	switch {
	case errors.Is(err, ErrUserExists):
		writeError(w, http.StatusConflict, "name", "a user with this name exists")
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	a.auth.sessions.endUser(u.Name) // a new password or role: log in again
	a.log.Info("user saved", "user", u.Name, "role", u.Role, "by", principalOf(r).Name)
	writeJSON(w, http.StatusCreated, u.Public())
}

// handleDeleteUser serves DELETE /api/v1/users/{name} (admin) and ends
// that user's sessions at once.
func (a *authAPI) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	if !a.allowed(w, r, RoleAdmin) {
		return
	}
	name := r.PathValue("name")
	if err := a.auth.users.remove(name); errors.Is(err, ErrUserUnknown) {
		writeError(w, http.StatusNotFound, "", "user not found")
		return
	} else if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.auth.sessions.endUser(name)
	a.log.Info("user deleted", "user", name, "by", principalOf(r).Name)
	w.WriteHeader(http.StatusNoContent)
}
