package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"
)

// keepPace is the share of real time a stream must be processed at over a
// trial window to count as keeping up (frames received, decoded and, for
// Vigil, analysed at 5 fps).
const keepPace = 0.98

// noisy is the load of other users, in cores, above which a failed trial
// is run once more.
const noisy = 0.25

// analysisFPS is the edge's default analysis rate, which the cam child uses.
const analysisFPS = 5.0

// Trial is one capacity trial: n streams for a window.
type Trial struct {
	Side    string  `json:"side"` // vigil or ffmpeg
	N       int     `json:"n"`
	Phase   string  `json:"phase"` // search, retry (of a failure under load) or confirm
	WindowS float64 `json:"window_s"`
	Pass    bool    `json:"pass"`
	Why     string  `json:"why,omitempty"`
	// Worst stream: frames processed over the window / real time. For
	// Vigil, min over cameras of received/expected and analysed·3/received.
	MinPace      float64 `json:"min_pace"`
	Dropped      float64 `json:"dropped"`
	DecodeErrors float64 `json:"decode_errors,omitempty"`
	Reconnects   float64 `json:"reconnects,omitempty"`
	// CPU over the window, in cores: the side's process(es), the
	// simulator, and everything else on the machine (other users).
	ClientCores float64   `json:"client_cores"`
	SimCores    float64   `json:"sim_cores"`
	OtherCores  float64   `json:"other_cores"`
	Started     time.Time `json:"started"`
}

// CapacityResult is part (b).
type CapacityResult struct {
	Vigil           int     `json:"vigil_cameras"`
	FFmpeg          int     `json:"ffmpeg_streams"`
	VigilConfirmed  bool    `json:"vigil_confirmed"`
	FFmpegConfirmed bool    `json:"ffmpeg_confirmed"`
	ConfirmS        float64 `json:"confirm_window_s"`
	Ratio           float64 `json:"ratio_vigil_to_ffmpeg"`
	Target          float64 `json:"target_min_ratio"`
	Pass            bool    `json:"pass"`
	// Simulator CPU per stream served, in cores, at the confirmed N.
	SimCoresPerStream float64 `json:"sim_cores_per_stream"`
	Trials            []Trial `json:"trials"`
}

// startSim starts the simulator child with n cameras.
func startSim(ctx context.Context, o options, clip ClipInfo, n int) (*child, string, error) {
	s, err := startSelf(ctx, "sim", o.verbose, "child-sim", "-clip", clip.Path, "-n", fmt.Sprint(n))
	if err != nil {
		return nil, "", err
	}
	line, err := s.readLine(60 * time.Second)
	if err != nil {
		s.stop(time.Second)
		return nil, "", err
	}
	addr, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		s.stop(time.Second)
		return nil, "", fmt.Errorf("sim: unexpected %q", line)
	}
	return s, addr, nil
}

// measureCapacity runs part (b): two searches, Vigil's and FFmpeg's,
// advanced in turns so that slow drifts in machine load hit both, then a
// long confirmation trial of each at its answer (stepping down if it fails).
func measureCapacity(ctx context.Context, o options, clip ClipInfo, cpu *CPUResult) (*CapacityResult, error) {
	res := &CapacityResult{Target: 0.8, ConfirmS: o.confirm.Seconds()}
	guessV, guessF := firstGuesses(o, cpu)
	grow, tol, maxTrials := 1.25, 0.04, 10
	if o.quick {
		grow, tol, maxTrials = 1.3, 0.1, 6
	}
	searches := map[string]*search{
		"vigil":  newSearch(guessV, o.maxN, maxTrials, grow, tol),
		"ffmpeg": newSearch(guessF, o.maxN, maxTrials, grow, tol),
	}
	fmt.Printf("(b) capacity: %dp%.0f streams, search trials of %v (first guesses: vigil %d, ffmpeg %d), confirmation %v\n",
		clip.Height, clip.FPS, o.trial, guessV, guessF, o.confirm)
	sides := []string{"vigil", "ffmpeg"}
	for {
		progressed := false
		for _, side := range sides {
			s := searches[side]
			if s.done() {
				continue
			}
			t, err := runTrial(ctx, o, clip, side, s.next, o.trial, "search")
			if err != nil {
				return res, err
			}
			res.Trials = append(res.Trials, t)
			if !t.Pass && t.OtherCores > noisy && s.trials+1 < s.maxTrials {
				// Other users' load only ever makes a trial fail: give a
				// failure under load one more chance before believing it.
				s.trials++
				if t, err = runTrial(ctx, o, clip, side, t.N, o.trial, "retry"); err != nil {
					return res, err
				}
				res.Trials = append(res.Trials, t)
			}
			s.record(t.N, t.Pass)
			progressed = true
		}
		if !progressed {
			break
		}
	}
	confirmed, last, err := confirmAnswers(ctx, o, clip, sides, searches, res)
	if err != nil {
		return res, err
	}
	res.Vigil, res.FFmpeg = searches["vigil"].lo, searches["ffmpeg"].lo
	res.VigilConfirmed, res.FFmpegConfirmed = confirmed["vigil"], confirmed["ffmpeg"]
	if res.FFmpeg > 0 {
		res.Ratio = round(float64(res.Vigil)/float64(res.FFmpeg), 3)
	}
	res.Pass = res.Ratio >= res.Target && res.VigilConfirmed && res.FFmpegConfirmed
	if t, ok := last["vigil"]; ok && t.N > 0 {
		res.SimCoresPerStream = round(t.SimCores/float64(t.N), 4)
	}
	return res, nil
}

// firstGuesses are where the searches start: -guess, else what the (a)
// costs say fits the cores, else 8.
func firstGuesses(o options, cpu *CPUResult) (vigil, ffmpeg int) {
	if o.guess != 0 {
		return o.guess, o.guess
	}
	if cpu != nil && cpu.Vigil.CPUSecPerMin > 0 && cpu.FFmpeg.CPUSecPerMin > 0 {
		// Leave some room for the simulator and other users.
		cores := 0.8 * float64(runtime.NumCPU())
		return int(cores * 60 / cpu.Vigil.CPUSecPerMin), int(cores * 60 / cpu.FFmpeg.CPUSecPerMin)
	}
	return 8, 8
}

// confirmAnswers confirms each search's answer with a long trial, stepping
// down on failure (three attempts), and records the trials in res. last
// is each confirmed side's passing trial.
func confirmAnswers(ctx context.Context, o options, clip ClipInfo, sides []string, searches map[string]*search, res *CapacityResult) (confirmed map[string]bool, last map[string]Trial, err error) {
	confirmed, last = map[string]bool{}, map[string]Trial{}
	for attempt := 0; attempt < 3; attempt++ {
		for _, side := range sides {
			s := searches[side]
			if confirmed[side] || s.lo == 0 {
				continue
			}
			t, err := runTrial(ctx, o, clip, side, s.lo, o.confirm, "confirm")
			if err != nil {
				return confirmed, last, err
			}
			res.Trials = append(res.Trials, t)
			if t.Pass {
				confirmed[side], last[side] = true, t
			} else {
				s.retreat()
			}
		}
	}
	return confirmed, last, nil
}

// side is one trial's clients: Vigil's cam child or n ffmpeg processes.
type side interface {
	// connected reports whether every stream delivers video.
	connected() (bool, error)
	// sample reads per-stream processed frames and the CPU of the clients.
	sample() (sideSample, error)
	stop()
}

type sideSample struct {
	at  time.Time
	cpu float64
	// Per stream: frames received (Vigil) or decoded (ffmpeg); for Vigil
	// also analysed, dropped, decode errors and reconnects.
	in, analysed                 []float64
	dropped, decErrs, reconnects float64
}

type vigilSide struct{ c *child }

func (v vigilSide) connected() (bool, error) {
	st, err := snap(v.c)
	if err != nil {
		return false, err
	}
	for _, s := range st {
		if s.Analysed == 0 {
			return false, nil
		}
	}
	return true, nil
}

func (v vigilSide) sample() (sideSample, error) {
	st, err := snap(v.c)
	if err != nil {
		return sideSample{}, err
	}
	cpu, err := cpuSeconds(v.c.pid())
	if err != nil {
		return sideSample{}, err
	}
	s := sideSample{at: time.Now(), cpu: cpu}
	for _, c := range st {
		s.in = append(s.in, c.FramesIn)
		s.analysed = append(s.analysed, c.Analysed)
		s.dropped += c.Dropped
		s.decErrs += c.DecodeErrors
		s.reconnects += c.Reconnects
	}
	return s, nil
}

func (v vigilSide) stop() { v.c.stop(10 * time.Second) }

type ffmpegSide []*ffmpeg

func (f ffmpegSide) connected() (bool, error) {
	for _, p := range f {
		if !p.alive() {
			return false, fmt.Errorf("%s exited: %s", p.name, lastLines(p.stderr.String(), 3))
		}
		if n, _ := p.progress(); n == 0 {
			return false, nil
		}
	}
	return true, nil
}

func (f ffmpegSide) sample() (sideSample, error) {
	s := sideSample{at: time.Now()}
	for _, p := range f {
		if !p.alive() {
			return s, fmt.Errorf("%s exited: %s", p.name, lastLines(p.stderr.String(), 3))
		}
		cpu, err := cpuSeconds(p.pid())
		if err != nil {
			return s, err
		}
		n, _ := p.progress()
		s.cpu += cpu
		s.in = append(s.in, float64(n))
		s.decErrs += float64(p.stderr.counted())
	}
	return s, nil
}

func (f ffmpegSide) stop() {
	for _, p := range f {
		p.cmd.Process.Kill()
	}
	for _, p := range f {
		p.stop(0)
	}
}

// runTrial serves n cameras and runs one side's clients on them. The
// window starts once every stream delivers (and, for Vigil, has analysed
// a frame) plus the warm-up, and ends early once failure is certain:
// Vigil dropped frames, or a stream fell below 90 % of real time.
func runTrial(ctx context.Context, o options, clip ClipInfo, sideName string, n int, window time.Duration, phase string) (Trial, error) {
	t := Trial{Side: sideName, N: n, Phase: phase, Started: time.Now().UTC()}
	fmt.Printf("    %-7s %-6s n=%-3d ", phase, sideName, n)
	sim, addr, err := startSim(ctx, o, clip, n)
	if err != nil {
		return t, err
	}
	defer sim.stop(5 * time.Second)
	sd, err := startSide(ctx, o, sideName, "rtsp://"+addr+"/", n)
	if err != nil {
		return t, err
	}
	defer sd.stop()
	finish := func(pass bool, why string) (Trial, error) {
		t.Pass, t.Why = pass, why
		verdict := "pass"
		if !pass {
			verdict = "FAIL: " + why
		}
		fmt.Printf("%s (pace %.3f, client %.2f cores, sim %.2f, others %.2f)\n", verdict, t.MinPace, t.ClientCores, t.SimCores, t.OtherCores)
		return t, nil
	}
	if err := waitFor(ctx, 30*time.Second+time.Duration(n)*200*time.Millisecond, sd.connected); err != nil {
		if ctx.Err() != nil {
			return t, ctx.Err()
		}
		return finish(false, "not every stream came up: "+err.Error())
	}
	if err := sleep(ctx, o.warmup); err != nil {
		return t, err
	}
	a, err := sd.sample()
	if err != nil {
		return finish(false, err.Error())
	}
	simA, _ := cpuSeconds(sim.pid())
	busyA, _ := systemBusy()
	var b sideSample
	var why string
	for end := time.Now().Add(window); time.Now().Before(end); {
		if err := sleep(ctx, min(5*time.Second, time.Until(end))); err != nil {
			return t, err
		}
		if b, err = sd.sample(); err != nil {
			return finish(false, err.Error())
		}
		why = judge(&t, a, b, clip.FPS)
		elapsed := b.at.Sub(a.at)
		if b.dropped > 0 || (elapsed >= 10*time.Second && t.MinPace < 0.9) {
			break // certain failure: stop early
		}
	}
	simB, _ := cpuSeconds(sim.pid())
	busyB, _ := systemBusy()
	w := b.at.Sub(a.at).Seconds()
	t.WindowS = round(w, 1)
	t.ClientCores = round((b.cpu-a.cpu)/w, 2)
	t.SimCores = round((simB-simA)/w, 2)
	t.OtherCores = round((busyB-busyA)/w-t.ClientCores-t.SimCores, 2)
	return finish(why == "", why)
}

// startSide starts one side's clients on the n streams at base: Vigil's
// cam child (once it is ready) or one ffmpeg per stream.
func startSide(ctx context.Context, o options, sideName, base string, n int) (side, error) {
	if sideName == "vigil" {
		c, err := startSelf(ctx, "vigil", o.verbose, "child-cam", "-base", base, "-n", fmt.Sprint(n), "-mode", "full")
		if err != nil {
			return nil, err
		}
		if _, err := c.readLine(30 * time.Second); err != nil {
			c.stop(time.Second)
			return nil, err
		}
		return vigilSide{c}, nil
	}
	var ffs ffmpegSide
	for i := range n {
		f, err := startFFmpeg(ctx, fmt.Sprintf("ffmpeg-%d", i), base+camPath(i), o.verbose)
		if err != nil {
			ffs.stop()
			return nil, err
		}
		ffs = append(ffs, f)
	}
	return ffs, nil
}

// judge fills t's pace and counters from two samples and says why the
// window fails, or "" if every stream kept up.
func judge(t *Trial, a, b sideSample, fps float64) string {
	w := b.at.Sub(a.at).Seconds()
	expected := w * fps
	t.MinPace = math.Inf(1)
	var whys []string
	for i := range b.in {
		in := b.in[i] - a.in[i]
		t.MinPace = min(t.MinPace, in/expected)
		if b.analysed != nil && in > 0 {
			// Analysis at 5 of 15 fps: every third received frame.
			t.MinPace = min(t.MinPace, (b.analysed[i]-a.analysed[i])*fps/analysisFPS/in)
		}
	}
	t.MinPace = round(t.MinPace, 3)
	// Drops and reconnects count from the start of the trial; damaged
	// pictures only in the window, because ffmpeg joining a stream mid-GOP
	// complains about the missing references until the first keyframe.
	t.Dropped, t.DecodeErrors, t.Reconnects = b.dropped, b.decErrs-a.decErrs, b.reconnects
	if t.MinPace < keepPace {
		whys = append(whys, fmt.Sprintf("a stream ran at %.1f%% of real time", 100*t.MinPace))
	}
	if b.dropped > 0 {
		whys = append(whys, fmt.Sprintf("%.0f frames dropped", b.dropped))
	}
	if t.DecodeErrors > 0 {
		whys = append(whys, fmt.Sprintf("%.0f decode errors or lost packets", t.DecodeErrors))
	}
	if b.reconnects > 0 {
		whys = append(whys, fmt.Sprintf("%.0f reconnects", b.reconnects))
	}
	return strings.Join(whys, "; ")
}
