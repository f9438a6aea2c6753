package central

import (
	"fmt"
	"sync"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
)

// startReplica starts a central on the shared PostgreSQL database url,
// with a data directory of its own.
func startReplica(t *testing.T, url string) *Server {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.Store = url
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

// TestReplicasShareEveryAlertOnceInOrder runs two centrals on one
// PostgreSQL database: edges on either raise alerts at once, and a
// console on each gets every alert exactly once, numbered without a gap,
// whichever central the alert arrived at; a console that connects later
// to either gets the same history.
func TestReplicasShareEveryAlertOnceInOrder(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "replicas")
	a, b := startReplica(t, url), startReplica(t, url)
	onA, onB := dialConsole(t, a, 0), dialConsole(t, b, 0)
	onA.backlog()
	onB.backlog()

	const n = 60
	north, south := connectEdge(t, a, northID, northToken), connectEdge(t, b, southID, southToken)
	var wg sync.WaitGroup
	for _, e := range []struct {
		c  *edgeClient
		id string
	}{{north, northID}, {south, southID}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				e.c.send("alert", testAlert(e.id, fmt.Sprintf("%s-%d", e.id, i)))
			}
		}()
	}
	wg.Wait()
	for _, e := range []struct {
		c  *edgeClient
		id string
	}{{north, northID}, {south, southID}} {
		for i := range n {
			e.c.expectAck(fmt.Sprintf("%s-%d", e.id, i))
		}
	}

	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprintf("%s-%d", northID, i)] = true
		want[fmt.Sprintf("%s-%d", southID, i)] = true
	}
	var orders [][]string
	for name, c := range map[string]*consoleClient{"A": onA, "B": onB} {
		seen := map[string]bool{}
		var order []string
		for seq := uint64(1); seq <= 2*n; seq++ {
			m := c.next()
			if m.Type != "alert" || m.Alert == nil || m.Seq != seq {
				t.Fatalf("console on %s: message %d is %+v, want alert seq %d", name, seq, m, seq)
			}
			if !want[m.Alert.ID] || seen[m.Alert.ID] {
				t.Fatalf("console on %s: alert %s unexpected or twice", name, m.Alert.ID)
			}
			seen[m.Alert.ID] = true
			order = append(order, m.Alert.ID)
		}
		if m, err := c.tryNext(waitFor / 10); err == nil {
			t.Fatalf("console on %s: more than the %d alerts: %+v", name, 2*n, m)
		}
		orders = append(orders, order)
	}
	if fmt.Sprint(orders[0]) != fmt.Sprint(orders[1]) {
		t.Fatalf("the consoles saw different orders:\nA %v\nB %v", orders[0], orders[1])
	}
	for _, s := range []*Server{a, b} {
		later := dialConsole(t, s, 0)
		recs, ready := later.backlog()
		if len(recs) != 2*n || ready != 2*n {
			t.Fatalf("a later console: %d records, ready %d; want %d", len(recs), ready, 2*n)
		}
		for i, r := range recs {
			if r.ID != orders[0][i] {
				t.Fatalf("a later console's history differs at %d: %s, want %s", i, r.ID, orders[0][i])
			}
		}
	}
}
