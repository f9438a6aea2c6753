// Command clips measures the edge's clip store (edge/clips, v2: video in
// fragmented-MP4 segment files written with write(2), Badger only the
// index) on this machine and prints a Markdown table for BENCHMARKS.md:
//
//	realtime: 16 cameras of 1080p15 at ~4 Mbit/s recorded at their real
//	          rate with retention busy: CPU per camera and per MB, resident
//	          memory; beside the plain reference at the same rate;
//	write:    the throughput ceiling of 16 cameras into the store against
//	          the plain reference on the same disk, alternating runs;
//	export:   a 10-minute range to MP4 against `ffmpeg -f concat -c copy`
//	          of the same segment files, and the time to the first byte;
//	soak:     retention through ≥ 6 budget turnovers: du of the store
//	          against the budget after every flush and every 250 ms, and
//	          against the video bytes kept;
//	rebuild:  the index deleted and rebuilt by Open from the segments of
//	          16 cameras × hours of low-bitrate video.
//
// The plain reference is what the store's durability costs at the least:
// per camera one file, each part (1 MiB, or up to a segment boundary)
// appended with write(2), the touched files fdatasynced once per flush
// interval (500 ms).
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
	dir          string
	cams         int
	only         map[string]bool
	writeVideo   time.Duration // per camera, per throughput run
	rounds       int
	warmup       time.Duration
	realtime     time.Duration
	exportVideo  time.Duration
	soakBudget   int64
	turnovers    float64
	rebuildVideo time.Duration
	memProfile   string
	verbose      bool
	quick        bool
	log          *slog.Logger
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
	}{{"realtime", benchRealtime}, {"write", benchWrite}, {"export", benchExport}, {"soak", benchSoak}, {"rebuild", benchRebuild}}
	for _, ph := range phases {
		if !o.only[ph.name] {
			continue
		}
		if err := ph.run(o, clip); err != nil {
			return err
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nLoad average at the end: %s.\n", strings.Join(strings.Fields(string(load))[:3], " "))
	return nil
}

// parseOptions reads the flags; cpuProfile is where to write a CPU
// profile of the whole run ("" for none).
func parseOptions() (o options, cpuProfile string) {
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0", "short phases")
	only := flag.String("only", "realtime,write,export,soak,rebuild", "phases to run")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "scratch directory, on the disk to measure")
	flag.IntVar(&o.cams, "cams", 16, "cameras")
	flag.BoolVar(&o.verbose, "v", false, "log every soak sample to stderr")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of the realtime phase")
	soakMiB := flag.Int64("soak-budget", 0, "soak: MiB per camera (default 128, quick 64)")
	turnovers := flag.Float64("turnovers", 0, "soak: budget turnovers (default 6.5, quick 6.5)")
	rebuildVideo := flag.Duration("rebuild-video", 0, "rebuild: video per camera (default 4h, quick 15m)")
	flag.Parse()
	o.only = map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		o.only[strings.TrimSpace(p)] = true
	}
	o.writeVideo, o.rounds, o.warmup, o.realtime = 6*time.Minute, 4, 5*time.Second, 30*time.Second
	o.exportVideo, o.soakBudget, o.turnovers, o.rebuildVideo = 10*time.Minute, 128<<20, 6.5, 4*time.Hour
	o.quick = *quick
	if *quick {
		o.writeVideo, o.rounds, o.realtime = 2*time.Minute, 2, 10*time.Second
		o.soakBudget, o.rebuildVideo = 64<<20, 15*time.Minute
	}
	if *rebuildVideo > 0 {
		o.rebuildVideo = *rebuildVideo
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
	quick := ""
	if o.quick {
		quick = " -quick"
	}
	fmt.Printf("Command: `go run ./bench/clips%s` (part of `make bench`), %s, %d cores, GOMAXPROCS %d, load average %s at the start, scratch dir %s.\n",
		quick, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.Join(strings.Fields(string(load))[:3], " "), o.dir)
	fmt.Printf("Video: %s, %dx%d, %.0f fps, %.2f Mbit/s, looped with synthetic wall-clock times; %d cameras.\n\n",
		path[strings.LastIndexByte(path, '/')+1:], clip.Info.Width, clip.Info.Height, clip.Info.FPS, rate, o.cams)
	fmt.Println("| measure | result |")
	fmt.Println("| --- | --- |")
}

// benchRealtime runs and reports the realtime phase: the store, then
// the plain reference at the same rate.
func benchRealtime(o options, clip *sim.Clip) error {
	r, err := realtime(o, clip)
	if err != nil {
		return err
	}
	p, err := realtimePlain(o, clip)
	if err != nil {
		return err
	}
	sr := writeResult{bytes: r.bytes, elapsed: r.wall, cpu: r.cpu}
	fmt.Printf("| realtime: %d cameras × %.1f Mbit/s recorded at frame rate for %v (%.1f MB/s), retention evicting (%.0f MiB evicted) | store: CPU %.2f %% of one core per camera (%.1f %% for all), %.2f ms per MB, drops %v; plain reference at the same rate: %.2f %% per camera (%.1f %%), %.2f ms per MB |\n",
		r.cams, r.mbitPerCam, r.wall.Round(time.Second), float64(r.bytes)/1e6/r.wall.Seconds(), r.evicted/(1<<20),
		100*r.cpu.Seconds()/r.wall.Seconds()/float64(r.cams), 100*r.cpu.Seconds()/r.wall.Seconds(), msPerMB(sr), r.drops,
		100*p.cpu.Seconds()/p.elapsed.Seconds()/float64(o.cams), 100*p.cpu.Seconds()/p.elapsed.Seconds(), msPerMB(p))
	fmt.Printf("| resident memory of the bench process (store + the %.0f MiB clip it plays), while recording | max RSS %.0f MiB: anonymous %.0f MiB (Go heap in use at most %.0f MiB, %.0f MiB live after a GC), file-backed %.0f MiB |\n",
		mib(int64(clipBytes(clip))), mib(r.mem.rss), mib(r.mem.anon), mib(r.heap), mib(r.live), mib(r.mem.file))
	return nil
}

// benchWrite runs and reports the write phase: alternating rounds of the
// plain reference, the store, and the plain reference dropping its pages
// from the page cache after each fdatasync as the store does.
func benchWrite(o options, clip *sim.Clip) error {
	var ratios, dropRatios []float64
	var best, bestPlain, bestDrop writeResult
	for round := range o.rounds {
		p, err := plainWrite(o, clip, o.writeVideo, false)
		if err != nil {
			return err
		}
		s, err := storeWrite(o, clip, o.writeVideo)
		if err != nil {
			return err
		}
		d, err := plainWrite(o, clip, o.writeVideo, true)
		if err != nil {
			return err
		}
		ratios = append(ratios, s.mbps()/p.mbps())
		dropRatios = append(dropRatios, s.mbps()/d.mbps())
		fmt.Fprintf(os.Stderr, "write round %d: plain %.0f MB/s (%.2f ms CPU/MB), store %.0f MB/s (%.2f ms CPU/MB): %.2f×; plain+DONTNEED %.0f MB/s (%.2f ms CPU/MB): %.2f×\n",
			round, p.mbps(), msPerMB(p), s.mbps(), msPerMB(s), s.mbps()/p.mbps(), d.mbps(), msPerMB(d), s.mbps()/d.mbps())
		best, bestPlain, bestDrop = faster(best, s), faster(bestPlain, p), faster(bestDrop, d)
	}
	fmt.Fprintf(os.Stderr, "write: the store's fastest run fdatasynced %d times (%.0f/s, %.0f ms each on average, %.0f %% of the run); the plain reference every 500 ms\n",
		best.syncs, float64(best.syncs)/best.elapsed.Seconds(), 1e3*best.syncTime.Seconds()/float64(max(best.syncs, 1)), 100*best.syncTime.Seconds()/best.elapsed.Seconds())
	fmt.Printf("| write ceiling, %d cameras × %v of video each (%.1f GB a run), as fast as it goes: store vs the plain reference (a file per camera, write(2) per part, fdatasync of the touched files every 500 ms), %d alternating runs | **store/plain %s**; best store %.0f MB/s, best plain %.0f MB/s |\n",
		o.cams, o.writeVideo, float64(best.bytes)/1e9, o.rounds, fmtRatios(ratios), best.mbps(), bestPlain.mbps())
	fmt.Printf("| the same rounds, a third side: the plain reference also dropping each file's pages from the page cache after its fdatasync (`posix_fadvise(DONTNEED)`, which the store does to its segments) | store/(plain+DONTNEED) %s; best plain+DONTNEED %.0f MB/s |\n",
		fmtRatios(dropRatios), bestDrop.mbps())
	fmt.Printf("| the store's fdatasyncs in its fastest run (one per flush interval, over every segment written since; writeback started after each fragment with sync_file_range) | %d in %.1f s (%.0f a second, %.1f ms each on average: %.0f %% of the run in fdatasync on the writer goroutine); the plain reference: 2 a second |\n",
		best.syncs, best.elapsed.Seconds(), float64(best.syncs)/best.elapsed.Seconds(), 1e3*best.syncTime.Seconds()/float64(max(best.syncs, 1)), 100*best.syncTime.Seconds()/best.elapsed.Seconds())
	fmt.Printf("| CPU per MB written at the ceiling (user+sys, getrusage, best runs; producers included on all sides) | store %.2f ms, plain %.2f ms, plain+DONTNEED %.2f ms |\n",
		msPerMB(best), msPerMB(bestPlain), msPerMB(bestDrop))
	return nil
}

// benchExport runs and reports the export phase.
func benchExport(o options, clip *sim.Clip) error {
	e, err := exportBench(o, clip)
	if err != nil {
		return err
	}
	mb := float64(e.bytes) / 1e6
	rate := func(d time.Duration) float64 { return mb / d.Seconds() }
	fmt.Printf("| export of %v (%d segments, %.0f MB of video, %d frames) with Store.Export to an MP4 file on the same disk (ffprobe duration,packets: %s) | warm %.0f MB/s (%.2f s, median of 3); cold (segments dropped from the page cache) %.0f MB/s (%.2f s); to io.Discard %.0f MB/s (%.2f s) |\n",
		e.video, e.segments, mb, e.frames, e.storeFrames, rate(e.storeWarm), e.storeWarm.Seconds(), rate(e.storeCold), e.storeCold.Seconds(), rate(e.storeDiscard), e.storeDiscard.Seconds())
	fmt.Printf("| `ffmpeg -v error -f concat -safe 0 -i <the %d segment files> -c copy -f mp4 out.mp4`, same disk (ffprobe duration,packets: %s) | warm %.0f MB/s (%.2f s, median of 3), cold %.0f MB/s (%.2f s); **store/ffmpeg %.2f× warm, %.2f× cold** |\n",
		e.segments, e.ffFrames, rate(e.ffWarm), e.ffWarm.Seconds(), rate(e.ffCold), e.ffCold.Seconds(),
		e.ffWarm.Seconds()/e.storeWarm.Seconds(), e.ffCold.Seconds()/e.storeCold.Seconds())
	fmt.Printf("| time to first byte of that %v export (Store.Export call, i.e. OpenExport, to the first Write reaching the writer) | %v cold, %v warm (OpenExport alone: %v); over HTTP on 127.0.0.1 %v, all of it after %.2f s |\n",
		e.video, e.ttfbCold.Round(100*time.Microsecond), e.ttfbWarm.Round(100*time.Microsecond), e.plan.Round(100*time.Microsecond),
		e.ttfbHTTP.Round(100*time.Microsecond), e.httpT.Seconds())
	return nil
}

// benchSoak runs and reports the soak phase.
func benchSoak(o options, clip *sim.Clip) error {
	s, err := soak(o, clip)
	if err != nil {
		return err
	}
	fmt.Printf("| soak: %d cameras × %d MiB budget (%.0f MiB), %.1f turnovers (%.1f GB written in %v; %d steps of 1 s of video per camera, each ended by Store.Flush), 1-minute buckets | du of the store dir at most %.0f MiB = **%.4f × the budget** after every flush (%d of the samples after the first turnover above it), at most %.4f × in %d background samples every 250 ms (%d above) |\n",
		s.cams, o.soakBudget>>20, mib(s.budget), s.turnovers, float64(s.written)/1e9, s.elapsed.Round(time.Second), s.steps,
		mib(s.maxDisk), s.maxOverBudget, s.overBudget, s.maxBgOverBudget, s.bgSamples, s.bgOver)
	fmt.Printf("| space overhead after steady-state retention: du of the store dir (index included) / video bytes kept (mdat payloads of the segments), %d samples | **mean %.4f, max %.4f**; video kept %.0f–%.0f MiB; index at most %.1f MiB; the store's own byte count / video ≤ %.4f |\n",
		s.overSamples, s.overhead, s.maxOvr, mib(s.keptMin), mib(s.keptMax), mib(s.indexMax), s.statsOverVideo)
	fmt.Printf("| write amplification of the soak (bytes the process sent to storage / video bytes) | %.3f (%.0f MiB evicted) |\n", s.amplification, s.evicted/(1<<20))
	return nil
}

// benchRebuild runs and reports the rebuild phase.
func benchRebuild(o options, clip *sim.Clip) error {
	r, err := rebuild(o, clip)
	if err != nil {
		return err
	}
	day := float64(24*time.Hour) / float64(r.video)
	complete := "timeline complete: every camera's spans and bytes as before, chunk count equal"
	if !r.complete {
		complete = "**timeline NOT complete**: " + r.mismatch
	}
	fmt.Printf("| index rebuild: %d cameras × %v of low-bitrate video (%d segment files, %d fragments, %d access units, %.0f MiB on disk; generated through the store in %v), index/ deleted, segments dropped from the page cache, clips.Open timed | **%.2f s** (%.0f µs per segment, %.1f µs per fragment); %s |\n",
		r.cams, r.video, r.scan.files, r.scan.fragments, r.aus, mib(r.diskBytes), r.generate.Round(time.Second),
		r.rebuild.Seconds(), float64(r.rebuild.Microseconds())/float64(r.scan.files), float64(r.rebuild.Microseconds())/float64(r.scan.fragments), complete)
	fmt.Printf("| the same extrapolated linearly to 24 h × %d cameras (%.0f segments, %.0f fragments) | ≈ %.0f s |\n",
		r.cams, float64(r.scan.files)*day, float64(r.scan.fragments)*day, r.rebuild.Seconds()*day)
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

// hist is the sample count and sum of a histogram.
func (r registry) hist(name string) (count uint64, sum float64) {
	mfs, _ := r.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if h := m.GetHistogram(); h != nil {
				count += h.GetSampleCount()
				sum += h.GetSampleSum()
			}
		}
	}
	return count, sum
}

// faster returns the faster of two write results (b if a is empty).
func faster(a, b writeResult) writeResult {
	if a.bytes == 0 || b.mbps() > a.mbps() {
		return b
	}
	return a
}

func msPerMB(r writeResult) float64 { return r.cpu.Seconds() * 1e3 / (float64(r.bytes) / 1e6) }
