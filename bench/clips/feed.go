package main

import (
	"time"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// feed plays a clip in a loop as one camera: continuous PTS and a wall
// clock from base, so minutes of video can be written in seconds.
type feed struct {
	clip *sim.Clip
	base time.Time
	loop int
	i    int
}

func (f *feed) next() streams.AccessUnit {
	p := f.clip.Packets[f.i]
	pts := time.Duration(f.loop)*f.clip.Duration + p.PTS
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

// stored is what an access unit takes in the store and in the plain file:
// each NAL unit with a 4-byte length.
func stored(au streams.AccessUnit) int {
	n := 0
	for _, nalu := range au.NALUs {
		n += 4 + len(nalu)
	}
	return n
}
