package camera

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// coveredClip is 20 s of people walking (vtest.avi) with the lens covered
// by a black card, with sensor noise, from second 4 to second 9.
const coverFrom, coverTo = 4.0, 9.0

func coveredClip(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-i", footage.SamplesDir + "/vtest.avi", "-t", "20", "-an", "-filter_complex",
		"[0:v]drawbox=c=black:t=fill:enable='between(t,4,9)',noise=alls=3:allf=t"}
	path, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, "tamper-covered-4-9", append(args, footage.CameraX264(20)...))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// brightness is the mean luma of a JPEG snapshot.
func brightness(t *testing.T, jpg []byte) float64 {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatalf("snapshot is not a JPEG: %v", err)
	}
	y, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("snapshot decodes as %T", img)
	}
	var sum int
	for _, v := range y.Y {
		sum += int(v)
	}
	return float64(sum) / float64(len(y.Y))
}

// TestTamperOverRTSP plays the covered clip through a real RTSP server and
// camera: the camera must report covered once, timed by the simulator's
// clock, with a snapshot of the covered picture, then the all-clear with a
// snapshot of the scene, and no motion alert for the card.
func TestTamperOverRTSP(t *testing.T) {
	clip, err := sim.LoadClip(coveredClip(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "cam", Clip: clip})
	col := newCollector()
	runCamera(t, Config{ID: "cam", URL: srv.URL("cam")}, col)
	at := func(sec float64) time.Time { return srv.Epoch().Add(time.Duration(sec * float64(time.Second))) }

	tampers := func() []TamperEvent {
		col.mu.Lock()
		defer col.mu.Unlock()
		return append([]TamperEvent(nil), col.tampers...)
	}
	deadline := at(coverTo + 3 + 4)
	for len(tampers()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	evs := tampers()
	for _, ev := range evs {
		t.Logf("%s cleared=%v at +%.1f s (snapshot at +%.1f s): %s", ev.Kind, ev.Cleared,
			ev.Time.Sub(srv.Epoch()).Seconds(), ev.SnapshotTime.Sub(srv.Epoch()).Seconds(), ev.Detail)
	}
	if len(evs) != 2 {
		t.Fatalf("%d tamper events, want covered and its all-clear", len(evs))
	}
	start, clear := evs[0], evs[1]
	if start.Kind != TamperCovered || start.Cleared || start.Camera != "cam" || start.Detail == "" {
		t.Errorf("first event %+v, want covered on cam with detail", start)
	}
	if d := start.Time.Sub(at(coverFrom)); d < -100*time.Millisecond || d > time.Second {
		t.Errorf("covered %v after the card went up", d)
	}
	if b := brightness(t, start.Snapshot); b > 40 {
		t.Errorf("covered snapshot has brightness %.0f: not the covered picture", b)
	}
	if clear.Kind != TamperCovered || !clear.Cleared {
		t.Errorf("second event %+v, want covered cleared", clear)
	}
	if d := clear.Time.Sub(at(coverTo)); d < -100*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("all-clear %v after the card came down", d)
	}
	if b := brightness(t, clear.Snapshot); b < 80 {
		t.Errorf("all-clear snapshot has brightness %.0f: not the scene", b)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, ev := range col.events {
		if ev.Start.After(at(coverFrom+0.5)) && ev.Start.Before(at(coverTo)) {
			t.Errorf("motion event at +%.1f s while the lens was covered", ev.Start.Sub(srv.Epoch()).Seconds())
		}
	}
}

// TestAnalyzerWithholdsMotionWhileCovered feeds the covered clip to an
// Analyzer as fast as it decodes: no motion may start on a covered frame,
// and motion detection must work again once the cover is gone (the
// background model relearns the scene instead of the card).
func TestAnalyzerWithholdsMotionWhileCovered(t *testing.T) {
	info, pkts, err := av.ReadFile(coveredClip(t))
	if err != nil {
		t.Fatal(err)
	}
	an, err := NewAnalyzer(AnalyzerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	epoch := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	var covered, cleared, motionAfter float64
	for _, p := range pkts {
		au := streams.AccessUnit{Codec: info.Codec, NALUs: p.AU, PTS: p.PTS, Time: epoch.Add(p.PTS), TimeSource: streams.TimeFile, Key: p.Key}
		f, err := an.Feed(au)
		if err != nil {
			t.Fatal(err)
		}
		sec := p.PTS.Seconds()
		for _, ev := range f.Tamper.Started {
			if string(ev.Kind) != TamperCovered || covered != 0 {
				t.Errorf("unexpected %s at %.1f s", ev.Kind, sec)
			}
			covered = sec
		}
		for _, ev := range f.Tamper.Cleared {
			if string(ev.Kind) != TamperCovered || cleared != 0 {
				t.Errorf("unexpected %s cleared at %.1f s", ev.Kind, sec)
			}
			cleared = sec
		}
		if f.Motion.Started == nil {
			continue
		}
		if f.Tamper.Obstructed {
			t.Errorf("motion started at %.1f s on a covered picture", sec)
		}
		if cleared != 0 && motionAfter == 0 {
			motionAfter = sec
		}
	}
	t.Logf("covered confirmed at %.1f s, cleared at %.1f s, first motion after that at %.1f s", covered, cleared, motionAfter)
	if covered == 0 || cleared == 0 {
		t.Fatal("covered did not start and clear")
	}
	if motionAfter == 0 {
		t.Error("no motion detected after the cover was gone")
	}
}
