package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// rebuildResult is the index rebuilt from the segments alone.
type rebuildResult struct {
	cams       int
	video      time.Duration // per camera
	generate   time.Duration
	scan       segScan
	aus        int64
	diskBytes  int64
	rebuild    time.Duration
	complete   bool
	mismatch   string
	chunks     int64
	perSegment time.Duration
}

// rebuild records o.cams cameras of tinyFeed for o.rebuildVideo each
// through the store (default configuration: one segment a minute), in
// lockstep: every camera queues one flush interval (500 ms) of video,
// and the next step waits until the writer has committed it, so every
// segment holds about the fragments a camera at its real rate leaves
// (one per flush, two a second). Then it closes the
// store, deletes <dir>/index, drops the segments from the page cache and
// times clips.Open, which rebuilds the index from the segments, and
// checks every camera's timeline against the one before.
func rebuild(o options, clip *sim.Clip) (rebuildResult, error) {
	dir, err := os.MkdirTemp(o.dir, "rebuild-")
	if err != nil {
		return rebuildResult{}, err
	}
	defer os.RemoveAll(dir)
	res := rebuildResult{cams: o.cams, video: o.rebuildVideo}
	// The writer flushes every millisecond here, so that each step below
	// is committed (a fragment per camera, fdatasynced) as soon as it is
	// queued; a camera at its real rate gets the same every 500 ms.
	s, err := clips.Open(clips.Config{Dir: dir, Log: o.log, FlushInterval: time.Millisecond})
	if err != nil {
		return res, err
	}
	recs := make([]*clips.Recorder, o.cams)
	feeds := make([]*tinyFeed, o.cams)
	for c := range recs {
		if recs[c], err = s.Recorder(fmt.Sprintf("cam%02d", c)); err != nil {
			s.Close()
			return res, err
		}
		feeds[c] = newTinyFeed(clip, epoch)
	}
	start := time.Now()
	for until := flushInterval; until <= o.rebuildVideo; until += flushInterval {
		for c, r := range recs {
			for feeds[c].pts() < until {
				r.Write(feeds[c].next())
				res.aus++
			}
		}
		for _, r := range recs {
			for r.Pending() > 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		if o.verbose && until%(10*time.Minute) == 0 {
			fmt.Fprintf(os.Stderr, "rebuild: generated %v of %v per camera in %v\n", until, o.rebuildVideo, time.Since(start).Round(time.Second))
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		s.Close()
		return res, err
	}
	res.generate = time.Since(start)
	before := map[string]clips.Timeline{}
	for _, r := range recs {
		if before[r.Name()], err = s.Timeline(r.Name(), time.Time{}, time.Time{}); err != nil {
			s.Close()
			return res, err
		}
	}
	for _, c := range s.Stats().Cameras {
		res.chunks += c.Chunks
	}
	if err := s.Close(); err != nil {
		return res, err
	}
	if res.scan, err = scanSegments(dir); err != nil {
		return res, err
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		return res, err
	}
	res.diskBytes = du(dir)
	evictPages(segmentFiles(filepath.Join(dir, "video")))

	start = time.Now()
	s, err = clips.Open(clips.Config{Dir: dir, Log: o.log})
	res.rebuild = time.Since(start)
	if err != nil {
		return res, err
	}
	defer s.Close()
	if res.scan.files > 0 {
		res.perSegment = res.rebuild / time.Duration(res.scan.files)
	}
	res.complete = true
	var chunks int64
	for _, c := range s.Stats().Cameras {
		chunks += c.Chunks
	}
	if chunks != res.chunks {
		res.complete, res.mismatch = false, fmt.Sprintf("%d chunks indexed before, %d after", res.chunks, chunks)
	}
	for name, want := range before {
		got, err := s.Timeline(name, time.Time{}, time.Time{})
		if err != nil {
			return res, err
		}
		if !sameTimeline(want, got) {
			res.complete = false
			res.mismatch = fmt.Sprintf("%s: before %d spans %v, after %d spans %v", name, len(want.Spans), span(want), len(got.Spans), span(got))
			break
		}
	}
	return res, nil
}

func sameTimeline(a, b clips.Timeline) bool {
	if len(a.Spans) != len(b.Spans) {
		return false
	}
	for i := range a.Spans {
		x, y := a.Spans[i], b.Spans[i]
		if !x.Start.Equal(y.Start) || !x.End.Equal(y.End) || x.Bytes != y.Bytes {
			return false
		}
	}
	return true
}

func span(t clips.Timeline) string {
	if len(t.Spans) == 0 {
		return "none"
	}
	s := t.Spans[0]
	return fmt.Sprintf("%s..%s %d bytes", s.Start.Format(time.RFC3339), t.Spans[len(t.Spans)-1].End.Format(time.RFC3339), s.Bytes)
}
