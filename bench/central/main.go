// Command central is the edge ⇄ central benchmark (make bench): hundreds
// of simulated edges (real outboxes, real uplinks, real TLS websockets on
// 127.0.0.1) and dozens of consoles against central running as a separate
// process, in three runs:
//
//	load       sustained alerts per second, edge-to-console latency, central CPU and memory
//	partition  the edges' link cut for a while as they keep raising alerts, then restored
//	restart    central killed with SIGKILL under load and started again
//	failover   two replicas on one PostgreSQL database behind TCP load
//	           balancers, one killed with SIGKILL under load and not restarted
//
// The load run is done once per -stores setting: badger (one central on
// its embedded store), pg (one central on PostgreSQL), pg2 (two replicas
// on one PostgreSQL database behind a load balancer each for the edges'
// and the consoles' port). PostgreSQL is a throwaway cluster of Debian's
// PostgreSQL 15 that the bench starts (internal/testrig/postgres).
//
// Every run checks every alert on every console: per edge in order, none
// missing, none twice. BENCH_QUICK=1 shortens the runs.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

type options struct {
	edges, consoles  int
	rates            []float64
	duration         time.Duration
	warmup           time.Duration
	partition        time.Duration
	partitionRate    float64
	restartRate      float64
	restartDuration  time.Duration
	failoverRate     float64
	failoverDuration time.Duration
	stores           []string
	snapshot         int
	edgeDBs          int
	runs             string
	dir              string
	cpuProfile       string
	centralProfile   string
}

func main() {
	role := flag.String("role", "", "internal: 'central' runs central alone (the child process)")
	cfgPath := flag.String("config", "", "internal: central.yaml for -role central")
	var o options
	flag.IntVar(&o.edges, "edges", 500, "simulated edges")
	flag.IntVar(&o.consoles, "consoles", 50, "console clients")
	rates := flag.String("rate", "250,500,1000", "alerts per second in the load run (all edges together); a list runs each in turn")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "load run: measured time")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load run: unmeasured time first")
	flag.DurationVar(&o.partition, "partition", 5*time.Minute, "partition run: how long the link is cut")
	flag.Float64Var(&o.partitionRate, "partition-rate", 100, "alerts per second raised during the partition")
	flag.Float64Var(&o.restartRate, "restart-rate", 500, "alerts per second in the restart run")
	flag.DurationVar(&o.restartDuration, "restart-duration", 30*time.Second, "restart run: raising time (central is killed half way)")
	flag.Float64Var(&o.failoverRate, "failover-rate", 500, "alerts per second in the failover run")
	flag.DurationVar(&o.failoverDuration, "failover-duration", 30*time.Second, "failover run: raising time (a replica is killed half way)")
	stores := flag.String("stores", "badger,pg,pg2", "load run: once per store setting (badger, pg: one central on PostgreSQL, pg2: two replicas on one database)")
	flag.IntVar(&o.snapshot, "snapshot", 2048, "bytes of snapshot per alert")
	flag.IntVar(&o.edgeDBs, "edge-dbs", 32, "Badger databases the simulated edges' outboxes share")
	flag.StringVar(&o.runs, "runs", "load,partition,restart,failover", "which runs")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary one, removed after)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load generator's CPU profile here (with -role central: central's)")
	flag.StringVar(&o.centralProfile, "central-cpuprofile", "", "write central's CPU profile here (the load run's central)")
	flag.Parse()
	for _, st := range strings.Split(*stores, ",") {
		o.stores = append(o.stores, strings.TrimSpace(st))
	}
	rateSet := false
	flag.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "rate" })
	if *role == "central" {
		if err := runCentralChild(*cfgPath, o.cpuProfile); err != nil {
			fmt.Fprintln(os.Stderr, "central:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv("BENCH_QUICK") == "1" {
		// All four runs (the load run three times) in about two minutes.
		o.duration, o.warmup, o.partition, o.restartDuration = 6*time.Second, 2*time.Second, 15*time.Second, 10*time.Second
		o.failoverDuration = 10 * time.Second
		if !rateSet { // one rate per store keeps the quick run short
			*rates = "1000"
		}
	}
	for _, r := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -rate: %q is not a rate\n", r)
			os.Exit(2)
		}
		o.rates = append(o.rates, v)
	}

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "vigil-bench-central-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fmt.Printf("# Edge ⇄ central benchmark: %d edges, %d consoles, %d CPUs (GOMAXPROCS %d), %s\n",
		o.edges, o.consoles, runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("# load generator and central share this machine; central runs as a separate process\n\n")
	var pg pgCluster
	defer pg.close()
	failed := false
	var summary []summaryRow
	note := func(run, store string, r result) {
		summary = append(summary, summaryRow{run, store, r})
		failed = failed || !r.ok
	}
	for _, name := range strings.Split(o.runs, ",") {
		var res result
		var err error
		sub := dir + "/" + name
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return err
		}
		switch name {
		case "load":
			if err := runLoads(o, sub, log, &pg, note); err != nil {
				return err
			}
			continue
		case "partition":
			res, err = runPartition(o, sub, log)
		case "restart":
			res, err = runRestart(o, sub, log)
		case "failover":
			st, serr := pg.storeFor("pg2")
			if serr != nil {
				return fmt.Errorf("%s: %w", name, serr)
			}
			res, err = runFailover(o, sub, log, st)
		default:
			return fmt.Errorf("unknown run %q", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		res.print(name)
		store := "badger"
		if name == "failover" {
			store = "pg2"
		}
		note(name, store, res)
	}
	printSummary(summary)
	if failed {
		return fmt.Errorf("a run lost or duplicated alerts (see above)")
	}
	return nil
}

// runLoads does the load run once per store of o.stores.
func runLoads(o options, sub string, log *slog.Logger, pg *pgCluster, note func(run, store string, r result)) error {
	for _, storeName := range o.stores {
		st, err := pg.storeFor(storeName)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		ssub := sub + "/" + storeName
		if err := os.MkdirAll(ssub, 0o700); err != nil {
			return err
		}
		all, err := runLoad(o, ssub, log, st)
		for i, r := range all {
			r.print(fmt.Sprintf("load at %.0f alerts/s, store %s", o.rates[i], storeName))
			note(fmt.Sprintf("load %.0f/s", o.rates[i]), storeName, r)
		}
		if err != nil {
			return fmt.Errorf("load (%s): %w", storeName, err)
		}
	}
	return nil
}

type summaryRow struct {
	run, store string
	res        result
}

// printSummary is one table of every run's headline figures.
func printSummary(rows []summaryRow) {
	fmt.Printf("## Summary\n\n| run | store | p50 / p99 edge → console | lost / duplicated | central CPU (sum) | central RSS (sum) | PostgreSQL CPU | failover | verdict |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		lat, cpu, rss, pgc, fo := "–", "–", "–", "–", "–"
		if r.res.lat99 > 0 {
			lat = ms(r.res.lat50) + " / " + ms(r.res.lat99)
			cpu = fmt.Sprintf("%.0f %%", r.res.cpu)
			rss = mib(r.res.rss)
			if r.store != "badger" {
				pgc = fmt.Sprintf("%.0f %%", r.res.pgCPU)
			}
		}
		if r.res.recovery > 0 {
			fo = ms(r.res.recovery)
		}
		verdict := "PASS"
		if !r.res.ok {
			verdict = "FAIL"
		}
		fmt.Printf("| %s | %s | %s | %d / %d | %s | %s | %s | %s | %s |\n", r.run, r.store, lat, r.res.lost, r.res.dups, cpu, rss, pgc, fo, verdict)
	}
	fmt.Println()
}

// result is one run's figures, printed as a table.
type result struct {
	ok   bool
	rows [][2]string

	// Headline figures for the summary table (zero: not measured).
	lost, dups   uint64
	lat50, lat99 time.Duration
	cpu, pgCPU   float64 // % of one core
	rss          int64
	recovery     time.Duration // failover: kill → every edge and console back
}

func (r *result) add(k, format string, args ...any) {
	r.rows = append(r.rows, [2]string{k, fmt.Sprintf(format, args...)})
}

func (r result) print(name string) {
	fmt.Printf("## %s\n\n| measured | value |\n| --- | --- |\n", name)
	for _, row := range r.rows {
		fmt.Printf("| %s | %s |\n", row[0], row[1])
	}
	verdict := "PASS: every alert on every console exactly once, in order per edge"
	if !r.ok {
		verdict = "FAIL"
	}
	fmt.Printf("\n%s\n\n", verdict)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
