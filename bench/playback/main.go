// Command playback measures recorded playback (issue #21) on this machine
// in one run, each figure beside a reference measured in the same run:
//
//	startup   click to first frame: POST /api/v1/playback/sessions, then
//	          GET …/video of the first 10 s window until the first
//	          moof+mdat has arrived whole, full and keyframes-only, at
//	          ~30 moments of a camera recorded minutes before; the
//	          reference is the time to first byte of the existing clip
//	          route (GET /api/v1/edges/{id}/cameras/{camera}/clip) for the
//	          same 10 s. Every request reads the recording cold (the
//	          segments' pages are dropped from the page cache first, as the
//	          store itself drops them after writing).
//	capacity  N = 1, 2, 4 … playback viewers of one ~4 Mbit/s camera, each
//	          pulling consecutive 10 s windows paced at 1× real time, while
//	          one live viewer of the same camera (central's live
//	          websocket, as the console watches) measures fragment latency,
//	          gaps and drops; the reference is the live viewer alone
//	          (N = 0) at the start of the same run.
//
// Central and the edge run together in a child process of this command,
// so their CPU is their own; the camera simulator (footage.BenchCamera
// 1080p15 at ~4 Mbit/s, served in real time over RTSP) and every client
// run in this process. All of them share the machine's cores. The
// camera's history is written before the edge starts, through the clip
// store's own writer with wall-clock times in the past (minutes of
// recording without minutes of waiting); the live camera then records on
// top of it.
//
// `make bench` runs it; BENCH_QUICK=1 (or -quick) shortens it. The JSON
// result goes to BENCH_PLAYBACK_OUT (default bench-playback.json).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

type options struct {
	tries    int           // startup: tries per kind
	window   time.Duration // one playback request
	record   time.Duration // camera history written before the edge starts
	step     time.Duration // capacity: measured time per N
	buffer   time.Duration // capacity: a viewer keeps up while received media ≥ elapsed − buffer
	ahead    time.Duration // capacity: a viewer asks for the next window this long before its buffer runs dry
	ladder   []int         // capacity: viewer counts, in order
	budget   time.Duration // capacity: no new step once the whole run is this old
	out      string
	dir      string
	quick    bool
	logLevel slog.Level
}

func main() {
	role := flag.String("role", "", "internal: 'server' runs central and the edge (the child process)")
	cfgPath := flag.String("config", "", "internal: the child's config file")
	o := parseOptions()
	if *role == "server" {
		if err := runServer(*cfgPath); err != nil {
			fmt.Fprintln(os.Stderr, "bench-playback server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-playback:", err)
		os.Exit(1)
	}
}

func parseOptions() options {
	var o options
	quick := os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0"
	out := os.Getenv("BENCH_PLAYBACK_OUT")
	if out == "" {
		out = "bench-playback.json"
	}
	flag.BoolVar(&o.quick, "quick", quick, "short run (also BENCH_QUICK=1)")
	flag.IntVar(&o.tries, "tries", 0, "startup: tries per kind (default 30, quick 10)")
	flag.DurationVar(&o.window, "window", 10*time.Second, "playback window per request")
	flag.DurationVar(&o.record, "record", 0, "camera history before the run (default 5m, quick 3m)")
	flag.DurationVar(&o.step, "step", 0, "capacity: measured time per viewer count (default 30s, quick 15s)")
	flag.DurationVar(&o.buffer, "buffer", 2*time.Second, "capacity: a viewer keeps up while received media ≥ elapsed − buffer")
	flag.DurationVar(&o.ahead, "ahead", 5*time.Second, "capacity: a viewer asks for the next window when this much is left in its buffer")
	ladder := flag.String("viewers", "1,2,4,8,16,32", "capacity: playback viewer counts (stops after the first step a viewer falls behind in)")
	flag.DurationVar(&o.budget, "budget", 5*time.Minute, "capacity: start no step after the run is this old")
	flag.StringVar(&o.out, "out", out, "JSON results file (also BENCH_PLAYBACK_OUT)")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary one, removed after)")
	verbose := flag.Bool("v", false, "log central's and the edge's warnings to stderr")
	flag.Parse()
	o.logLevel = slog.LevelError
	if *verbose {
		o.logLevel = slog.LevelWarn
	}
	for _, s := range strings.Split(*ladder, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench-playback: -viewers: %q is not a viewer count\n", s)
			os.Exit(2)
		}
		o.ladder = append(o.ladder, n)
	}
	defaults := func(d *time.Duration, full, short time.Duration) {
		if *d == 0 {
			*d = full
			if o.quick {
				*d = short
			}
		}
	}
	defaults(&o.record, 5*time.Minute, 3*time.Minute)
	defaults(&o.step, 30*time.Second, 15*time.Second)
	if o.tries == 0 {
		o.tries = 30
		if o.quick {
			o.tries = 10
		}
	}
	return o
}

// run prepares the camera, its history, central and the edge, then
// measures startup and capacity and reports them.
func run(o options) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	env, err := setUp(ctx, o)
	if env != nil {
		defer env.close()
	}
	if err != nil {
		return err
	}
	res := newResults(o, env, began)
	res.printHeader()
	if res.Startup, err = measureStartup(ctx, env, o); err != nil {
		return fmt.Errorf("startup: %w", err)
	}
	res.printStartup()
	res.Capacity, err = measureCapacity(ctx, env, o, began)
	res.printCapacity()
	if err != nil {
		return fmt.Errorf("capacity: %w", err)
	}
	res.Finished = time.Now().UTC()
	if err := res.write(o.out); err != nil {
		return err
	}
	fmt.Printf("\nWhole run %v; JSON in %s.\n", time.Since(began).Round(time.Second), o.out)
	return nil
}

// quietLog logs at level to stderr (errors only, unless -v).
func quietLog(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
