// Command clips measures the edge's clip store (edge/clips) on this
// machine and prints a Markdown table for BENCHMARKS.md:
//
//	realtime: 16 cameras of 1080p15 at ~4 Mbit/s recorded at their real
//	          rate with retention busy: CPU per camera, resident memory;
//	write:    sustained write throughput of 16 cameras into the store
//	          against appending the same parts to a plain file on the same
//	          disk (alternating runs, same fsync cadence);
//	export:   a 10-minute range to MP4 against `ffmpeg -c copy` of the same
//	          H.264, and the time to the first byte over HTTP;
//	soak:     retention alone through many budget turnovers: disk use
//	          against the budget and against the video kept.
//
// Video is real: footage.BenchCamera(1080) (vtest.avi as a 1080p15 IP
// camera), played in a loop with synthetic wall-clock times. `make bench`
// runs it; -quick (or BENCH_QUICK=1) shortens every phase.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// epoch is the synthetic wall clock of every camera's first frame.
var epoch = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

type options struct {
	dir         string
	cams        int
	only        map[string]bool
	writeVideo  time.Duration // per camera, per throughput run
	rounds      int
	warmup      time.Duration
	realtime    time.Duration
	exportVideo time.Duration
	soakBudget  int64
	turnovers   float64
	memProfile  string
	verbose     bool
	log         *slog.Logger
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-clips:", err)
		os.Exit(1)
	}
}

func run() error {
	o, cpuProfile := parseOptions()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	path, err := footage.Cache{Dir: footage.DefaultDir()}.BenchCamera(ctx, 1080)
	if err != nil {
		return err
	}
	clip, err := sim.LoadClip(path)
	if err != nil {
		return err
	}
	printHeader(o, path, clip)
	// Realtime first: its memory is measured in a fresh process.
	phases := []struct {
		name string
		run  func(options, *sim.Clip) error
	}{{"realtime", benchRealtime}, {"write", benchWrite}, {"export", benchExport}, {"soak", benchSoak}}
	for _, ph := range phases {
		if !o.only[ph.name] {
			continue
		}
		if err := ph.run(o, clip); err != nil {
			return err
		}
	}
	return nil
}

// parseOptions reads the flags; cpuProfile is where to write a CPU
// profile of the whole run ("" for none).
func parseOptions() (o options, cpuProfile string) {
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0", "short phases")
	only := flag.String("only", "realtime,write,export,soak", "phases to run")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "scratch directory, on the disk to measure")
	flag.IntVar(&o.cams, "cams", 16, "cameras")
	flag.BoolVar(&o.verbose, "v", false, "log every soak sample to stderr")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of the realtime phase")
	soakMiB := flag.Int64("soak-budget", 0, "soak: MiB per camera (default 128, quick 32)")
	turnovers := flag.Float64("turnovers", 0, "soak: budget turnovers (default 6, quick 4)")
	flag.Parse()
	o.only = map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		o.only[strings.TrimSpace(p)] = true
	}
	o.writeVideo, o.rounds, o.warmup, o.realtime = 6*time.Minute, 3, 5*time.Second, 30*time.Second
	o.exportVideo, o.soakBudget, o.turnovers = 10*time.Minute, 128<<20, 6
	if *quick {
		o.writeVideo, o.rounds, o.realtime = 2*time.Minute, 2, 10*time.Second
		o.soakBudget, o.turnovers = 32<<20, 4
	}
	if *soakMiB > 0 {
		o.soakBudget = *soakMiB << 20
	}
	if *turnovers > 0 {
		o.turnovers = *turnovers
	}
	o.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return o, cpuProfile
}

// printHeader prints the section's heading, the machine and the video,
// and the table's head.
func printHeader(o options, path string, clip *sim.Clip) {
	rate := float64(clipBytes(clip)) * 8 / 1e6 / clip.Duration.Seconds()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("## Clip store (`bench/clips`)\n\n")
	fmt.Printf("Command: `go run ./bench/clips` (part of `make bench`), %s, %d cores, GOMAXPROCS %d, load average %s at the start.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("Video: %s, %dx%d, %.0f fps, %.2f Mbit/s, looped with synthetic wall-clock times; %d cameras.\n\n",
		path[strings.LastIndexByte(path, '/')+1:], clip.Info.Width, clip.Info.Height, clip.Info.FPS, rate, o.cams)
	fmt.Println("| measure | result |")
	fmt.Println("| --- | --- |")
}

// benchRealtime runs and reports the realtime phase.
func benchRealtime(o options, clip *sim.Clip) error {
	r, err := realtime(o, clip)
	if err != nil {
		return err
	}
	fmt.Printf("| realtime: %d cameras × %.1f Mbit/s recorded at frame rate for %v, retention evicting (%.0f MiB evicted) | CPU %.2f %% of one core per camera (%.1f %% for all), drops %v |\n",
		r.cams, r.mbitPerCam, r.wall.Round(time.Second), r.evicted/(1<<20), 100*r.cpu.Seconds()/r.wall.Seconds()/float64(r.cams), 100*r.cpu.Seconds()/r.wall.Seconds(), r.drops)
	fmt.Printf("| resident memory of the bench process (store + the %.0f MiB clip it plays), while recording | max RSS %.0f MiB: anonymous %.0f MiB (Go heap in use at most %.0f MiB, %.0f MiB live after a GC), file-backed %.0f MiB (binary, FFmpeg libraries, value-log pages between page-outs) |\n",
		mib(int64(clipBytes(clip))), mib(r.mem.rss), mib(r.mem.anon), mib(r.heap), mib(r.live), mib(r.mem.file))
	return nil
}

// benchWrite runs and reports the write phase: alternating rounds of the
// store, a plain file and Badger alone.
func benchWrite(o options, clip *sim.Clip) error {
	var ratios, badgerRatios []float64
	var best, bestPlain, bestBadger writeResult
	for round := range o.rounds {
		p, err := plainWrite(o, clip, o.writeVideo)
		if err != nil {
			return err
		}
		s, err := storeWrite(o, clip, o.writeVideo)
		if err != nil {
			return err
		}
		b, err := badgerWrite(o, clip, o.writeVideo)
		if err != nil {
			return err
		}
		ratios = append(ratios, s.mbps()/p.mbps())
		badgerRatios = append(badgerRatios, b.mbps()/p.mbps())
		fmt.Fprintf(os.Stderr, "write round %d: plain %.0f MB/s, store %.0f MB/s (%.2f×), Badger alone %.0f MB/s (%.2f×)\n",
			round, p.mbps(), s.mbps(), s.mbps()/p.mbps(), b.mbps(), b.mbps()/p.mbps())
		best, bestPlain, bestBadger = faster(best, s), faster(bestPlain, p), faster(bestBadger, b)
	}
	fmt.Printf("| write, %d cameras × %v of video each (%.1f GB), store vs plain file append, %d alternating runs | store/plain %s; best store %.0f MB/s, best plain %.0f MB/s |\n",
		o.cams, o.writeVideo, float64(best.bytes)/1e9, o.rounds, fmtRatios(ratios), best.mbps(), bestPlain.mbps())
	fmt.Printf("| the same parts committed straight into Badger (the store's options, one writer, 16 parts per transaction, DB.Sync every 500 ms), same rounds | Badger alone/plain %s; best %.0f MB/s: the ceiling for video kept in Badger |\n",
		fmtRatios(badgerRatios), bestBadger.mbps())
	fmt.Printf("| CPU per MB written (best runs) | store %.2f ms, Badger alone %.2f ms, plain %.2f ms |\n",
		msPerMB(best), msPerMB(bestBadger), msPerMB(bestPlain))
	return nil
}

// benchExport runs and reports the export phase.
func benchExport(o options, clip *sim.Clip) error {
	e, err := exportBench(o, clip)
	if err != nil {
		return err
	}
	mb := float64(e.bytes) / 1e6
	fmt.Printf("| export of %v (%.0f MB, %d frames; ffprobe: %s packets,duration) to an MP4 file | %.0f MB/s (%.2f s, median of 3), first byte after %v on the first export since recording (value-log pages paged out: read from disk), %v warm (planning from the part tables: %v) |\n",
		e.video, mb, e.frames, e.ffprobeFrames, mb/e.store.Seconds(), e.store.Seconds(), e.ttfbCold.Round(time.Millisecond), e.ttfbWarm.Round(time.Millisecond), e.plan.Round(time.Millisecond))
	fmt.Printf("| `ffmpeg -c copy` of the same H.264 to MP4 | from raw Annex-B: %.0f MB/s (%.2f s); from the exported MP4: %.0f MB/s (%.2f s); store/ffmpeg %.2f× and %.2f× |\n",
		float64(e.rawBytes)/1e6/e.ffmpegRaw.Seconds(), e.ffmpegRaw.Seconds(), float64(e.mp4Bytes)/1e6/e.ffmpegRemux.Seconds(), e.ffmpegRemux.Seconds(),
		e.ffmpegRaw.Seconds()/e.store.Seconds(), e.ffmpegRemux.Seconds()/e.store.Seconds())
	fmt.Printf("| the same export over HTTP (`GET …/mp4?start=…&duration=%v`, 127.0.0.1) | first byte after %v, all of it after %.2f s (%.0f MB/s) |\n",
		e.video, e.ttfbHTTP.Round(time.Millisecond), e.httpTotal.Seconds(), mb/e.httpTotal.Seconds())
	return nil
}

// benchSoak runs and reports the soak phase.
func benchSoak(o options, clip *sim.Clip) error {
	s, err := soak(o, clip)
	if err != nil {
		return err
	}
	fmt.Printf("| soak: %d cameras × %d MiB budget, %.1f turnovers (%.1f GB written in %v, 30 s buckets) | disk at most %.0f MiB = %.3f × the budget |\n",
		s.cams, o.soakBudget>>20, s.turnovers, float64(s.written)/1e9, s.elapsed.Round(time.Second), mib(s.maxDisk), s.maxOverBudget)
	fmt.Printf("| space overhead after steady-state retention: bytes on disk / bytes of video kept | mean %.3f, max %.3f |\n", s.overhead, s.maxOver)
	fmt.Printf("| write amplification of the soak (bytes the process sent to storage / video bytes) | %.2f (value-log GC rewrote and freed %.0f files) |\n", s.amplification, s.gcFiles)
	return nil
}

func fmtRatios(r []float64) string {
	var parts []string
	for _, v := range r {
		parts = append(parts, fmt.Sprintf("%.2f×", v))
	}
	return strings.Join(parts, ", ")
}

func clipBytes(clip *sim.Clip) int {
	n := 0
	for _, p := range clip.Packets {
		for _, nalu := range p.AU {
			n += 4 + len(nalu)
		}
	}
	return n
}

// registry is a private Prometheus registry that sums counters.
type registry struct{ *prometheus.Registry }

func newRegistry() registry { return registry{prometheus.NewRegistry()} }

func (r registry) sum(name string) float64 {
	mfs, _ := r.Gather()
	var s float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if c := m.GetCounter(); c != nil {
				s += c.GetValue()
			}
		}
	}
	return s
}

// faster returns the faster of two write results (b if a is empty).
func faster(a, b writeResult) writeResult {
	if a.bytes == 0 || b.mbps() > a.mbps() {
		return b
	}
	return a
}

func msPerMB(r writeResult) float64 { return r.cpu.Seconds() * 1e3 / (float64(r.bytes) / 1e6) }
