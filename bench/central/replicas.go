package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
)

// pgCluster is the throwaway PostgreSQL server of this bench run, started
// when a run first needs it; each run gets a database of its own.
type pgCluster struct {
	srv *postgres.Server
	dbs int
}

func (c *pgCluster) database(name string) (*postgres.Server, string, error) {
	if c.srv == nil {
		srv, err := postgres.StartCluster(nil)
		if err != nil {
			return nil, "", err
		}
		c.srv = srv
	}
	c.dbs++
	url, err := c.srv.NewDB(fmt.Sprintf("%s_%d", name, c.dbs))
	return c.srv, url, err
}

func (c *pgCluster) close() {
	if c.srv != nil {
		c.srv.Close()
	}
}

// storeFor makes the setting a -stores name stands for.
func (c *pgCluster) storeFor(name string) (storeSetting, error) {
	switch name {
	case "badger":
		return storeSetting{name: name, replicas: 1}, nil
	case "pg", "pg2":
		srv, url, err := c.database(name)
		if err != nil {
			return storeSetting{}, err
		}
		n := 1
		if name == "pg2" {
			n = 2
		}
		return storeSetting{name: name, url: url, replicas: n, pg: srv}, nil
	}
	return storeSetting{}, fmt.Errorf("unknown store %q (badger, pg, pg2)", name)
}

func (r *rig) storeText() string {
	switch {
	case r.pg == nil:
		return "Badger, one central"
	case len(r.procs) == 1:
		return "PostgreSQL 15 (local, fsync off), one central"
	}
	return fmt.Sprintf("PostgreSQL 15 (local, fsync off), %d replicas behind a TCP load balancer each for edges and consoles", len(r.procs))
}

func (r *rig) sumText() string {
	if len(r.procs) > 1 {
		return fmt.Sprintf(", sum of %d replicas", len(r.procs))
	}
	return ""
}

func (r *rig) firstOnly() string {
	if len(r.procs) > 1 {
		return " (replica a)"
	}
	return ""
}

// pgCPU is the CPU time of every process of the PostgreSQL server so far:
// the postmaster (with the backends it has reaped) and its live children.
// Children are found by parent, not process group: each backend makes
// itself a session leader (setsid).
func (r *rig) pgCPU() time.Duration {
	if r.pg == nil {
		return 0
	}
	postmaster := r.pg.Pid()
	ents, _ := os.ReadDir("/proc")
	var sum int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		if len(f) < 15 || (pid != postmaster && f[1] != strconv.Itoa(postmaster)) {
			continue
		}
		for _, i := range []int{11, 12} {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			sum += v
		}
		if pid == postmaster { // exited backends' time, once reaped
			for _, i := range []int{13, 14} {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				sum += v
			}
		}
	}
	return time.Duration(sum) * time.Second / 100 // USER_HZ
}

// runFailover: two replicas on one PostgreSQL database behind the load
// balancers; half way through, one is killed with SIGKILL and not
// started again. Its edges reconnect through the balancer to the other,
// its consoles too. Measured: kill → every edge connected again, kill →
// every console receiving again (an alert raised after the kill), and
// every alert raised (so every one acknowledged) on every console once.
func runFailover(o options, dir string, log *slog.Logger, st storeSetting) (result, error) {
	var res result
	r, err := setUpStore(o, dir, log, st, func(string) string { return "" }, "")
	if err != nil {
		return res, err
	}
	defer r.tearDown()

	// Watch every edge's connection and every console's traffic from
	// before the kill, so a drop and the reconnect after it are seen
	// however quickly they follow each other.
	w := newFailoverWatch(r)
	stopWatch := w.run()
	var ackedAtKill int
	var killed time.Time
	victim := r.procs[len(r.procs)-1]
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		time.Sleep(o.failoverDuration / 2)
		r.fleet.mu.Lock()
		killed = time.Now()
		w.kill(killed)
		victim.kill9()
		ackedAtKill = len(r.fleet.acked) // the victim acknowledges nothing after the kill
		r.fleet.mu.Unlock()
	}()
	r.raiseFor(o.failoverRate, o.failoverDuration)
	<-killDone
	// Recovery is complete when every edge that dropped is back and every
	// console has an alert raised after the kill.
	waitFor("recovery", time.Minute, func() bool { return w.recovered(o.edges) })
	stopWatch()
	res.add("store", "%s", r.storeText())
	res.add("rate, run", "%.0f alerts/s for %v; replica %s killed (SIGKILL) at %v, not restarted",
		o.failoverRate, o.failoverDuration, filepath.Base(victim.dir), o.failoverDuration/2)
	res.add("machine load average", "%s", loadAvg())
	r.checks(&res, 3*time.Minute, 0)
	e := w.edgeFigures()
	c := w.consoleFigures()
	res.add("edges on the killed replica (dropped) / reconnected", "%d / %d", e.dropped, e.back)
	res.add("kill → last edge noticed the drop / → every edge connected again", "%s / %s", ms(e.lastDrop), ms(e.lastBack))
	res.add("consoles whose connection dropped / reconnected / receiving after the kill (of all)", "%d / %d / %d (%d)", c.dropped, c.back, c.receiving, len(r.cons.list))
	res.add("kill → last console noticed the drop / → last reconnected / → every console receiving again", "%s / %s / %s",
		ms(c.lastDrop), ms(c.lastBack), ms(c.lastReceiving))
	res.add("kill → edge connected again, p50 / max (edges that dropped)", "%s / %s", ms(e.backH.quantile(0.5)), ms(e.backH.max))
	res.add("kill → console reconnected, p50 / max (consoles that dropped)", "%s / %s", ms(c.backH.quantile(0.5)), ms(c.backH.max))
	res.add("kill → first alert raised after the kill, p50 / max: consoles that dropped; consoles that kept their connection", "%s / %s; %s / %s",
		ms(c.recvDroppedH.quantile(0.5)), ms(c.recvDroppedH.max), ms(c.recvKeptH.quantile(0.5)), ms(c.recvKeptH.max))
	res.add("the dropped edges' last uplink errors", "%s", w.edgeErrors())
	res.recovery = max(e.lastBack, c.lastReceiving)
	res.add("failover time (kill → every edge connected and every console receiving)", "%s", ms(res.recovery))
	complete, err := r.checkStored(&res, ackedAtKill, "in the database (read through the survivor)")
	if err != nil {
		return res, err
	}
	res.ok = res.ok && complete && e.back == e.dropped && c.back == c.dropped && c.receiving == len(r.cons.list)
	if res.recovery > 5*time.Second {
		res.add("note", "failover above 5 s")
	}
	return res, nil
}

// failoverWatch samples the edges' connection state and the consoles'
// connections every 5 ms around the kill.
type failoverWatch struct {
	r *rig

	mu       sync.Mutex
	killedAt time.Time
	edgeDrop []time.Time // per edge: when it was first seen disconnected after the kill
	edgeBack []time.Time // and then connected again
}

func newFailoverWatch(r *rig) *failoverWatch {
	return &failoverWatch{r: r, edgeDrop: make([]time.Time, len(r.fleet.edges)), edgeBack: make([]time.Time, len(r.fleet.edges))}
}

func (w *failoverWatch) kill(at time.Time) {
	w.mu.Lock()
	w.killedAt = at
	w.mu.Unlock()
	for _, c := range w.r.cons.list {
		c.mu.Lock()
		c.killedAt = at
		c.mu.Unlock()
	}
}

// run samples until the returned stop is called.
func (w *failoverWatch) run() (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now := time.Now()
			w.mu.Lock()
			if !w.killedAt.IsZero() {
				for i, e := range w.r.fleet.edges {
					up := e.up.Connected()
					switch {
					case !up && w.edgeDrop[i].IsZero():
						w.edgeDrop[i] = now
					case up && !w.edgeDrop[i].IsZero() && w.edgeBack[i].IsZero():
						w.edgeBack[i] = now
					}
				}
			}
			w.mu.Unlock()
		}
	}()
	return func() { close(done); <-ended }
}

// recovered: every edge is connected, each that dropped seen back, and
// every console received an alert raised after the kill.
func (w *failoverWatch) recovered(edges int) bool {
	if w.r.fleet.connected() != edges {
		return false
	}
	w.mu.Lock()
	for i := range w.edgeDrop {
		if !w.edgeDrop[i].IsZero() && w.edgeBack[i].IsZero() {
			w.mu.Unlock()
			return false
		}
	}
	w.mu.Unlock()
	for _, c := range w.r.cons.list {
		c.mu.Lock()
		ok := !c.receivingAt.IsZero()
		c.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

type failoverFigures struct {
	dropped, back, receiving          int
	lastDrop, lastBack, lastReceiving time.Duration
	// back: kill → reconnected, per edge or console that dropped;
	// receiving: kill → first alert raised after the kill, for the
	// consoles that dropped and for those that kept their connection.
	backH, recvDroppedH, recvKeptH histogram
}

func (w *failoverWatch) edgeFigures() failoverFigures {
	var f failoverFigures
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.edgeDrop {
		if w.edgeDrop[i].IsZero() {
			continue
		}
		f.dropped++
		f.lastDrop = max(f.lastDrop, w.edgeDrop[i].Sub(w.killedAt))
		if !w.edgeBack[i].IsZero() {
			f.back++
			f.lastBack = max(f.lastBack, w.edgeBack[i].Sub(w.killedAt))
			f.backH.add(w.edgeBack[i].Sub(w.killedAt))
		}
	}
	return f
}

func (w *failoverWatch) consoleFigures() failoverFigures {
	var f failoverFigures
	for _, c := range w.r.cons.list {
		c.mu.Lock()
		if !c.droppedAt.IsZero() {
			f.dropped++
			f.lastDrop = max(f.lastDrop, c.droppedAt.Sub(c.killedAt))
			if !c.backAt.IsZero() {
				f.back++
				f.lastBack = max(f.lastBack, c.backAt.Sub(c.killedAt))
				f.backH.add(c.backAt.Sub(c.killedAt))
			}
		}
		if !c.receivingAt.IsZero() {
			f.receiving++
			f.lastReceiving = max(f.lastReceiving, c.receivingAt.Sub(c.killedAt))
			if c.droppedAt.IsZero() {
				f.recvKeptH.add(c.receivingAt.Sub(c.killedAt))
			} else {
				f.recvDroppedH.add(c.receivingAt.Sub(c.killedAt))
			}
		}
		c.mu.Unlock()
	}
	return f
}

// addrRe is a host:port in an error, its port dropped so equal errors
// of different connections count together.
var addrRe = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+):\d+`)

// edgeErrors counts the last session error of the edges that dropped:
// why their first tries after the kill failed, if they did.
func (w *failoverWatch) edgeErrors() string {
	count := map[string]int{}
	w.mu.Lock()
	for i, e := range w.r.fleet.edges {
		if !w.edgeDrop[i].IsZero() {
			count[addrRe.ReplaceAllString(e.up.LastError(), "$1")]++
		}
	}
	w.mu.Unlock()
	var parts []string
	for msg, n := range count {
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		parts = append(parts, fmt.Sprintf("%d× %q", n, msg))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
