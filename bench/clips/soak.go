package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// soakResult is retention running by itself through many turnovers of
// the cameras' byte budgets.
type soakResult struct {
	cams      int
	budget    int64 // all cameras
	written   int64
	turnovers float64
	elapsed   time.Duration
	// After the first turnover: the most the store's files took, against
	// the budget, and what they took against the video kept.
	maxDisk, maxKept  int64
	maxOverBudget     float64
	overhead, maxOver float64
	evictions         float64
	amplification     float64 // bytes written to storage / video bytes
	gcFiles           float64
}

// soak records o.cams cameras as fast as the store takes them, each into
// a byte budget of o.soakBudget, for o.turnovers turnovers, and samples
// the disk every half turnover.
func soak(o options, clip *sim.Clip) (soakResult, error) {
	dir, err := os.MkdirTemp(o.dir, "soak-")
	if err != nil {
		return soakResult{}, err
	}
	defer os.RemoveAll(dir)
	reg := newRegistry()
	s, err := clips.Open(clips.Config{Dir: dir, Log: o.log, Registerer: reg, BucketDuration: 30 * time.Second,
		Default: clips.CameraConfig{MaxBytes: o.soakBudget}})
	if err != nil {
		return soakResult{}, err
	}
	defer s.Close()
	recs := make([]*clips.Recorder, o.cams)
	feeds := make([]*feed, o.cams)
	for c := range recs {
		if recs[c], err = s.Recorder(fmt.Sprintf("cam%02d", c)); err != nil {
			return soakResult{}, err
		}
		feeds[c] = &feed{clip: clip, base: epoch}
	}
	res := soakResult{cams: o.cams, budget: o.soakBudget * int64(o.cams)}
	steps := int(2 * o.turnovers)
	start, io0 := time.Now(), writeBytes()
	var sum float64
	var samples int
	for step := 1; step <= steps; step++ {
		var wg sync.WaitGroup
		written := make([]int64, o.cams)
		for c, r := range recs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for written[c] < o.soakBudget/2 {
					au := feeds[c].next()
					for r.Pending() > 2<<20 {
						time.Sleep(200 * time.Microsecond)
					}
					r.Write(au)
					written[c] += int64(stored(au))
				}
			}()
		}
		wg.Wait()
		for _, n := range written {
			res.written += n
		}
		if err := s.Flush(context.Background()); err != nil {
			return res, err
		}
		st := s.Stats()
		if step <= 2 { // the first turnover fills the budgets
			continue
		}
		res.maxDisk = max(res.maxDisk, st.DiskUsed)
		res.maxKept = max(res.maxKept, st.Bytes)
		over := float64(st.DiskUsed) / float64(st.Bytes)
		if o.verbose {
			fmt.Fprintf(os.Stderr, "soak step %d/%d: kept %.0f MiB, on disk %.0f MiB (%.3f×)\n", step, steps, mib(st.Bytes), mib(st.DiskUsed), over)
		}
		res.maxOver = max(res.maxOver, over)
		sum += over
		samples++
	}
	res.elapsed = time.Since(start)
	res.amplification = float64(writeBytes()-io0) / float64(res.written)
	res.turnovers = float64(res.written) / float64(res.budget)
	res.maxOverBudget = float64(res.maxDisk) / float64(res.budget)
	if samples > 0 {
		res.overhead = sum / float64(samples)
	}
	res.evictions = reg.sum("vigil_clips_evicted_bytes_total")
	res.gcFiles = reg.sum("vigil_clips_vlog_gc_total")
	if d := reg.sum("vigil_clips_dropped_total"); d > 0 {
		return res, fmt.Errorf("soak dropped %v access units", d)
	}
	return res, nil
}
