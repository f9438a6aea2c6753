package main

import (
	"fmt"
	"slices"
	"strings"
)

func verdict(pass bool) string {
	if pass {
		return "meets target"
	}
	return "MISSES target"
}

func printSummary(r *Results) {
	fmt.Printf("\n==== streams benchmark summary (%s) ====\n", map[bool]string{true: "quick", false: "full"}[r.Quick])
	m := r.Machine
	fmt.Printf("machine: %d × %s, %.0f MiB, Linux %s, Debian %s, %s, %s; load average %s → %s\n",
		m.NProc, m.CPUModel, m.MemTotalMiB, m.Kernel, m.Debian, m.Go, m.FFmpeg, m.LoadAvgStart, m.LoadAvgEnd)
	c := r.Clip
	fmt.Printf("stream:  %dx%d %.0f fps H.264, %.2f Mbit/s, keyframe every %d frames (vtest.avi via footage.BenchCamera)\n", c.Width, c.Height, c.FPS, c.MbitPerS, c.GOP)
	fmt.Printf("reference: %s\n", r.Reference)
	if r.CPU != nil {
		printCPU(r.CPU)
	}
	if r.Memory != nil {
		printMemory(r.Memory)
	}
	if r.Capacity != nil {
		printCapacity(r.Capacity, m.NProc)
	}
	if len(r.Errors) > 0 {
		fmt.Printf("\nerrors: %s\n", strings.Join(r.Errors, "; "))
	}
}

// printCPU prints part (a).
func printCPU(a *CPUResult) {
	fmt.Printf("\n(a) CPU per camera, %.0f s window, all clients on one stream at once (other load %.2f cores):\n", a.WindowS, a.OtherCores)
	row := func(name string, c CPUCost) {
		fmt.Printf("    %-34s %6.2f CPU s/video min  %5.2f ms/frame  %5.1f %% of a core\n", name, c.CPUSecPerMin, c.MsPerFrame, c.PercentOfACore)
	}
	row("vigil camera session (full)", a.Vigil)
	row("vigil, no snapshots (nil Parent)", a.VigilNoSnapshot)
	row("vigil, decode only (no analysis)", a.VigilDecodeOnly)
	row("vigil, RTSP session only", a.VigilRTSPOnly)
	row("ffmpeg -threads 1 … -f null -", a.FFmpeg)
	row("vigil, loop filter on (full_decode)", a.VigilFullDecode)
	row("ffmpeg -skip_loop_filter all", a.FFmpegSkipLoop)
	row("simulator (1 stream, 7 readers)", a.Sim)
	fmt.Printf("    breakdown of vigil: RTSP %.2f + decode %.2f + gray/motion %.2f + snapshots %.2f CPU s/video min (%.1f motion events/min)\n",
		a.Breakdown.RTSP, a.Breakdown.Decode, a.Breakdown.Motion, a.Breakdown.Snapshots, a.MotionEventsPerMin)
	fmt.Printf("    RATIO vigil/ffmpeg = %.3f (target ≤ %.2f: %s); per 10 s interval %.2f–%.2f, median %.2f; decode-only/ffmpeg = %.3f\n",
		a.Ratio, a.Target, verdict(a.Pass), slices.Min(append(a.IntervalRatios, a.Ratio)), slices.Max(append(a.IntervalRatios, a.Ratio)), median(a.IntervalRatios), a.DecodeRatio)
	fmt.Printf("    side by side: vigil with the loop filter on / ffmpeg = %.3f; vigil / ffmpeg skipping the loop filter too (like for like) = %.3f\n",
		a.RatioFullDecode, a.RatioLikeForLike)
	if p := a.Profile; p != nil {
		if len(p.PerfVigil) > 0 {
			fmt.Printf("    perf, share of samples by library: vigil %s\n", topShares(p.PerfVigil, 6))
			fmt.Printf("                                       ffmpeg %s\n", topShares(p.PerfFFmpeg, 6))
		}
		if p.PprofFile != "" {
			fmt.Printf("    pprof of the vigil child: %s (go tool pprof -top %s)\n", p.PprofFile, p.PprofFile)
		}
		if p.Note != "" {
			fmt.Printf("    note: %s\n", p.Note)
		}
	}
}

// printMemory prints part (c).
func printMemory(mem *MemoryResult) {
	fmt.Printf("\n(c) edge node memory (edge.Start, Badger outbox, uplink down):\n")
	for _, p := range mem.Points {
		per := ""
		if p.Cameras > 0 {
			per = fmt.Sprintf(" = %.1f MiB/camera (HWM %.1f)", p.RSSPerCamera, p.HWMPerCamera)
		}
		if p.Dropped > 0 {
			per += fmt.Sprintf(" (CPU-starved: %.0f frames dropped)", p.Dropped)
		}
		fmt.Printf("    %2d cameras: VmRSS %6.1f MiB, VmHWM %6.1f MiB%s\n", p.Cameras, p.RSS, p.HWM, per)
	}
	if mem.Fitted {
		fmt.Printf("    slope %.1f MiB per added camera, intercept %.1f MiB\n", mem.SlopeMiB, mem.BaseMiB)
	}
	fmt.Printf("    target ≤ %.0f MiB per camera (VmHWM/N, N ≥ 2): %s", mem.Target, verdict(mem.Pass))
	if ok, measured := mem.PassByN["1"]; measured && !ok {
		fmt.Printf("; a single camera carries the whole fixed part and misses it")
	}
	fmt.Println()
}

// printCapacity prints part (b).
func printCapacity(b *CapacityResult, nproc int) {
	fmt.Printf("\n(b) cameras sustained on %d cores, every stream at ≥ %.0f %% of real time:\n", nproc, 100*keepPace)
	conf := func(ok bool) string {
		if ok {
			return fmt.Sprintf("confirmed over %.0f s", b.ConfirmS)
		}
		return "NOT confirmed"
	}
	fmt.Printf("    vigil  (RTSP + decode + motion at 5 fps, 0 drops): %3d cameras, %s\n", b.Vigil, conf(b.VigilConfirmed))
	fmt.Printf("    ffmpeg (one -threads 1 process per stream):        %3d streams, %s\n", b.FFmpeg, conf(b.FFmpegConfirmed))
	v := verdict(b.Pass)
	if !b.VigilConfirmed || !b.FFmpegConfirmed {
		v = "INCONCLUSIVE: an answer failed its confirmation trials"
	}
	fmt.Printf("    RATIO vigil/ffmpeg = %.3f (target ≥ %.2f: %s)\n", b.Ratio, b.Target, v)
	others := 0.0
	for _, t := range b.Trials {
		others += t.OtherCores
	}
	if len(b.Trials) > 0 {
		others /= float64(len(b.Trials))
	}
	fmt.Printf("    other load on the machine averaged %.2f cores over the trials", others)
	if others > noisy {
		fmt.Printf(": both figures are lower bounds; rerun on a quiet machine")
	}
	fmt.Println()
	fmt.Printf("    simulator: %.3f cores per stream served (competes for the same cores; not subtracted)\n", b.SimCoresPerStream)
	for _, t := range b.Trials {
		if t.Phase == "confirm" {
			fmt.Printf("    confirm %-6s n=%-3d %.0f s: pass=%v pace %.3f, client %.2f cores, sim %.2f, others %.2f %s\n",
				t.Side, t.N, t.WindowS, t.Pass, t.MinPace, t.ClientCores, t.SimCores, t.OtherCores, t.Why)
		}
	}
}

func topShares(m map[string]float64, n int) string {
	type kv struct {
		k string
		v float64
	}
	var s []kv
	for k, v := range m {
		s = append(s, kv{k, v})
	}
	slices.SortFunc(s, func(a, b kv) int {
		switch {
		case a.v > b.v:
			return -1
		case a.v < b.v:
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for i, e := range s {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.1f%%", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}
