package fmp4live

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// fragmentClip feeds every packet of clip (two loops, as the simulator
// plays it) and returns init + fragments concatenated, the segments, and
// the number of access units fed.
func fragmentClip(t *testing.T, clip *sim.Clip, loops int) ([]byte, []Segment, int) {
	t.Helper()
	f := New(DefaultTarget)
	var file bytes.Buffer
	var segs []Segment
	epoch := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	fed := 0
	add := func(s []Segment) {
		for _, seg := range s {
			file.Write(seg.Data)
			segs = append(segs, seg)
		}
	}
	for loop := range loops {
		base := time.Duration(loop) * clip.Duration
		for _, p := range clip.Packets {
			pts := base + p.PTS
			out, err := f.Push(streams.AccessUnit{Codec: clip.Info.Codec, NALUs: p.AU, PTS: pts, Time: epoch.Add(pts), Key: p.Key})
			if err != nil {
				t.Fatal(err)
			}
			add(out)
			fed++
		}
	}
	seg, ok, err := f.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		add([]Segment{seg})
	}
	return file.Bytes(), segs, fed
}

func ffprobe(t *testing.T, data []byte) map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "live.mp4")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestH264Fragments: the camera's own H.264, fragmented, is a valid fMP4
// that ffprobe reads with every frame and the clip's duration; fragments
// are about the target long, each keyframe starts one, and the wall clock
// of each fragment is its first sample's.
func TestH264Fragments(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	data, segs, fed := fragmentClip(t, clip, 2)
	if !segs[0].Init || segs[0].Codec == "" || !strings.HasPrefix(segs[0].Codec, "avc1.") {
		t.Fatalf("first segment is not an H.264 init: %+v", segs[0].Codec)
	}
	for _, s := range segs[1:] {
		if s.Init {
			t.Fatal("a second init for an unchanged stream")
		}
	}
	got := ffprobe(t, data)
	t.Logf("codec %s, %d fragments, %d bytes: %v", segs[0].Codec, len(segs)-1, len(data), got)
	if got["codec_name"] != "h264" || got["width"] != "640" {
		t.Errorf("ffprobe: %v", got)
	}
	if n, _ := strconv.Atoi(got["nb_read_frames"]); n != fed {
		t.Errorf("ffprobe counts %d frames, fed %d", n, fed)
	}
	want := 2 * clip.Duration
	if d, _ := strconv.ParseFloat(got["duration"], 64); d < want.Seconds()-0.05 || d > want.Seconds()+0.05 {
		t.Errorf("duration %.3f s, want %.3f", d, want.Seconds())
	}
	keys, frames := 0, 0
	var next uint64
	for i, s := range segs[1:] {
		frames += s.Samples
		if s.Key {
			keys++
		}
		if s.Duration > DefaultTarget+150*time.Millisecond {
			t.Errorf("fragment %d lasts %v", i, s.Duration)
		}
		if s.BaseTime != next {
			t.Errorf("fragment %d starts at tick %d, previous ended at %d", i, s.BaseTime, next)
		}
		next = s.BaseTime + uint64(s.Duration*Timescale/time.Second)
		wall := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC).Add(time.Duration(s.BaseTime) * time.Second / Timescale)
		if d := s.Time.Sub(wall); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("fragment %d: wall clock %v, its decode time says %v", i, s.Time, wall)
		}
	}
	gops := 0
	for _, p := range clip.Packets {
		if p.Key {
			gops++
		}
	}
	if keys != 2*gops || frames != fed {
		t.Errorf("%d key fragments for %d keyframes; %d samples for %d access units", keys, 2*gops, frames, fed)
	}
}

// TestResyncStartsAtKeyframe: after Resync (the caller dropped access
// units) the next fragment starts at a keyframe, and the result still
// plays: the gap is a gap in the timeline.
func TestResyncStartsAtKeyframe(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	f := New(DefaultTarget)
	var file bytes.Buffer
	afterResync, checked := false, false
	for i, p := range clip.Packets {
		if i == 25 {
			f.Resync()
			afterResync = true
			continue // this unit is "lost"
		}
		segs, err := f.Push(streams.AccessUnit{Codec: av.H264, NALUs: p.AU, PTS: p.PTS, Key: p.Key})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if afterResync && !s.Init {
				if !s.Key {
					t.Errorf("first fragment after the resync starts with a non-key frame (seq %d)", s.Seq)
				}
				afterResync, checked = false, true
			}
			file.Write(s.Data)
		}
	}
	if !checked {
		t.Fatal("no fragment after the resync")
	}
	got := ffprobe(t, file.Bytes())
	if got["codec_name"] != "h264" {
		t.Fatalf("after a resync: %v", got)
	}
}

// TestH265Init: H.265 access units make an hvc1 init and fragments that
// ffprobe reads as HEVC.
func TestH265Init(t *testing.T) {
	spec := footage.BurstsClip{Seconds: 4, FPS: 10, Width: 320, Height: 240, Bursts: []footage.Burst{{Start: 1, End: 3}}, H265: true}
	clip := testrig.Clip(t, spec)
	data, segs, fed := fragmentClip(t, clip, 1)
	if !strings.HasPrefix(segs[0].Codec, "hvc1.") {
		t.Errorf("codec string %q", segs[0].Codec)
	}
	got := ffprobe(t, data)
	t.Logf("codec %s: %v", segs[0].Codec, got)
	if got["codec_name"] != "hevc" {
		t.Errorf("ffprobe: %v", got)
	}
	if n, _ := strconv.Atoi(got["nb_read_frames"]); n != fed {
		t.Errorf("ffprobe counts %d frames, fed %d", n, fed)
	}
}
