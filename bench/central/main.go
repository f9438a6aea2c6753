// Command central is the edge ⇄ central benchmark (make bench): hundreds
// of simulated edges (real outboxes, real uplinks, real TLS websockets on
// 127.0.0.1) and dozens of consoles against central running as a separate
// process, in three runs:
//
//	load       sustained alerts per second, edge-to-console latency, central CPU and memory
//	partition  the edges' link cut for a while as they keep raising alerts, then restored
//	restart    central killed with SIGKILL under load and started again
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
	edges, consoles int
	rates           []float64
	duration        time.Duration
	warmup          time.Duration
	partition       time.Duration
	partitionRate   float64
	restartRate     float64
	restartDuration time.Duration
	snapshot        int
	edgeDBs         int
	runs            string
	dir             string
	cpuProfile      string
	centralProfile  string
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
	flag.IntVar(&o.snapshot, "snapshot", 2048, "bytes of snapshot per alert")
	flag.IntVar(&o.edgeDBs, "edge-dbs", 32, "Badger databases the simulated edges' outboxes share")
	flag.StringVar(&o.runs, "runs", "load,partition,restart", "which runs")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary one, removed after)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load generator's CPU profile here (with -role central: central's)")
	flag.StringVar(&o.centralProfile, "central-cpuprofile", "", "write central's CPU profile here (the load run's central)")
	flag.Parse()
	for _, r := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -rate: %q is not a rate\n", r)
			os.Exit(2)
		}
		o.rates = append(o.rates, v)
	}

	if *role == "central" {
		if err := runCentralChild(*cfgPath, o.cpuProfile); err != nil {
			fmt.Fprintln(os.Stderr, "central:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv("BENCH_QUICK") == "1" {
		o.duration, o.warmup, o.partition, o.restartDuration = 15*time.Second, 3*time.Second, 30*time.Second, 15*time.Second
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
	failed := false
	for _, name := range strings.Split(o.runs, ",") {
		var res result
		var err error
		sub := dir + "/" + name
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return err
		}
		switch name {
		case "load":
			var all []result
			all, err = runLoad(o, sub, log)
			for i, r := range all {
				r.print(fmt.Sprintf("load at %.0f alerts/s", o.rates[i]))
				failed = failed || !r.ok
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			continue
		case "partition":
			res, err = runPartition(o, sub, log)
		case "restart":
			res, err = runRestart(o, sub, log)
		default:
			return fmt.Errorf("unknown run %q", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		res.print(name)
		failed = failed || !res.ok
	}
	if failed {
		return fmt.Errorf("a run lost or duplicated alerts (see above)")
	}
	return nil
}

// result is one run's figures, printed as a table.
type result struct {
	ok   bool
	rows [][2]string
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
