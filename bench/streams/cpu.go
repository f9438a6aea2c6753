package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CPUCost is one process's CPU over the measuring window.
type CPUCost struct {
	CPUSeconds     float64 `json:"cpu_s"`
	Frames         float64 `json:"frames"`
	MsPerFrame     float64 `json:"ms_per_frame"`
	CPUSecPerMin   float64 `json:"cpu_s_per_video_min"`
	PercentOfACore float64 `json:"percent_of_a_core"`
}

// CPUResult is part (a).
type CPUResult struct {
	WindowS float64 `json:"window_s"`
	// Vigil is one camera.New(...).Run session: RTSP, decode of every
	// frame, gray 320 px + motion at 5 fps and a JPEG per motion event.
	Vigil CPUCost `json:"vigil"`
	// The same session without snapshots (nil Parent), analysing one frame
	// an hour, and streams/rtsp.Run alone (units counted and dropped).
	VigilNoSnapshot CPUCost `json:"vigil_no_snapshot"`
	VigilDecodeOnly CPUCost `json:"vigil_decode_only"`
	VigilRTSPOnly   CPUCost `json:"vigil_rtsp_only"`
	FFmpeg          CPUCost `json:"ffmpeg"`
	// Side references for the analysis decoder's skipped in-loop filter:
	// Vigil's full session with the filter on (analysis.full_decode), and
	// ffmpeg skipping it too (-skip_loop_filter all), i.e. like for like.
	VigilFullDecode  CPUCost `json:"vigil_full_decode"`
	FFmpegSkipLoop   CPUCost `json:"ffmpeg_skip_loop_filter"`
	RatioFullDecode  float64 `json:"ratio_vigil_full_decode_to_ffmpeg"`
	RatioLikeForLike float64 `json:"ratio_vigil_to_ffmpeg_skip_loop_filter"`
	// Sim serves the one stream the five clients read.
	Sim CPUCost `json:"sim_1_stream_7_readers"`
	// MotionEventsPerMin is how often the full session encoded a snapshot.
	MotionEventsPerMin float64 `json:"motion_events_per_min"`
	// Breakdown of Vigil's cost in CPU s per video minute, by difference
	// of the processes above.
	Breakdown struct {
		RTSP      float64 `json:"rtsp_session"`
		Decode    float64 `json:"decode"`
		Motion    float64 `json:"gray_and_motion"`
		Snapshots float64 `json:"snapshots"`
	} `json:"breakdown_cpu_s_per_video_min"`
	Ratio          float64   `json:"ratio_vigil_to_ffmpeg"`
	IntervalRatios []float64 `json:"interval_ratios"`
	DecodeRatio    float64   `json:"ratio_vigil_decode_only_to_ffmpeg"`
	Target         float64   `json:"target_max_ratio"`
	Pass           bool      `json:"pass"`
	OtherCores     float64   `json:"other_load_cores"`
	Profile        *Profile  `json:"profile,omitempty"`
}

// Profile is where the time goes, from pprof (Go view of the Vigil child)
// and perf (both sides, by shared object) when perf is installed.
type Profile struct {
	WindowS      float64            `json:"window_s"`
	PprofFile    string             `json:"pprof_file,omitempty"`
	PprofTop     []string           `json:"pprof_top,omitempty"`
	PerfVigil    map[string]float64 `json:"perf_vigil_percent_by_dso,omitempty"`
	PerfFFmpeg   map[string]float64 `json:"perf_ffmpeg_percent_by_dso,omitempty"`
	PerfVigilTop []string           `json:"perf_vigil_top_symbols_outside_libavcodec,omitempty"`
	Note         string             `json:"note,omitempty"`
}

// counter is something the (a) window reads frames and CPU from.
type counter struct {
	name   string
	pid    int
	frames func() (float64, error)
}

type reading struct {
	cpu, frames float64
	at          time.Time
}

func (c counter) read() (reading, error) {
	cpu, err := cpuSeconds(c.pid)
	if err != nil {
		return reading{}, fmt.Errorf("%s: %w", c.name, err)
	}
	f, err := c.frames()
	if err != nil {
		return reading{}, err
	}
	return reading{cpu: cpu, frames: f, at: time.Now()}, nil
}

func cost(a, b reading, fps float64) CPUCost {
	return perFrame(b.cpu-a.cpu, b.frames-a.frames, b.at.Sub(a.at).Seconds(), fps)
}

func perFrame(cpu, frames, window, fps float64) CPUCost {
	c := CPUCost{CPUSeconds: round(cpu, 2), Frames: frames}
	if frames > 0 {
		c.MsPerFrame = round(cpu/frames*1000, 3)
		c.CPUSecPerMin = round(cpu/frames*fps*60, 3)
	}
	if window > 0 {
		c.PercentOfACore = round(cpu/window*100, 2)
	}
	return c
}

// camFrames asks a cam child for its first camera's received units.
func camFrames(c *child) func() (float64, error) {
	return func() (float64, error) {
		st, err := snap(c)
		if err != nil {
			return 0, err
		}
		return st[0].FramesIn, nil
	}
}

func snap(c *child) ([]camStats, error) {
	line, err := c.ask("snap", 10*time.Second)
	if err != nil {
		return nil, err
	}
	var st []camStats
	if err := json.Unmarshal([]byte(line), &st); err != nil || len(st) == 0 {
		return nil, fmt.Errorf("%s: bad snapshot %q", c.name, line)
	}
	return st, nil
}

// Indices of the (a) window's counters (cpuClients.counters).
const iFull, iNoSnap, iDecode, iRTSP, iFFmpeg, iFullDecode, iFFmpegSkip, iSim = 0, 1, 2, 3, 4, 5, 6, 7

// measureCPU runs part (a): the four clients read one simulated camera at
// the same time, so machine noise hits all of them alike.
func measureCPU(ctx context.Context, o options, clip ClipInfo) (*CPUResult, error) {
	fmt.Printf("(a) CPU of one camera: vigil (full, full with the loop filter on, no-snapshot, decode-only, rtsp-only), ffmpeg and ffmpeg -skip_loop_filter all read one %dp stream together for %v\n", clip.Height, o.cpuWindow)
	sim, addr, err := startSim(ctx, o, clip, 1)
	if err != nil {
		return nil, err
	}
	defer sim.stop(5 * time.Second)
	cl := &cpuClients{}
	defer cl.stop()
	if err := cl.start(ctx, o, "rtsp://"+addr+"/", sim); err != nil {
		return nil, err
	}
	// Every client must be receiving before the warm-up starts.
	if err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		for _, c := range cl.counters[:iSim] {
			r, err := c.read()
			if err != nil || r.frames == 0 {
				return false, err
			}
		}
		return true, nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for video: %w", err)
	}
	if err := sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	var w cpuReadings
	if w.first, w.busy0, err = cl.readAll(); err != nil {
		return nil, err
	}
	st0, err := snap(cl.full)
	if err != nil {
		return nil, err
	}
	res := &CPUResult{Target: 1.15}
	if err := cl.window(ctx, &w, o.cpuWindow, clip.FPS, res); err != nil {
		return nil, err
	}
	st1, err := snap(cl.full)
	if err != nil {
		return nil, err
	}
	if err := res.fill(w, clip.FPS); err != nil {
		return res, err
	}
	res.MotionEventsPerMin = round((st1[0].Events-st0[0].Events)/res.WindowS*60, 1)
	if o.profile > 0 {
		p, err := profileCPU(ctx, o, cl.full, cl.ff)
		if err != nil {
			fmt.Println("    profiling failed:", err)
		}
		res.Profile = p
	}
	return res, nil
}

// cpuClients are the (a) window's processes: Vigil's camera sessions in
// their modes, the two ffmpeg references and the simulator, each with a
// counter (indexed iFull ... iSim).
type cpuClients struct {
	kids     []*child
	full     *child
	ff       *ffmpeg
	counters []counter
}

// start starts every client on the stream at base.
func (cl *cpuClients) start(ctx context.Context, o options, base string, sim *child) error {
	cam := func(mode string) (*child, error) {
		k, err := startSelf(ctx, "vigil-"+mode, o.verbose, "child-cam", "-base", base, "-n", "1", "-mode", mode)
		if err != nil {
			return nil, err
		}
		cl.kids = append(cl.kids, k)
		if _, err := k.readLine(20 * time.Second); err != nil {
			return nil, err
		}
		return k, nil
	}
	modes := []string{"full", "nosnap", "decode", "rtsp", "fulldecode"}
	cams := make([]*child, len(modes))
	for i, m := range modes {
		k, err := cam(m)
		if err != nil {
			return err
		}
		cams[i] = k
	}
	ff, err := startFFmpeg(ctx, "ffmpeg", base+camPath(0), o.verbose)
	if err != nil {
		return err
	}
	cl.kids = append(cl.kids, ff.child)
	ffSkip, err := startFFmpeg(ctx, "ffmpeg-skiploop", base+camPath(0), o.verbose, "-skip_loop_filter", "all")
	if err != nil {
		return err
	}
	cl.kids = append(cl.kids, ffSkip.child)
	cl.full, cl.ff = cams[0], ff
	cl.counters = []counter{
		{"vigil", cams[0].pid(), camFrames(cams[0])},
		{"vigil-nosnap", cams[1].pid(), camFrames(cams[1])},
		{"vigil-decode", cams[2].pid(), camFrames(cams[2])},
		{"vigil-rtsp", cams[3].pid(), camFrames(cams[3])},
		{"ffmpeg", ff.pid(), ffFrames(ff)},
		{"vigil-fulldecode", cams[4].pid(), camFrames(cams[4])},
		{"ffmpeg-skiploop", ffSkip.pid(), ffFrames(ffSkip)},
		{"sim", sim.pid(), func() (float64, error) { return 0, nil }},
	}
	return nil
}

func (cl *cpuClients) stop() {
	for _, k := range cl.kids {
		k.stop(5 * time.Second)
	}
}

// ffFrames counts the frames an ffmpeg client decoded.
func ffFrames(f *ffmpeg) func() (float64, error) {
	return func() (float64, error) {
		if !f.alive() {
			return 0, fmt.Errorf("ffmpeg exited: %s", lastLines(f.stderr.String(), 3))
		}
		n, _ := f.progress()
		return float64(n), nil
	}
}

// readAll reads every counter, and the whole machine's busy CPU seconds.
func (cl *cpuClients) readAll() ([]reading, float64, error) {
	var rs []reading
	for _, c := range cl.counters {
		r, err := c.read()
		if err != nil {
			return nil, 0, err
		}
		rs = append(rs, r)
	}
	busy, err := systemBusy()
	return rs, busy, err
}

// cpuReadings are the counters' readings at the start and end of the window
// and the machine's busy CPU seconds at both.
type cpuReadings struct {
	first, last  []reading
	busy0, busy1 float64
}

// window reads the counters for d after w.first, into w.last, printing
// and recording (in res) the Vigil/ffmpeg ratio every 10 s.
func (cl *cpuClients) window(ctx context.Context, w *cpuReadings, d time.Duration, fps float64, res *CPUResult) error {
	var err error
	interval := min(10*time.Second, d)
	prev := w.first
	for end := time.Now().Add(d); ; {
		wait := min(interval, time.Until(end))
		if wait < time.Second/2 && w.last != nil {
			break
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		if w.last, w.busy1, err = cl.readAll(); err != nil {
			return err
		}
		v, f := cost(prev[iFull], w.last[iFull], fps), cost(prev[iFFmpeg], w.last[iFFmpeg], fps)
		if v.MsPerFrame > 0 && f.MsPerFrame > 0 {
			res.IntervalRatios = append(res.IntervalRatios, round(v.MsPerFrame/f.MsPerFrame, 3))
		}
		prev = w.last
		fmt.Printf("    %3.0f s: vigil %.2f ms/frame, ffmpeg %.2f ms/frame (ratio %.2f)\n",
			w.last[0].at.Sub(w.first[0].at).Seconds(), v.MsPerFrame, f.MsPerFrame, v.MsPerFrame/f.MsPerFrame)
	}
	return nil
}

// fill computes each client's cost over the window, the ratios, the
// breakdown of Vigil's cost and the other load on the machine.
func (res *CPUResult) fill(w cpuReadings, fps float64) error {
	first, last := w.first, w.last
	res.WindowS = round(last[iFull].at.Sub(first[iFull].at).Seconds(), 1)
	res.Vigil = cost(first[iFull], last[iFull], fps)
	res.VigilNoSnapshot = cost(first[iNoSnap], last[iNoSnap], fps)
	res.VigilDecodeOnly = cost(first[iDecode], last[iDecode], fps)
	res.VigilRTSPOnly = cost(first[iRTSP], last[iRTSP], fps)
	res.FFmpeg = cost(first[iFFmpeg], last[iFFmpeg], fps)
	res.VigilFullDecode = cost(first[iFullDecode], last[iFullDecode], fps)
	res.FFmpegSkipLoop = cost(first[iFFmpegSkip], last[iFFmpegSkip], fps)
	// The simulator served one stream: count its frames as the session's.
	res.Sim = perFrame(last[iSim].cpu-first[iSim].cpu, res.Vigil.Frames, res.WindowS, fps)
	if res.FFmpeg.MsPerFrame <= 0 || res.Vigil.MsPerFrame <= 0 {
		return errors.New("no frames decoded in the window")
	}
	res.Ratio = round(res.Vigil.MsPerFrame/res.FFmpeg.MsPerFrame, 3)
	res.DecodeRatio = round(res.VigilDecodeOnly.MsPerFrame/res.FFmpeg.MsPerFrame, 3)
	res.RatioFullDecode = round(res.VigilFullDecode.MsPerFrame/res.FFmpeg.MsPerFrame, 3)
	if res.FFmpegSkipLoop.MsPerFrame > 0 {
		res.RatioLikeForLike = round(res.Vigil.MsPerFrame/res.FFmpegSkipLoop.MsPerFrame, 3)
	}
	res.Pass = res.Ratio <= res.Target
	res.Breakdown.RTSP = round(res.VigilRTSPOnly.CPUSecPerMin, 3)
	res.Breakdown.Decode = round(res.VigilDecodeOnly.CPUSecPerMin-res.VigilRTSPOnly.CPUSecPerMin, 3)
	res.Breakdown.Motion = round(res.VigilNoSnapshot.CPUSecPerMin-res.VigilDecodeOnly.CPUSecPerMin, 3)
	res.Breakdown.Snapshots = round(res.Vigil.CPUSecPerMin-res.VigilNoSnapshot.CPUSecPerMin, 3)
	mine := 0.0
	for i := range last {
		mine += last[i].cpu - first[i].cpu
	}
	res.OtherCores = round((w.busy1-w.busy0-mine)/res.WindowS, 2)
	return nil
}

// profileCPU profiles the full Vigil child (pprof: the Go view, cgo calls
// as single frames) and, where perf works, both it and ffmpeg by shared
// object, which shows how much of each is libavcodec.
func profileCPU(ctx context.Context, o options, vigil *child, ff *ffmpeg) (*Profile, error) {
	abs, _ := filepath.Abs(o.artifacts)
	p := &Profile{WindowS: o.profile.Seconds(), PprofFile: filepath.Join(abs, "vigil-camera.pprof")}
	fmt.Printf("    profiling for %v (pprof of the vigil child; perf of both if available)\n", o.profile)
	if r, err := vigil.ask("prof-start "+p.PprofFile, 10*time.Second); err != nil || r != "ok" {
		return p, fmt.Errorf("pprof start: %v %s", err, r)
	}
	perfOK := false
	if _, err := exec.LookPath("perf"); err == nil {
		perfOK = true
	}
	type perfRun struct {
		file string
		cmd  *exec.Cmd
	}
	var perfs []perfRun
	if perfOK {
		for _, t := range []struct {
			name string
			pid  int
		}{{"vigil", vigil.pid()}, {"ffmpeg", ff.pid()}} {
			file := filepath.Join(abs, "perf-"+t.name+".data")
			cmd := exec.CommandContext(ctx, "perf", "record", "-q", "-F", "499", "-p", strconv.Itoa(t.pid), "-o", file,
				"--", "sleep", strconv.FormatFloat(o.profile.Seconds(), 'f', 1, 64))
			if err := cmd.Start(); err != nil {
				perfOK = false
				break
			}
			perfs = append(perfs, perfRun{file, cmd})
		}
	}
	sleepErr := sleep(ctx, o.profile)
	for _, pr := range perfs {
		if err := pr.cmd.Wait(); err != nil {
			perfOK = false
		}
	}
	if r, err := vigil.ask("prof-stop", 10*time.Second); err != nil || r != "ok" {
		return p, fmt.Errorf("pprof stop: %v %s", err, r)
	}
	if sleepErr != nil {
		return p, sleepErr
	}
	exe, _ := os.Executable()
	if out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", exe, p.PprofFile).Output(); err == nil {
		p.PprofTop = pprofTop(string(out))
	} else {
		p.Note = "go tool pprof unavailable: " + err.Error()
	}
	if perfOK && len(perfs) == 2 {
		p.PerfVigil = perfByDSO(perfs[0].file)
		p.PerfFFmpeg = perfByDSO(perfs[1].file)
		p.PerfVigilTop = perfTopSymbols(perfs[0].file, 20)
	} else if p.Note == "" {
		p.Note = "perf not available: no per-library split"
	}
	return p, nil
}

// pprofTop keeps the header and the table of `go tool pprof -top`.
func pprofTop(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, " ")
		if l == "" || strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

// perfByDSO returns the share of samples per shared object, e.g.
// libavcodec.so.59: 88.7.
func perfByDSO(file string) map[string]float64 {
	out, err := exec.Command("perf", "report", "-i", file, "--sort", "dso", "--stdio", "-q").Output()
	if err != nil {
		return nil
	}
	m := map[string]float64{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil || v < 0.1 {
			continue
		}
		m[strings.Join(f[1:], " ")] += v
	}
	return m
}

// perfTopSymbols lists the hottest symbols outside libavcodec (whose
// symbols Debian strips; it is the same code on both sides) with their
// library.
func perfTopSymbols(file string, n int) []string {
	out, err := exec.Command("perf", "report", "-i", file, "--sort", "dso,sym", "--stdio", "-q").Output()
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "" || !strings.Contains(l, "%") || strings.Contains(l, "libavcodec") {
			continue
		}
		lines = append(lines, strings.Join(strings.Fields(l), " "))
		if len(lines) == n {
			break
		}
	}
	return lines
}

// waitFor polls cond every 500 ms until it holds, errs or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	if last != nil {
		return fmt.Errorf("not within %v: %w", timeout, last)
	}
	return fmt.Errorf("not within %v", timeout)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
