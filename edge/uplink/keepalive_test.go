package uplink_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/edge/uplink/linkproxy"
	"github.com/vigil-perimeter/vigil/wire"
)

// waitFor polls cond every 10 ms for at most limit and returns how long it
// took; it fails the test past the limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// assertOnceEach checks central stored every id exactly once.
func assertOnceEach(t *testing.T, s *central.Server, ids []string) {
	t.Helper()
	count := map[string]int{}
	for _, r := range allAlerts(t, s) {
		count[r.ID]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s stored %d times, want once", id, count[id])
		}
	}
}

func hasReason(h uplink.Health, prefix string) bool {
	for _, r := range h.Reasons {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// A central that hangs (SIGSTOP: the sockets stay open, nothing answers)
// must show as disconnected within seconds, alerts waiting on it make the
// edge degraded, and once central answers again the edge is back within
// 2 s and delivers each pending alert once. The edge runs with the
// production backoff (500 ms .. 30 s) and keepalive defaults.
func TestHungCentralDetectedAndRejoined(t *testing.T) {
	s := startCentral(t, t.TempDir(), "127.0.0.1:0")
	proxy, err := linkproxy.Start(s.EdgeAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	cred := enrolEdge(t, s, "gate-h", proxy.Addr())
	e := startEdge(t, "gate-h", uplink.Config{Credential: &cred, BackoffMin: 500 * time.Millisecond, BackoffMax: 30 * time.Second,
		Heartbeat: 10 * time.Second, PendingMaxAge: 3 * time.Second})
	ids := []string{e.raise(t, 0, wire.Red)}
	waitUntil(t, "first alert delivered", func() bool { return e.box.Len() == 0 && e.up.Connected() })
	if h := e.up.Health(); !h.Connected || len(h.Reasons) != 0 {
		t.Fatalf("healthy edge reports %+v", h)
	}

	proxy.Freeze()
	frozen := time.Now()
	for i := 1; i <= 20; i++ {
		ids = append(ids, e.raise(t, i, wire.Yellow))
	}
	detect := waitFor(t, "edge sees the hung central", 6*time.Second, func() bool { return !e.up.Health().Connected })
	t.Logf("hung central detected after %v", detect.Round(time.Millisecond))
	h := e.up.Health()
	if !hasReason(h, "not connected to central") || h.Pending != 20 {
		t.Fatalf("health while central hangs: %+v", h)
	}
	waitFor(t, "degraded for stale alerts", 6*time.Second, func() bool { return hasReason(e.up.Health(), "oldest pending alert") })
	t.Logf("degraded for alerts older than 3 s %v after the hang began; health %+v", time.Since(frozen).Round(time.Millisecond), e.up.Health())
	// Stay hung past the edge's handshake timeout (10 s), so a dial into
	// the hung central has timed out and the edge is back in its backoff.
	time.Sleep(time.Until(frozen.Add(17 * time.Second)))
	if e.up.Connected() {
		t.Fatal("connected through a hung central")
	}

	proxy.Thaw()
	back := waitFor(t, "edge reconnected after central answered again", 2*time.Second, e.up.Connected)
	t.Logf("reconnected %v after central answered again (hung 17 s)", back.Round(time.Millisecond))
	drained := waitFor(t, "pending alerts delivered", waitMax, func() bool { return e.box.Len() == 0 })
	t.Logf("20 pending alerts delivered %v after reconnecting", drained.Round(time.Millisecond))
	if h := e.up.Health(); !h.Connected || len(h.Reasons) != 0 {
		t.Fatalf("health after recovery: %+v", h)
	}
	assertOnceEach(t, s, ids)
}

// A long outage must not leave the edge asleep in its backoff once central
// is back: with the backoff pinned at 30 s (what it reaches after a long
// outage), the edge still reconnects within 2 s of central listening again.
func TestLongBackoffDoesNotDelayReconnect(t *testing.T) {
	dir := t.TempDir()
	s := startCentral(t, dir, "127.0.0.1:0")
	hub := s.EdgeAddr()
	cred := enrolEdge(t, s, "gate-l", "")
	e := startEdge(t, "gate-l", uplink.Config{Credential: &cred, BackoffMin: 30 * time.Second, BackoffMax: 30 * time.Second})
	ids := []string{e.raise(t, 0, wire.Red)}
	waitUntil(t, "first alert delivered", func() bool { return e.box.Len() == 0 && e.up.Connected() })

	s.Close()
	waitFor(t, "edge sees central gone", 6*time.Second, func() bool { return !e.up.Connected() })
	ids = append(ids, e.raise(t, 1, wire.Red), e.raise(t, 2, wire.Yellow))
	time.Sleep(3 * time.Second) // the edge is inside a 15..30 s backoff now
	if h := e.up.Health(); h.Connected || !hasReason(h, "not connected to central") {
		t.Fatalf("health with central down: %+v", h)
	}

	s = startCentral(t, dir, hub)
	back := waitFor(t, "edge reconnected after central restarted", 2*time.Second, e.up.Connected)
	t.Logf("reconnected %v after central listened again (backoff 30 s)", back.Round(time.Millisecond))
	waitFor(t, "pending alerts delivered", waitMax, func() bool { return e.box.Len() == 0 })
	assertOnceEach(t, s, ids)
}
