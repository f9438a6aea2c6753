package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// prefill writes d of the clip, looped, as camera's recording from wall
// time from on, into the clip store in dir (the one the edge opens):
// through the store's own recorder, as the edge records a camera, only
// faster than real time.
func prefill(ctx context.Context, dir, camera string, clip *sim.Clip, from time.Time, d time.Duration, log *slog.Logger) error {
	s, err := clips.Open(clips.Config{Dir: dir, Cameras: map[string]clips.CameraConfig{camera: {}}, Log: log})
	if err != nil {
		return err
	}
	r, err := s.Recorder(camera)
	if err != nil {
		s.Close()
		return err
	}
	f := &feed{clip: clip, base: from}
	for f.pts() < d {
		for r.Pending() > 2<<20 { // keep below the queue's bound: nothing dropped
			time.Sleep(time.Millisecond)
		}
		r.Write(f.next())
	}
	if err := s.Flush(ctx); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}

// feed plays a clip in a loop as one camera: continuous PTS, wall-clock
// times from base.
type feed struct {
	clip *sim.Clip
	base time.Time
	loop int
	i    int
}

func (f *feed) next() streams.AccessUnit {
	p := f.clip.Packets[f.i]
	pts := f.pts()
	f.i++
	if f.i == len(f.clip.Packets) {
		f.i, f.loop = 0, f.loop+1
	}
	n := 0
	for _, nalu := range p.AU {
		n += len(nalu)
	}
	return streams.AccessUnit{Codec: f.clip.Info.Codec, NALUs: p.AU, PTS: pts, Time: f.base.Add(pts),
		TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: n}
}

// pts of the next access unit.
func (f *feed) pts() time.Duration {
	return time.Duration(f.loop)*f.clip.Duration + f.clip.Packets[f.i].PTS
}
