package clips

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// recordWithGap records the bursts clip (10 fps, a keyframe every 2 s)
// from epoch to 70 s and from 80 s to 100 s: the camera was away for
// 10 s.
func recordWithGap(t *testing.T) *Store {
	t.Helper()
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	f := newFeed(bursts(t), epoch)
	record(t, r, f, epoch.Add(70*time.Second))
	for f.peek().Before(epoch.Add(80 * time.Second)) {
		f.next() // the camera's outage
	}
	record(t, r, f, epoch.Add(100*time.Second))
	flush(t, s)
	return s
}

// readUnits reads a reader to its end, checking that wall times rise
// strictly and PTS is the wall time.
func readUnits(t *testing.T, u *Units) []time.Time {
	t.Helper()
	var times []time.Time
	for {
		au, err := u.Next()
		if errors.Is(err, io.EOF) {
			return times
		}
		if err != nil {
			t.Fatalf("Next after %d units: %v", len(times), err)
		}
		if len(au.NALUs) == 0 || au.Codec != av.H264 {
			t.Fatalf("unit %d at %v: %d NAL units, codec %v", len(times), au.Time, len(au.NALUs), au.Codec)
		}
		if n := len(times); n > 0 && !au.Time.After(times[n-1]) {
			t.Fatalf("unit %d at %v after %v", n, au.Time, times[n-1])
		}
		if au.PTS != time.Duration(au.Time.UnixNano()) {
			t.Fatalf("unit %d: PTS %v, wall time %v", len(times), au.PTS, au.Time)
		}
		if len(times) == 0 && !au.Key {
			t.Fatalf("first unit at %v is not a keyframe", au.Time)
		}
		times = append(times, au.Time)
	}
}

// TestUnitsAcrossWindowsAndGap reads 90 s spanning two planning windows
// and a 10 s outage: every recorded unit once, in order, from the
// keyframe before the start; nothing in the gap.
func TestUnitsAcrossWindowsAndGap(t *testing.T) {
	s := recordWithGap(t)
	u, err := s.OpenUnits("gate", epoch.Add(5500*time.Millisecond), epoch.Add(95*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if sp := u.Spans(); len(sp) != 2 {
		t.Errorf("spans %v, want two (the outage between)", sp)
	}
	times := readUnits(t, u)
	// 4.0 … 69.9 s and 80.0 … 94.9 s at 10 fps.
	if len(times) != 660+150 {
		t.Errorf("%d units, want 810", len(times))
	}
	if len(times) > 0 && !times[0].Equal(epoch.Add(4*time.Second)) {
		t.Errorf("first unit at %v, want the keyframe at 4 s", times[0].Sub(epoch))
	}
	for _, at := range times {
		if d := at.Sub(epoch); d >= 70*time.Second && d < 80*time.Second {
			t.Fatalf("a unit at %v, in the outage", d)
		}
	}
	if _, err := u.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end: %v, want io.EOF", err)
	}
}

// TestUnitsSeekAndKeyframes: a seek goes to the keyframe at or before
// the instant, keyframes only skip the rest, and turning it off resumes
// at a keyframe; a range with no video, or an unknown camera, fails.
func TestUnitsSeekAndKeyframes(t *testing.T) {
	s := recordWithGap(t)
	u, err := s.OpenUnits("gate", epoch.Add(10*time.Second), epoch.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for range 5 {
		if _, err := u.Next(); err != nil {
			t.Fatal(err)
		}
	}
	u.Seek(epoch.Add(21500 * time.Millisecond))
	au, err := u.Next()
	if err != nil || !au.Key || !au.Time.Equal(epoch.Add(20*time.Second)) {
		t.Fatalf("after seeking to 21.5 s: %v key %v at %v, want the keyframe at 20 s", err, au.Key, au.Time.Sub(epoch))
	}
	// Released while paused, it goes on with the next unit.
	u.Release()
	au, err = u.Next()
	if err != nil || au.Key || !au.Time.Equal(epoch.Add(20100*time.Millisecond)) {
		t.Fatalf("after Release: %v key %v at %v, want the frame at 20.1 s", err, au.Key, au.Time.Sub(epoch))
	}
	u.KeyframesOnly(true)
	for _, want := range []time.Duration{22 * time.Second, 24 * time.Second} {
		au, err := u.Next()
		if err != nil || !au.Key || !au.Time.Equal(epoch.Add(want)) {
			t.Fatalf("keyframes only: %v key %v at %v, want the keyframe at %v", err, au.Key, au.Time.Sub(epoch), want)
		}
	}
	u.KeyframesOnly(false)
	au, err = u.Next()
	if err != nil || !au.Key || !au.Time.Equal(epoch.Add(26*time.Second)) {
		t.Fatalf("keyframes only off: %v key %v at %v, want the keyframe at 26 s", err, au.Key, au.Time.Sub(epoch))
	}
	au, err = u.Next()
	if err != nil || au.Key || !au.Time.Equal(epoch.Add(26100*time.Millisecond)) {
		t.Fatalf("then: %v key %v at %v, want the frame at 26.1 s", err, au.Key, au.Time.Sub(epoch))
	}
	// A seek back to the start, and the whole range from there.
	u.Seek(epoch)
	if times := readUnits(t, u); len(times) != 200 || !times[0].Equal(epoch.Add(10*time.Second)) {
		t.Errorf("after seeking back: %d units from %v, want 200 from 10 s", len(times), times[0].Sub(epoch))
	}

	if _, err := s.OpenUnits("gate", epoch.Add(71*time.Second), epoch.Add(79*time.Second)); !errors.Is(err, ErrNoVideo) {
		t.Errorf("a range in the outage: %v, want ErrNoVideo", err)
	}
	if _, err := s.OpenUnits("yard", epoch, epoch.Add(time.Second)); !errors.Is(err, ErrUnknownCamera) {
		t.Errorf("unknown camera: %v, want ErrUnknownCamera", err)
	}
}
