package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-perimeter/vigil/edge/uplink/linkproxy"
	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/internal/testrig/tcplb"
	"github.com/vigil-perimeter/vigil/wire"
)

// rig is central (one process, or several replicas on one PostgreSQL
// database behind load balancers), the fleet and the consoles of one run.
type rig struct {
	proc    *centralProc   // the first (or only) central
	procs   []*centralProc // every replica, proc first
	edgeLB  *tcplb.LB      // with replicas: in front of their edge hubs
	consLB  *tcplb.LB      // with replicas: in front of their console ports
	pg      *postgres.Server
	fleet   *fleet
	cons    *consoles
	measure atomic.Bool
}

// storeSetting is where the centrals of a run keep their alerts.
type storeSetting struct {
	name     string // badger, pg, pg2
	url      string // PostgreSQL database ("": Badger)
	replicas int
	pg       *postgres.Server
}

func setUp(o options, dir string, log *slog.Logger, via func(hub string) string, profile string) (*rig, error) {
	return setUpStore(o, dir, log, storeSetting{name: "badger", replicas: 1}, via, profile)
}

// setUpStore starts the centrals of st (replicas behind a tcplb each for
// the edges' and the consoles' port), enrols the fleet through the first
// one, connects it (through via, or the balancer) and starts the consoles.
func setUpStore(o options, dir string, log *slog.Logger, st storeSetting, via func(hub string) string, profile string) (*rig, error) {
	r := &rig{pg: st.pg}
	var err error
	if r.procs, err = newCentralProcs(dir, st.replicas, st.url); err != nil {
		return nil, err
	}
	r.proc = r.procs[0]
	r.proc.profile = profile
	for _, p := range r.procs {
		if err := p.start(); err != nil {
			r.stopProcs()
			return nil, err
		}
	}
	edgeURL := via(r.proc.hub)
	consAPI := r.proc.api
	if len(r.procs) > 1 {
		var hubs, apis []string
		for _, p := range r.procs {
			hubs, apis = append(hubs, p.hub), append(apis, p.api)
		}
		if r.edgeLB, err = tcplb.New(hubs...); err != nil {
			r.stopProcs()
			return nil, err
		}
		if r.consLB, err = tcplb.New(apis...); err != nil {
			r.stopProcs()
			return nil, err
		}
		edgeURL, consAPI = "wss://"+r.edgeLB.Addr()+wire.EdgePath, r.consLB.Addr()
	}
	start := time.Now()
	if r.fleet, err = newFleet(r.proc, o.edges, o.edgeDBs, dir, o.snapshot, log); err != nil {
		r.stopProcs()
		return nil, err
	}
	fmt.Printf("(%s: %d edges enrolled in %v)\n", dir, o.edges, time.Since(start).Round(time.Millisecond))
	r.fleet.start(edgeURL)
	if err := waitFor("edges connected", 60*time.Second, func() bool { return r.fleet.connected() == o.edges }); err != nil {
		r.tearDown()
		return nil, err
	}
	r.cons = startConsoles(consAPI, r.proc.guard, o.consoles, o.edges, &r.measure, r.fleet.durableAt)
	if err := waitFor("consoles started", 30*time.Second, func() bool {
		for _, c := range r.cons.list {
			c.mu.Lock()
			s := c.started
			c.mu.Unlock()
			if !s {
				return false
			}
		}
		return true
	}); err != nil {
		r.tearDown()
		return nil, err
	}
	return r, nil
}

func (r *rig) tearDown() {
	if r.cons != nil {
		r.cons.stop()
	}
	if r.fleet != nil {
		r.fleet.close()
	}
	r.stopProcs()
}

func (r *rig) stopProcs() {
	for _, lb := range []*tcplb.LB{r.edgeLB, r.consLB} {
		if lb != nil {
			lb.Close()
		}
	}
	for _, p := range r.procs {
		p.stop()
	}
}

// usage sums the CPU and memory of every running replica.
func (r *rig) usage() usage {
	var sum usage
	for _, p := range r.procs {
		if !p.running() {
			continue
		}
		u, _ := readUsage(p.pid())
		sum.cpu += u.cpu
		sum.rss += u.rss
		sum.peak += u.peak
		sum.anon += u.anon
		sum.file += u.file
	}
	return sum
}

func waitFor(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// raiseFor raises at rate until d has passed and returns when it stopped.
func (r *rig) raiseFor(rate float64, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r.fleet.raise(ctx, rate)
}

// checks adds the per-alert verdict to res: every console has every
// raised alert once, in order.
func (r *rig) checks(res *result, drainTimeout time.Duration, before uint64) tally {
	raised := r.fleet.raisedTotal()
	_, complete := r.cons.waitAll(r.fleet.raisedTotal, drainTimeout)
	t := r.cons.tally()
	want := raised * uint64(len(r.cons.list))
	res.add("alerts raised (all edges, this run)", "%d", raised-before)
	res.add("deliveries to consoles, all so far: expected / delivered", "%d / %d", want, t.delivered)
	res.lost, res.dups = t.gaps+(want-min(want, t.delivered)), t.dups
	res.add("lost (gaps per edge) / duplicates", "%d / %d", res.lost, res.dups)
	res.add("console reconnects (cut off for falling behind)", "%d (%d)", t.reconnects, t.cutoffs)
	res.add("edge append errors", "%d", r.fleet.appendErrs.Load())
	res.ok = complete && t.gaps == 0 && t.dups == 0 && t.delivered == want && r.fleet.appendErrs.Load() == 0
	return t
}

// runLoad: sustained rate, latency from the edge raising an alert (before
// its outbox write) to each console receiving it, central's CPU and memory;
// one result per rate, on one central (or set of replicas) and fleet.
func runLoad(o options, dir string, log *slog.Logger, st storeSetting) ([]result, error) {
	r, err := setUpStore(o, dir, log, st, func(string) string { return "" }, o.centralProfile)
	if err != nil {
		return nil, err
	}
	defer r.tearDown()
	var out []result
	for _, rate := range o.rates {
		out = append(out, r.loadAt(o, rate))
	}
	return out, nil
}

func (r *rig) loadAt(o options, rate float64) result {
	var res result
	r.cons.resetLatency()
	r.fleet.resetCounts()
	start := r.fleet.raisedTotal()
	var u0, u1 usage
	var pg0, pg1 time.Duration
	var raised0, raised1 uint64
	var self0, self1 time.Duration
	var t0, t1 time.Time
	var commit0, commit1, batch0, batch1 [][2]float64
	var load0, load1 string
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(o.warmup)
		r.measure.Store(true)
		u0, pg0 = r.usage(), r.pgCPU()
		self0, t0, raised0, load0 = selfCPU(), time.Now(), r.fleet.raisedTotal(), loadAvg()
		commit0, _ = promHistogram(r.proc.api, r.proc.adminToken, "vigil_central_commit_seconds")
		batch0, _ = promHistogram(r.proc.api, r.proc.adminToken, "vigil_central_commit_batch_size")
		r.fleet.appendMu.Lock()
		r.fleet.appendLat = histogram{}
		r.fleet.appendMu.Unlock()
		time.Sleep(o.duration)
		u1, pg1 = r.usage(), r.pgCPU()
		self1, t1, raised1, load1 = selfCPU(), time.Now(), r.fleet.raisedTotal(), loadAvg()
		commit1, _ = promHistogram(r.proc.api, r.proc.adminToken, "vigil_central_commit_seconds")
		batch1, _ = promHistogram(r.proc.api, r.proc.adminToken, "vigil_central_commit_batch_size")
		r.measure.Store(false)
	}()
	r.raiseFor(rate, o.warmup+o.duration)
	<-done
	wall := t1.Sub(t0)
	res.add("target rate", "%.0f alerts/s, %d B snapshot each, %d edges, %d consoles", rate, o.snapshot, o.edges, o.consoles)
	res.add("store", "%s", r.storeText())
	res.add("sustained rate (measured window)", "%.0f alerts/s over %v", float64(raised1-raised0)/wall.Seconds(), wall.Round(time.Second))
	t := r.checks(&res, 2*time.Minute, start)
	res.add("edge → console latency p50 / p99 / max", "%s / %s / %s (%d samples)", ms(t.lat.quantile(0.5)), ms(t.lat.quantile(0.99)), ms(t.lat.max), t.lat.n)
	r.fleet.appendMu.Lock()
	al := r.fleet.appendLat
	r.fleet.appendMu.Unlock()
	res.add("of which: edge outbox write (fsync) p50 / p99", "%s / %s", ms(al.quantile(0.5)), ms(al.quantile(0.99)))
	res.add("durable on the edge → console (uplink, central, fan-out) p50 / p99 / max", "%s / %s / %s", ms(t.sent.quantile(0.5)), ms(t.sent.quantile(0.99)), ms(t.sent.max))
	if commit1 != nil {
		res.add("of which: central batch commit (fsync) p50 / p99; items per batch p50 / p99"+r.firstOnly(), "%s / %s; %.0f / %.0f",
			secs(promQuantile(commit0, commit1, 0.5)), secs(promQuantile(commit0, commit1, 0.99)),
			promQuantile(batch0, batch1, 0.5), promQuantile(batch0, batch1, 0.99))
	}
	res.cpu = 100 * float64(u1.cpu-u0.cpu) / float64(wall)
	res.rss = u1.rss
	res.lat50, res.lat99 = t.lat.quantile(0.5), t.lat.quantile(0.99)
	res.add("central CPU (separate process"+r.sumText()+")", "%.0f %% of one core", res.cpu)
	res.add("central memory"+r.sumText()+": RSS end (anonymous + mapped files) / peak", "%s (%s + %s) / %s", mib(u1.rss), mib(u1.anon), mib(u1.file), mib(u1.peak))
	if r.pg != nil {
		res.pgCPU = 100 * float64(pg1-pg0) / float64(wall)
		res.add("PostgreSQL CPU (all its processes)", "%.0f %% of one core", res.pgCPU)
	}
	res.add("load generator CPU (edges + consoles)", "%.0f %% of one core", 100*float64(self1-self0)/float64(wall))
	res.add("machine load average (start, end of window)", "%s, %s", load0, load1)
	if t.lat.quantile(0.99) > 250*time.Millisecond {
		res.add("note", "p99 above the 250 ms target")
	}
	return res
}

// runPartition: the edges' link is cut while they keep raising alerts;
// after it is restored, how long until central has all and every console
// has all.
func runPartition(o options, dir string, log *slog.Logger) (result, error) {
	var res result
	var proxy *linkproxy.Proxy
	r, err := setUp(o, dir, log, func(hub string) string {
		p, err := linkproxy.Start(hub)
		if err != nil {
			panic(err)
		}
		proxy = p
		return "wss://" + p.Addr() + wire.EdgePath
	}, "")
	if err != nil {
		return res, err
	}
	defer r.tearDown()
	defer proxy.Close()

	r.raiseFor(o.partitionRate, 5*time.Second)
	proxy.Cut()
	cut := time.Now()
	if err := waitFor("edges notice the cut", 30*time.Second, func() bool { return r.fleet.connected() == 0 }); err != nil {
		return res, err
	}
	r.raiseFor(o.partitionRate, o.partition-time.Since(cut))
	backlog := r.fleet.pending()
	proxy.Restore()
	restored := time.Now()
	if err := waitFor("outboxes drained", 10*time.Minute, func() bool { return r.fleet.pending() == 0 }); err != nil {
		return res, err
	}
	stored := time.Since(restored)
	res.add("link cut for", "%v, raising %.0f alerts/s throughout", o.partition, o.partitionRate)
	res.add("machine load average at restore", "%s", loadAvg())
	res.add("backlog in the edges' outboxes at restore", "%d alerts", backlog)
	res.add("restore → every outbox empty (central has all)", "%.1f s", stored.Seconds())
	drain, _ := r.cons.waitAll(r.fleet.raisedTotal, 10*time.Minute)
	res.add("restore → every console has every alert", "%.1f s", (stored + drain).Seconds())
	r.checks(&res, time.Minute, 0)
	return res, nil
}

// runRestart: central is killed with SIGKILL half way through a run and
// started again on the same data; nothing it acknowledged may be lost.
func runRestart(o options, dir string, log *slog.Logger) (result, error) {
	var res result
	r, err := setUp(o, dir, log, func(string) string { return "" }, "")
	if err != nil {
		return res, err
	}
	defer r.tearDown()
	var ackedAtKill int
	var downFor, reconnect time.Duration
	go func() {
		time.Sleep(o.restartDuration / 2)
		r.fleet.mu.Lock()
		r.proc.kill9()
		ackedAtKill = len(r.fleet.acked) // nothing can be acknowledged after the kill
		r.fleet.mu.Unlock()
		killed := time.Now()
		if err := r.proc.start(); err != nil {
			panic(err)
		}
		downFor = time.Since(killed)
		waitFor("edges back", time.Minute, func() bool { return r.fleet.connected() == o.edges })
		reconnect = time.Since(killed)
	}()
	r.raiseFor(o.restartRate, o.restartDuration)
	res.add("rate, run", "%.0f alerts/s for %v; central killed (SIGKILL) at %v", o.restartRate, o.restartDuration, o.restartDuration/2)
	res.add("machine load average", "%s", loadAvg())
	r.checks(&res, 3*time.Minute, 0)
	res.add("central down (kill → listening again)", "%s", ms(downFor))
	res.add("kill → all edges reconnected", "%s", ms(reconnect))
	complete, err := r.checkStored(&res, ackedAtKill, "at central after restart")
	if err != nil {
		return res, err
	}
	res.ok = res.ok && complete
	return res, nil
}

// storedIDs pages through every alert central holds.
func storedIDs(api, adminToken string) (map[string]bool, error) {
	out := map[string]bool{}
	var since uint64
	for {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/api/v1/alerts?since=%d&limit=1000", api, since), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Alerts []struct {
				ID string `json:"id"`
			} `json:"alerts"`
			Next uint64 `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(page.Alerts) == 0 {
			return out, nil
		}
		for _, a := range page.Alerts {
			if out[a.ID] {
				return nil, fmt.Errorf("central holds %s twice", a.ID)
			}
			out[a.ID] = true
		}
		since = page.Next
	}
}

// loadAvg is the machine's 1-minute load average, for context: other
// work on a shared machine shows up in every latency.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkStored reads every alert central stored and counts the ones an
// edge got an ack for that are not there (where: how they were read);
// complete: none is missing and every alert raised is stored.
func (r *rig) checkStored(res *result, ackedAtKill int, where string) (complete bool, err error) {
	stored, err := storedIDs(r.proc.api, r.proc.adminToken)
	if err != nil {
		return false, err
	}
	r.fleet.mu.Lock()
	lost := 0
	for id := range r.fleet.acked {
		if !stored[id] {
			lost++
		}
	}
	acked := len(r.fleet.acked)
	r.fleet.mu.Unlock()
	res.add("acknowledged before the kill / acknowledged in all", "%d / %d", ackedAtKill, acked)
	res.add("acknowledged but missing "+where, "%d", lost)
	res.add("alerts stored / raised", "%d / %d", len(stored), r.fleet.raisedTotal())
	return lost == 0 && uint64(len(stored)) == r.fleet.raisedTotal(), nil
}
