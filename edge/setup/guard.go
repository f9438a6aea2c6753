package setup

import (
	"crypto/rand"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// The setup code and how guessing it is held back.
//
// The code is 12 random digits (10^12 codes), shown in groups of four
// (1234-5678-9012) and accepted with or without the dashes and spaces.
//
// Every way a code is presented — the login form's body and the
// X-Setup-Code header that scripts send with any /setup/api/ request —
// goes through one guard: a try takes a slot BEFORE the code is compared,
// so concurrent tries cannot all be compared at once. Per client address
// (RemoteAddr's IP; an IPv6 client's /64, which one machine usually owns
// whole) at most perAddrFailures wrong codes count in failWindow; then the
// address is locked out, firstLock the first time and twice as long each
// time it is locked again (capped at maxLock; forgotten after maxLock
// without a lock, or at a right code). A lock of one address does not
// lock out the installer at another address.
//
// The global backstop: at most globalFailures wrong codes from all
// addresses together in failWindow, so an attacker with many addresses
// still gets only ~100 guesses a minute (10^12 codes: ~19,000 years for
// half of them). Its cost: while someone keeps sending that many wrong
// codes, nobody can enter the code — the installer included — until a
// minute after they stop. Logged-in sessions (the page's cookie) are not
// code tries and keep working; cameras, alerts and central are untouched.
const (
	codeDigits      = 12
	perAddrFailures = 10
	globalFailures  = 100
	failWindow      = time.Minute
	firstLock       = time.Minute
	maxLock         = time.Hour
)

// newCode makes a setup code: codeDigits random digits in groups of 4.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Exp(big.NewInt(10), big.NewInt(codeDigits), nil))
	if err != nil {
		return "", err
	}
	d := fmt.Sprintf("%0*d", codeDigits, n)
	var groups []string
	for i := 0; i < len(d); i += 4 {
		groups = append(groups, d[i:min(i+4, len(d))])
	}
	return strings.Join(groups, "-"), nil
}

// normCode is a code as compared: without dashes and white space.
func normCode(c string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, c)
}

// strongCode reports whether a kept code is at least as strong as the
// codes the box makes now (an 8-digit code of earlier versions is not).
func strongCode(c string) bool {
	n := normCode(c)
	if len(n) < codeDigits {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// clientKey is the address a code try is counted against: RemoteAddr's
// IP (the box is not behind a proxy: no forwarded headers are trusted);
// IPv6 addresses by their /64.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

// addrTries is one address's recent wrong codes and lock.
type addrTries struct {
	fails    []time.Time // wrong codes in the last failWindow
	inflight int         // slots taken, codes not compared yet
	until    time.Time   // locked out until
	locks    int         // locks so far: the next lasts firstLock << locks
}

// guard counts code tries (see above). Its zero value is ready.
type guard struct {
	mu       sync.Mutex
	addrs    map[string]*addrTries
	global   []time.Time // wrong codes from everyone in the last failWindow
	inflight int
	pruned   time.Time
}

// refusal says why a try was not let through.
type refusal struct {
	wait   time.Duration // Retry-After
	global bool          // the global backstop, not this address
}

func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= failWindow {
		i++
	}
	return ts[i:]
}

// take reserves a try for addr; a nil refusal: compare the code, then
// call done exactly once.
func (g *guard) take(addr string, now time.Time) *refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addrs == nil {
		g.addrs = map[string]*addrTries{}
	}
	g.prune(now)
	g.global = recent(g.global, now)
	if len(g.global)+g.inflight >= globalFailures {
		wait := time.Second
		if len(g.global) > 0 {
			wait = max(wait, g.global[0].Add(failWindow).Sub(now))
		}
		return &refusal{wait: wait, global: true}
	}
	a := g.addrs[addr]
	if a == nil {
		a = &addrTries{}
		g.addrs[addr] = a
	}
	if now.Before(a.until) {
		return &refusal{wait: a.until.Sub(now)}
	}
	if a.locks > 0 && now.Sub(a.until) >= maxLock {
		a.locks = 0 // quiet for long enough: the next lock starts short again
	}
	a.fails = recent(a.fails, now)
	if len(a.fails)+a.inflight >= perAddrFailures {
		wait := time.Second
		if len(a.fails) > 0 {
			wait = max(wait, a.fails[0].Add(failWindow).Sub(now))
		}
		return &refusal{wait: wait}
	}
	a.inflight++
	g.inflight++
	return nil
}

// done ends a try that take let through. A right code forgets the
// address; a wrong one counts, and may lock the address (lockedFor) or
// trip the global backstop.
func (g *guard) done(addr string, now time.Time, right bool) (lockedFor time.Duration, globalTripped bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	a := g.addrs[addr]
	if a == nil { // cannot happen: take made it and prune keeps it while in flight
		return 0, false
	}
	a.inflight--
	if right {
		if a.inflight == 0 {
			delete(g.addrs, addr)
		} else {
			a.fails = nil
		}
		return 0, false
	}
	g.global = append(recent(g.global, now), now)
	a.fails = append(recent(a.fails, now), now)
	if len(a.fails) >= perAddrFailures {
		d := maxLock
		if a.locks < 16 {
			d = min(maxLock, firstLock<<a.locks)
		}
		a.locks++
		a.until = now.Add(d)
		a.fails = nil
		lockedFor = d
	}
	return lockedFor, len(g.global) == globalFailures
}

// prune forgets addresses with nothing left to remember (g.mu held).
// The global backstop bounds how many addresses are kept: ~100 new ones
// a minute, each forgotten maxLock after its last lock ended.
func (g *guard) prune(now time.Time) {
	if now.Sub(g.pruned) < failWindow {
		return
	}
	g.pruned = now
	for k, a := range g.addrs {
		a.fails = recent(a.fails, now)
		if a.inflight == 0 && len(a.fails) == 0 && !now.Before(a.until.Add(maxLock)) {
			delete(g.addrs, k)
		}
	}
}

// writeTooMany answers a refused try: 429 with Retry-After.
func writeTooMany(w http.ResponseWriter, ref *refusal) {
	secs := int(math.Ceil(ref.wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("too many wrong setup codes from your address; try again in %s", roundWait(secs))
	if ref.global {
		msg = fmt.Sprintf("too many wrong setup codes were sent to this box; the code is not accepted from anyone for %s", roundWait(secs))
	}
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": msg, "retry_after": secs})
}

func roundWait(secs int) string {
	if secs < 90 {
		return fmt.Sprintf("%d seconds", secs)
	}
	return fmt.Sprintf("%d minutes", (secs+59)/60)
}
