package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// results is what the JSON file receives.
type results struct {
	Command  string         `json:"command"`
	Quick    bool           `json:"quick"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished,omitzero"`
	Machine  string         `json:"machine"`
	Footage  string         `json:"footage"`
	Mbps     float64        `json:"camera_mbit_per_s"`
	Recorded string         `json:"recorded"` // length of the history
	History  string         `json:"history"`
	Window   string         `json:"window"`
	Step     string         `json:"step"`
	Buffer   string         `json:"buffer"`
	Ahead    string         `json:"ahead"`
	Startup  startupResult  `json:"startup"`
	Capacity capacityResult `json:"capacity"`
}

func newResults(o options, e *env, began time.Time) *results {
	bytes := 0
	for _, p := range e.clip.Packets {
		for _, nalu := range p.AU {
			bytes += len(nalu)
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	loadavg := strings.Join(strings.Fields(string(load))[:3], " ")
	name := e.clipPath[strings.LastIndexByte(e.clipPath, '/')+1:]
	return &results{
		Command: "go run ./bench/playback" + map[bool]string{true: " -quick", false: ""}[o.quick], Quick: o.quick, Started: began.UTC(),
		Machine:  fmt.Sprintf("%s, %d cores, GOMAXPROCS %d, %s, load average %s at the start", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadavg),
		Footage:  fmt.Sprintf("%s: %dx%d, %.0f fps H.264, keyframe every 2 s", name, e.clip.Info.Width, e.clip.Info.Height, e.clip.Info.FPS),
		Mbps:     float64(bytes) * 8 / 1e6 / e.clip.Duration.Seconds(),
		Recorded: e.recTo.Sub(e.recFrom).String(),
		History:  fmt.Sprintf("%s to %s", e.recFrom.Format(time.RFC3339), e.recTo.Format(time.RFC3339)),
		Window:   o.window.String(), Step: o.step.String(), Buffer: o.buffer.String(), Ahead: o.ahead.String(),
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func (r *results) printHeader() {
	fmt.Printf("## Recorded playback (`bench/playback`)\n\n")
	fmt.Printf("Command: `%s` (part of `make bench`), %s; %s.\n", r.Command, r.Started.Format("2006-01-02 15:04 MST"), r.Machine)
	fmt.Printf("Camera: %s at %.2f Mbit/s, simulated over RTSP in real time; %s of history (%s) written into the edge's clip store before it started, then recorded live.\n",
		r.Footage, r.Mbps, r.Recorded, r.History)
	fmt.Printf("Central and the edge run together in one child process (their CPU below); the camera simulator and every client run in the bench process; all share the machine's cores.\n\n")
}

func (r *results) printStartup() {
	s := r.Startup
	row := func(what string, d dist) {
		fmt.Printf("| %s | %.0f ms | %.0f ms | %.0f ms |\n", what, d.P50, d.P95, d.Max)
	}
	fmt.Printf("### Click to first frame (%d tries of each kind at moments spread over the %s of history, every read cold)\n\n", s.Tries, r.Recorded)
	fmt.Println("| measured | p50 | p95 | max |")
	fmt.Println("| --- | --- | --- | --- |")
	row("**click → first moof+mdat whole at the client** (POST session, GET the 10 s window)", s.Click)
	row("**the same, keyframes-only**", s.ClickKeyframes)
	row("reference: clip route (`GET /api/v1/edges/{id}/cameras/{camera}/clip`), same 10 s, time to first byte", s.ClipTTFB)
	fmt.Printf("| **ratio click / clip TTFB** | %.2f× | %.2f× | |\n", s.RatioP50, s.RatioP95)
	fmt.Printf("| ratio keyframes-only click / clip TTFB | %.2f× | | |\n", s.KeyRatioP50)
	row("click → first byte of the window (what the reference measures)", s.ClickTTFB)
	fmt.Printf("| ratio click → first byte / clip TTFB | %.2f× | %.2f× | |\n", s.ClickTTFB.P50/s.ClipTTFB.P50, s.ClickTTFB.P95/s.ClipTTFB.P95)
	row("POST /api/v1/playback/sessions alone", s.Session)
	row(fmt.Sprintf("whole 10 s window (%.1f MB) from the click", s.WindowMB), s.Window)
	row(fmt.Sprintf("whole keyframes-only window (%.2f MB) from the click", s.WindowKeyMB), s.WindowKey)
	row("clip route, whole answer", s.ClipWhole)
	verdict := "**met**: every try of both kinds ≤ 2 s"
	if !s.WithinTarget {
		verdict = "**NOT met** by every try"
	}
	fmt.Printf("\nTarget ≤ 2 s from click to first frame: %s. ffprobe: %s. Other processes on the machine used %.0f %% of one core during the tries.\n\n", verdict, s.Probe, s.OthersCPU)
}

func (r *results) printCapacity() {
	c := r.Capacity
	fmt.Printf("### Playback viewers of one edge at %.1f Mbit/s each, live view watched throughout (%v per step)\n\n", r.Mbps, r.Step)
	fmt.Println("| viewers | keeping up | worst lag | failed requests | Mbit/s delivered | window p95 | first fragment p95 | central+edge CPU | clients CPU | other processes / steal | live p99 latency (× N=0) | live p99 gap (× N=0) | live drops edge / cut / ends | live unaffected | camera RTP lost / recording dropped |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	rows := append([]stepResult{c.Alone}, c.Steps...)
	if c.AloneAgain != nil {
		rows = append(rows, *c.AloneAgain)
	}
	for i, st := range rows {
		name, verdict := fmt.Sprint(st.Viewers), map[bool]string{true: "yes", false: "**no**"}[st.Unaffected]
		if i > 0 && st.Viewers == 0 {
			name, verdict = "0 again, after the ladder (noise check)", "–"
		}
		fmt.Printf("| %s | %d | %s | %d | %.1f | %.0f ms | %.0f ms | %.0f %% | %.0f %% | %.0f %% / %.0f %% | %.0f ms (%.2f×) | %.0f ms (%.2f×) | %.0f / %.0f / %d | %s | %.0f / %.0f |\n",
			name, st.KeepingUp, lag(st), st.Errors, st.Mbps, st.WindowTime.P95, st.StartUnder.P95, st.ServerCPU, st.ClientCPU, st.OthersCPU, st.StealCPU,
			st.Live.Latency.P99, st.LatencyRatio, st.Live.Gap.P99, st.GapRatio, st.EdgeDrops, st.CentralCuts, st.Live.Ends,
			verdict, st.RTPLost, st.RecordingDropped)
	}
	for _, st := range c.Steps {
		if st.FirstError != "" {
			fmt.Printf("\nN=%d: %d failed window requests (each asked again 200 ms later), the first: %s\n", st.Viewers, st.Errors, st.FirstError)
		}
	}
	if len(c.Skipped) > 0 {
		fmt.Printf("\nNot run: N = %v (a viewer fell behind at the step before, or the time budget was spent).\n", c.Skipped)
	}
	fmt.Printf("\nCPU in %% of one core (%d cores in all); “other processes” is the rest of the machine (/proc/stat less central+edge and this process), steal what the hypervisor gave elsewhere. A viewer keeps up while its received media ≥ elapsed time − %s from the arrival of its first window (it asks for the next window %s before its buffer runs dry, and again 200 ms after a failed request); worst lag > 0 is a stall. Mbit/s delivered counts every byte to the viewers in the step, their buffers filling ahead included; each window starts at the keyframe at or before where the last one ended. Live unaffected: p99 latency and gap within %.2f× of N=0, no live data dropped at the edge, no viewer cut at central, no connection ended.\n",
		runtime.NumCPU(), r.Buffer, r.Ahead, unaffectedRatio)
	fmt.Printf("\n**Largest N with every viewer keeping up and live unaffected: %d** (every viewer keeping up: %d).", c.MaxViewers, c.MaxKeepingUp)
	if a := c.AloneAgain; a != nil {
		fmt.Printf(" Live alone again after the ladder: p99 latency %.2f×, gap %.2f× of the first N=0, the machine's own drift over the run.", a.LatencyRatio, a.GapRatio)
	}
	fmt.Println()
}

func lag(st stepResult) string {
	if st.Viewers == 0 {
		return "–"
	}
	if st.WorstLagMs <= 0 {
		return fmt.Sprintf("none (≥ %.1f s spare)", -st.WorstLagMs/1000)
	}
	return fmt.Sprintf("**%.1f s stall**", st.WorstLagMs/1000)
}

func (r *results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
