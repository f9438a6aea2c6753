package camera

import (
	"context"
	"time"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/tamper"
)

// analyse owns the camera's Analyzer. Decoding and analysing in one
// goroutine keeps the picture an event fires on in hand for its snapshot,
// with no copy of every frame.
func (c *Camera) analyse(ctx context.Context) error {
	c.mu.Lock()
	if c.motionNext != nil { // reconfigured before (or between) runs
		c.cfg.Motion, c.motionNext = *c.motionNext, nil
	}
	if c.perimeterNext != nil {
		c.cfg.Perimeter, c.perimeterNext = *c.perimeterNext, nil
	}
	mcfg, pcfg := c.cfg.Motion, c.cfg.Perimeter
	c.mu.Unlock()
	an, err := NewAnalyzer(AnalyzerConfig{FPS: c.cfg.AnalysisFPS, Width: c.cfg.AnalysisWidth, FullDecode: c.cfg.FullDecode,
		Motion: mcfg, Tamper: c.cfg.Tamper, Perimeter: pcfg})
	if err != nil {
		return err
	}
	defer an.Close()
	now := time.Now()
	w := &analysis{c: c, an: an, h: analysisCounts{mon: newHealthMonitor(c.cfg.AnalysisFPS, now), last: now, recvMark: c.received.Load()}}
	return w.run(ctx)
}

// analysis is the analysis goroutine's state: the Analyzer, which only
// it touches, and what it counts.
type analysis struct {
	c        *Camera
	an       *Analyzer
	errs     errorSummary
	h        analysisCounts
	lastTime time.Time // of the last unit fed
}

// run feeds the queued units to the Analyzer and answers what is asked
// of it (snapshots, previews, new motion settings) until ctx ends.
func (w *analysis) run(ctx context.Context) error {
	c := w.c
	errLog := time.NewTicker(5 * time.Second)
	defer errLog.Stop()
	healthTick := time.NewTicker(c.cfg.HealthWindow / healthSlots)
	defer healthTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case au := <-c.queue:
			w.handle(au)
			w.lastTime = au.Time
		case req := <-c.snapshots:
			jpg, err := w.an.Snapshot(c.cfg.SnapshotWidth)
			req <- snapshotReply{jpg: jpg, at: w.lastTime, err: err}
		case req := <-c.previews:
			p, err := w.an.det.Preview(req.zones, req.masks)
			req.reply <- previewReply{p: p, at: w.lastTime, err: err}
		case req := <-c.perimPreviews:
			p, err := w.an.perim.preview(req.cfg, w.lastTime)
			req.reply <- perimeterPreviewReply{p: p, err: err}
		case <-c.reconf:
			w.applyReconfig()
		case <-errLog.C:
			w.errs.report(c)
		case now := <-healthTick.C:
			w.judgeHealth(now)
		}
	}
}

// snapshotReply answers a Snapshot request from the analyser goroutine,
// the only owner of the decoder and so of the latest picture.
type snapshotReply struct {
	jpg []byte
	at  time.Time
	err error
}

// Snapshot returns a JPEG of the camera's latest decoded picture and its
// time, for alerts that do not come from the camera itself (a gate forced
// in front of it).
func (c *Camera) Snapshot(ctx context.Context) ([]byte, time.Time, error) {
	reply := make(chan snapshotReply, 1)
	select {
	case c.snapshots <- reply:
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
	select {
	case r := <-reply:
		return r.jpg, r.at, r.err
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
}

// analysisCounts is what the analysis goroutine counts for its health
// between two judgements.
type analysisCounts struct {
	mon              *healthMonitor
	last             time.Time // of the previous judgement
	recvMark         uint64    // c.received at the previous judgement
	analysed         int       // trusted analysed pictures since
	damaged, skipped uint64    // totals
}

// judgeHealth closes one slot of the health window and reports a change
// of state to the parent.
func (w *analysis) judgeHealth(now time.Time) {
	c, an, h := w.c, w.an, &w.h
	recv := c.received.Load()
	changed := h.mon.add(now, healthSample{received: int(recv - h.recvMark), analysed: h.analysed, dur: now.Sub(h.last)})
	h.recvMark, h.analysed, h.last = recv, 0, now
	h.mon.status.DamagedRatio = an.DamagedRatio()
	h.mon.status.DamagedTotal, h.mon.status.SkippedTotal = h.damaged, h.skipped
	st := h.mon.status
	c.mu.Lock()
	c.status.Analysis = st
	c.mu.Unlock()
	if !changed {
		return
	}
	degraded := st.State == AnalysisDegraded
	detail := h.mon.detail()
	if degraded {
		c.log.Warn("camera analysis degraded", "detail", detail)
	} else {
		c.log.Info("camera analysis recovered", "detail", detail)
	}
	if c.parent != nil {
		c.parent.OnAnalysis(AnalysisEvent{Camera: c.cfg.ID, Time: now.UTC(), Degraded: degraded, Detail: detail})
	}
}

// handle feeds one unit to the Analyzer and reports what its picture
// showed.
func (w *analysis) handle(au streams.AccessUnit) {
	c, an, errs, h := w.c, w.an, &w.errs, &w.h
	c.mu.Lock()
	if c.resync {
		c.resync = false
		an.Resync()
	}
	c.mu.Unlock()
	f, err := an.Feed(au)
	if err != nil {
		// No picture: the unit is skipped, decoding goes on.
		errs.add(err)
		h.skipped++
		c.count.decodeErrors.Add(1)
		c.count.skipped.Add(1)
		return
	}
	if f.Damaged {
		errs.add(f.DamageErr)
		h.damaged++
		c.count.decodeErrors.Add(1)
		c.count.damaged.Add(1)
	}
	if !f.Analysed {
		return
	}
	c.count.analysed.Add(1)
	if !f.Garbled {
		h.analysed++
	}
	if c.parent == nil {
		return
	}
	if bs, ok := c.parent.(BoxSink); ok && len(f.Motion.Objects) > 0 && !f.Garbled {
		bs.OnMotionBoxes(c.cfg.ID, au.Time, f.Motion.Objects)
	}
	for _, ev := range f.Tamper.Cleared {
		w.reportTamper(au, ev)
	}
	for _, ev := range f.Tamper.Started {
		w.reportTamper(au, ev)
	}
	var shot []byte // the frame's snapshot, shared with perimeter events
	if started := f.Motion.Started; started != nil {
		ev := Event{Camera: c.cfg.ID, Start: started.Start, TimeSource: au.TimeSource, Boxes: started.Boxes, Zones: started.Zones}
		ev.Snapshot, ev.SnapshotTime = w.snapshot(au)
		shot = ev.Snapshot
		c.parent.OnMotion(ev)
	}
	w.reportPerimeter(au, f.Perimeter, shot)
}

// reportTamper reports a tamper condition starting or clearing, with the
// picture that confirmed it: what the camera saw instead of its scene, or
// the scene back again.
func (w *analysis) reportTamper(au streams.AccessUnit, ev tamper.Event) {
	c := w.c
	te := TamperEvent{Camera: c.cfg.ID, Kind: string(ev.Kind), Time: ev.Since, Cleared: ev.Cleared, Detail: ev.Detail}
	te.Snapshot, te.SnapshotTime = w.snapshot(au)
	if ev.Cleared {
		c.log.Info("camera tamper cleared", "kind", ev.Kind, "since", ev.Since, "detail", ev.Detail)
	} else {
		c.log.Warn("camera tampered", "kind", ev.Kind, "since", ev.Since, "detail", ev.Detail)
	}
	c.parent.OnTamper(te)
}

// snapshot encodes the picture just analysed; an event goes out without
// one rather than not at all.
func (w *analysis) snapshot(au streams.AccessUnit) ([]byte, time.Time) {
	jpg, err := w.an.Snapshot(w.c.cfg.SnapshotWidth)
	if err != nil {
		w.c.log.Warn("snapshot failed", "err", err)
		return nil, time.Time{}
	}
	return jpg, au.Time
}

// errorSummary collects decode errors so they are logged every few
// seconds rather than per frame: a broken stream can produce hundreds.
type errorSummary struct {
	count int
	last  error
}

func (e *errorSummary) add(err error) {
	e.count++
	e.last = err
}

func (e *errorSummary) report(c *Camera) {
	rtpErrs := c.stats.RTPErrors.Swap(0)
	if e.count == 0 && rtpErrs == 0 {
		return
	}
	last := ""
	if e.last != nil {
		last = e.last.Error()
	}
	c.log.Warn("camera sends undecodable video", "decode_errors", e.count, "rtp_errors", rtpErrs, "last_err", last)
	e.count, e.last = 0, nil
}
