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

// tinyFeed is a camera at a very low bitrate for the rebuild phase: the
// clip's parameter sets, a keyframe every 2 s and 15 fps, each picture a
// few bytes. What rebuilding costs is the number of segment files,
// fragments and access units, not the bytes of video.
type tinyFeed struct {
	codec  streams.AccessUnit // Codec only
	params [][]byte
	base   time.Time
	n      int
}

func newTinyFeed(clip *sim.Clip, base time.Time) *tinyFeed {
	f := &tinyFeed{base: base}
	f.codec.Codec = clip.Info.Codec
	for _, p := range clip.Packets {
		if !p.Key {
			continue
		}
		for _, nalu := range p.AU {
			if t := nalu[0] & 0x1f; t == 7 || t == 8 { // H.264 SPS, PPS
				f.params = append(f.params, nalu)
			}
		}
		break
	}
	return f
}

const tinyFPS = 15

var (
	tinyIDR   = append([]byte{0x65, 0x88, 0x84}, make([]byte, 29)...)
	tinySlice = append([]byte{0x41, 0x9a, 0x02}, make([]byte, 13)...)
)

func (f *tinyFeed) next() streams.AccessUnit {
	pts := time.Duration(f.n) * time.Second / tinyFPS
	key := f.n%(2*tinyFPS) == 0
	f.n++
	nalus := [][]byte{tinySlice}
	if key {
		nalus = append(append([][]byte(nil), f.params...), tinyIDR)
	}
	n := 0
	for _, nalu := range nalus {
		n += len(nalu)
	}
	return streams.AccessUnit{Codec: f.codec.Codec, NALUs: nalus, PTS: pts, Time: f.base.Add(pts),
		TimeSource: streams.TimeRTCP, Key: key, Bytes: n}
}

func (f *tinyFeed) pts() time.Duration { return time.Duration(f.n) * time.Second / tinyFPS }
