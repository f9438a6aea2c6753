package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// soakResult is retention running through many turnovers of the cameras'
// byte budgets.
type soakResult struct {
	cams      int
	budget    int64 // all cameras
	written   int64
	turnovers float64
	elapsed   time.Duration
	steps     int
	// After the first turnover: the most the store's directory took on
	// disk (du: allocated blocks, index included) after a flush and at any
	// background sample, against the budget.
	maxDisk, maxBg   int64
	bgSamples        int
	overBudget       int // samples after a flush above the budget
	bgOver           int // background samples above the budget
	maxOverBudget    float64
	maxBgOverBudget  float64
	overhead, maxOvr float64 // du / video bytes kept, mean and max
	overSamples      int
	keptMin, keptMax int64 // video bytes kept
	statsOverVideo   float64
	amplification    float64 // bytes written to storage / video bytes
	evicted          float64
	indexMax         int64 // du of index/
}

// soakStep is the video each camera records between two of the bench's
// flushes: the store's maintenance interval (retention runs at most once
// a second) at the cameras' real rate.
const soakStep = time.Second

// soak records o.cams cameras, each into a byte budget of o.soakBudget,
// for o.turnovers turnovers, in lockstep: every camera records soakStep
// of video (as fast as the store takes it), then Store.Flush (commit,
// fdatasync, retention) and a sample of du. A goroutine also samples du
// every 250 ms whatever the store is doing. Every 1/16 turnover the
// segments are scanned for the video bytes they hold.
func soak(o options, clip *sim.Clip) (soakResult, error) {
	dir, err := os.MkdirTemp(o.dir, "soak-")
	if err != nil {
		return soakResult{}, err
	}
	defer os.RemoveAll(dir)
	reg := newRegistry()
	// One-minute buckets: retention drops one segment at a time.
	s, err := clips.Open(clips.Config{Dir: dir, Log: o.log, Registerer: reg, BucketDuration: time.Minute,
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
	res := soakResult{cams: o.cams, budget: o.soakBudget * int64(o.cams), keptMin: -1}
	target := int64(o.turnovers * float64(res.budget))
	var steady atomic.Bool // after the first turnover
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if !steady.Load() {
				continue
			}
			d := du(dir)
			res.maxBg = max(res.maxBg, d)
			res.bgSamples++
			if d > res.budget {
				res.bgOver++
			}
		}
	}()
	start, io0 := time.Now(), writeBytes()
	var sum float64
	nextScan := res.budget
	for step := 1; res.written < target; step++ {
		var wg sync.WaitGroup
		written := make([]int64, o.cams)
		until := time.Duration(step) * soakStep
		for c, r := range recs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for feeds[c].pts() < until {
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
			close(stop)
			return res, err
		}
		res.steps = step
		if res.written < res.budget { // the first turnover fills the budgets
			continue
		}
		steady.Store(true)
		d := du(dir)
		res.maxDisk = max(res.maxDisk, d)
		if d > res.budget {
			res.overBudget++
		}
		if res.written < nextScan {
			continue
		}
		nextScan += res.budget / 16
		sc, err := scanSegments(dir)
		if err != nil {
			close(stop)
			return res, err
		}
		st := s.Stats()
		over := float64(d) / float64(sc.video)
		if o.verbose {
			fmt.Fprintf(os.Stderr, "soak step %d: %.2f turnovers, video kept %.0f MiB in %d segments, du %.0f MiB (%.4f×), budget %.0f MiB\n",
				step, float64(res.written)/float64(res.budget), mib(sc.video), sc.files, mib(d), over, mib(res.budget))
		}
		res.maxOvr = max(res.maxOvr, over)
		res.statsOverVideo = max(res.statsOverVideo, float64(st.Bytes)/float64(sc.video))
		if res.keptMin < 0 || sc.video < res.keptMin {
			res.keptMin = sc.video
		}
		res.keptMax = max(res.keptMax, sc.video)
		res.indexMax = max(res.indexMax, du(dir+"/index"))
		sum += over
		res.overSamples++
	}
	close(stop)
	bg.Wait()
	res.elapsed = time.Since(start)
	res.amplification = float64(writeBytes()-io0) / float64(res.written)
	res.turnovers = float64(res.written) / float64(res.budget)
	res.maxOverBudget = float64(res.maxDisk) / float64(res.budget)
	res.maxBgOverBudget = float64(res.maxBg) / float64(res.budget)
	if res.overSamples > 0 {
		res.overhead = sum / float64(res.overSamples)
	}
	res.evicted = reg.sum("vigil_clips_evicted_bytes_total")
	if d := reg.sum("vigil_clips_dropped_total"); d > 0 {
		return res, fmt.Errorf("soak dropped %v access units", d)
	}
	return res, nil
}
