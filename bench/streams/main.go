// Command streams measures Vigil's camera path against FFmpeg on the same
// machine, side by side in one run, and prints ratios:
//
//	(a) cpu:      CPU seconds per minute of video of one camera session
//	              (RTSP + decode of every frame + motion at 5 fps) against
//	              `ffmpeg -threads 1 -i rtsp://… -f null -` on the same stream,
//	              with the split RTSP / decode / analysis and profiles;
//	(b) capacity: how many 720p15 cameras one edge process sustains with
//	              zero analysis drops, against how many streams one ffmpeg
//	              process per stream decodes in real time;
//	(c) memory:   resident memory of a real edge node (edge.Start, Badger
//	              outbox included) with 0, 1, 4 and 16 cameras.
//
// Every side runs in its own child process (this binary in a child mode,
// or ffmpeg) so that /proc attributes CPU and memory exactly; the camera
// simulator (streams/sim) runs in another, and its CPU is reported, not
// hidden. `make bench` runs it; BENCH_QUICK=1 makes every phase short and
// BENCH_OUT names the JSON file (default bench.json). See BENCHMARKS.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/av"
)

type options struct {
	quick     bool
	out       string
	parts     map[string]bool
	height    int
	warmup    time.Duration
	cpuWindow time.Duration
	profile   time.Duration
	trial     time.Duration
	confirm   time.Duration
	memSettle time.Duration
	memCams   []int
	maxN      int
	guess     int
	artifacts string
	verbose   bool
}

func main() {
	if ok, err := runChild(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string) (options, error) {
	quick := os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0"
	for _, a := range args { // -quick changes the defaults of the other flags
		if a == "-quick" || a == "--quick" || a == "-quick=true" || a == "--quick=true" {
			quick = true
		}
	}
	pick := func(full, short time.Duration) time.Duration {
		if quick {
			return short
		}
		return full
	}
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = "bench.json"
	}
	o := options{}
	fs := flag.NewFlagSet("bench-streams", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", quick, "short phases for a quick look (also BENCH_QUICK=1)")
	fs.StringVar(&o.out, "out", out, "JSON results file (also BENCH_OUT)")
	parts := fs.String("parts", "cpu,memory,capacity", "which measurements to run")
	fs.IntVar(&o.height, "height", 720, "camera resolution: 720 or 1080 (15 fps)")
	fs.DurationVar(&o.warmup, "warmup", pick(10*time.Second, 6*time.Second), "settling time after every camera delivers video, before measuring")
	fs.DurationVar(&o.cpuWindow, "cpu-window", pick(2*time.Minute, 30*time.Second), "(a) measuring window")
	fs.DurationVar(&o.profile, "profile", pick(30*time.Second, 15*time.Second), "(a) profiling window after the measurement (0: none)")
	fs.DurationVar(&o.trial, "trial", pick(40*time.Second, 15*time.Second), "(b) window of each search trial")
	fs.DurationVar(&o.confirm, "confirm", pick(5*time.Minute, 45*time.Second), "(b) window of the final confirmation at the found N")
	fs.DurationVar(&o.memSettle, "mem-settle", pick(60*time.Second, 20*time.Second), "(c) how long each edge runs before its memory is read")
	mem := fs.String("mem-cameras", "0,1,4,16", "(c) camera counts")
	fs.IntVar(&o.maxN, "max-n", 128, "(b) largest camera count tried")
	fs.IntVar(&o.guess, "guess", 0, "(b) first N to try (0: estimate from (a), else 8)")
	fs.StringVar(&o.artifacts, "artifacts", filepath.Join(".cache", "bench"), "directory for profiles")
	fs.BoolVar(&o.verbose, "v", false, "stream the children's logs")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.parts = map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "cpu", "memory", "capacity":
			o.parts[p] = true
		case "":
		default:
			return o, fmt.Errorf("-parts: unknown part %q (cpu, memory, capacity)", p)
		}
	}
	for _, s := range strings.Split(*mem, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 0 {
			return o, fmt.Errorf("-mem-cameras: %q", s)
		}
		o.memCams = append(o.memCams, n)
	}
	if o.height != 720 && o.height != 1080 {
		return o, errors.New("-height must be 720 or 1080")
	}
	return o, nil
}

// Results is what BENCH_OUT receives.
type Results struct {
	Command  string    `json:"command"`
	Quick    bool      `json:"quick"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Machine  Machine   `json:"machine"`
	Clip     ClipInfo  `json:"clip"`
	// Reference is the FFmpeg command every stream is compared with.
	Reference string          `json:"reference"`
	CPU       *CPUResult      `json:"cpu_per_camera,omitempty"`
	Memory    *MemoryResult   `json:"memory,omitempty"`
	Capacity  *CapacityResult `json:"capacity,omitempty"`
	Errors    []string        `json:"errors,omitempty"`
}

// Machine is what the figures depend on.
type Machine struct {
	NProc        int     `json:"nproc"`
	CPUModel     string  `json:"cpu_model"`
	MemTotalMiB  float64 `json:"mem_total_mib"`
	Kernel       string  `json:"kernel"`
	Debian       string  `json:"debian,omitempty"`
	Go           string  `json:"go"`
	FFmpeg       string  `json:"ffmpeg"`
	LoadAvgStart string  `json:"loadavg_start"`
	LoadAvgEnd   string  `json:"loadavg_end,omitempty"`
}

// ClipInfo describes the simulated cameras' footage.
type ClipInfo struct {
	Path     string  `json:"path"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	FPS      float64 `json:"fps"`
	Frames   int     `json:"frames"`
	Seconds  float64 `json:"seconds"`
	MbitPerS float64 `json:"mbit_per_s"`
	GOP      int     `json:"gop_frames"`
}

func run(args []string) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return errors.New("ffmpeg is not installed (run `make deps`)")
	}
	if err := os.MkdirAll(o.artifacts, 0o755); err != nil {
		return err
	}
	res := &Results{Command: "bench-streams " + strings.Join(args, " "), Quick: o.quick, Started: time.Now().UTC(), Machine: machine(),
		Reference: "ffmpeg " + strings.Join(ffmpegArgs("rtsp://127.0.0.1:PORT/camNNN"), " ")}
	if o.quick && !strings.Contains(res.Command, "quick") {
		res.Command += " (BENCH_QUICK=1)"
	}
	fmt.Printf("bench streams: %d cores (%s), %s, %s; load average %s\n",
		res.Machine.NProc, res.Machine.CPUModel, res.Machine.Go, res.Machine.FFmpeg, res.Machine.LoadAvgStart)

	mk, cancel := context.WithTimeout(ctx, 5*time.Minute)
	clipPath, err := footage.Cache{Dir: footage.DefaultDir()}.BenchCamera(mk, o.height)
	cancel()
	if err != nil {
		return err
	}
	if res.Clip, err = clipInfo(clipPath); err != nil {
		return err
	}
	c := res.Clip
	fmt.Printf("footage: %s, %dx%d %.0f fps, %.2f Mbit/s, GOP %d, %.0f s loop\n\n", c.Path, c.Width, c.Height, c.FPS, c.MbitPerS, c.GOP, c.Seconds)
	save := func() {
		if err := writeJSON(o.out, res); err != nil {
			fmt.Fprintln(os.Stderr, "bench: writing results:", err)
		}
	}
	fail := func(part string, err error) {
		msg := fmt.Sprintf("%s: %v", part, err)
		res.Errors = append(res.Errors, msg)
		fmt.Fprintln(os.Stderr, "bench:", msg)
	}
	if o.parts["cpu"] && ctx.Err() == nil {
		if res.CPU, err = measureCPU(ctx, o, c); err != nil {
			fail("cpu", err)
		}
		save()
	}
	if o.parts["memory"] && ctx.Err() == nil {
		if res.Memory, err = measureMemory(ctx, o, c); err != nil {
			fail("memory", err)
		}
		save()
	}
	if o.parts["capacity"] && ctx.Err() == nil {
		if res.Capacity, err = measureCapacity(ctx, o, c, res.CPU); err != nil {
			fail("capacity", err)
		}
	}
	res.Finished = time.Now().UTC()
	res.Machine.LoadAvgEnd = loadAvg()
	save()
	printSummary(res)
	fmt.Printf("\nresults: %s\n", o.out)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("%d part(s) failed", len(res.Errors))
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func clipInfo(path string) (ClipInfo, error) {
	info, pkts, err := av.ReadFile(path)
	if err != nil {
		return ClipInfo{}, err
	}
	c := ClipInfo{Path: path, Width: info.Width, Height: info.Height, FPS: info.FPS, Frames: len(pkts)}
	if c.FPS <= 0 {
		return c, fmt.Errorf("%s: unknown frame rate", path)
	}
	c.Seconds = float64(len(pkts)) / c.FPS
	bytes, lastKey := 0, -1
	for i, p := range pkts {
		for _, n := range p.AU {
			bytes += len(n)
		}
		if p.Key {
			if lastKey >= 0 && c.GOP == 0 {
				c.GOP = i - lastKey
			}
			lastKey = i
		}
	}
	c.MbitPerS = float64(bytes) * 8 / c.Seconds / 1e6
	return c, nil
}

func machine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		m.Debian = strings.TrimSpace(string(b))
	}
	if mem, err := memStatusFile("/proc/meminfo"); err == nil {
		m.MemTotalMiB = mem["MemTotal"] / 1024
	}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-version").Output(); err == nil {
		line, _, _ := strings.Cut(string(out), "\n")
		if f := strings.Fields(line); len(f) >= 3 {
			m.FFmpeg = "ffmpeg " + f[2]
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// memStatusFile reads "Key: value kB" lines, in KiB.
func memStatusFile(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		var n float64
		if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n); err == nil {
			out[k] = n
		}
	}
	return out, nil
}
