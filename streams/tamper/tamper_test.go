package tamper

import (
	"fmt"
	"image"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/internal/footage"
)

// run feeds a clip through a detector with cfg and returns its events, and
// the measures over the frames of the clip that lie in each [from, to)
// window (seconds), so a test can log what the footage measured.
func run(t *testing.T, cfg Config, path string, windows ...[2]float64) ([]Event, []*span) {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	spans := make([]*span, len(windows))
	for i := range spans {
		spans[i] = &span{}
	}
	var events []Event
	learning := true
	decode(t, path, func(gray gocv.Mat, at time.Time) {
		res := d.Process(gray, at)
		sec := at.Sub(epoch).Seconds()
		for i, w := range windows {
			if sec >= w[0] && sec < w[1] {
				spans[i].add(res.Measures, res.Learning)
			}
		}
		events = append(events, res.Cleared...)
		events = append(events, res.Started...)
		learning = res.Learning
	})
	if learning {
		t.Errorf("%s: the reference was never learned", path)
	}
	return events, spans
}

func secs(t time.Time) float64 { return t.Sub(epoch).Seconds() }

func describe(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		what := "started"
		if e.Cleared {
			what = "cleared"
		}
		fmt.Fprintf(&b, "\n  %s %s since %.1f s, at %.1f s: %s", e.Kind, what, secs(e.Since), secs(e.At), e.Detail)
	}
	return b.String()
}

// TestDetectsTamper plays 20 s of real footage (people walking on a campus)
// that is tampered with from second 8 to second 14 and normal again after:
// exactly the expected condition must start within a second of the tamper
// (confirmed after the hold) and clear after the picture comes back.
func TestDetectsTamper(t *testing.T) {
	const from, to = 8.0, 14.0
	on := "enable='between(t,8,14)'"
	cases := []struct {
		name  string
		graph string
		want  Kind
	}{
		// A black card, with the sensor noise a real camera adds.
		{"covered-black", "[0:v]drawbox=c=black:t=fill:" + on + ",noise=alls=3:allf=t", Covered},
		{"covered-gray-card", "[0:v]drawbox=c=gray:t=fill:" + on + ",noise=alls=3:allf=t", Covered},
		// A hand over the lens: dark, out of focus, a little light around it.
		{"covered-hand", "[0:v]gblur=sigma=40:" + on + ",eq=brightness=-0.35:contrast=0.3:" + on, Covered},
		// Paint sprayed on the lens: a milky, featureless picture.
		{"covered-spray", "[0:v]gblur=sigma=25:" + on + ",eq=contrast=0.25:" + on, Covered},
		{"blinded-white", "[0:v]eq=brightness=0.9:" + on, Blinded},
		// Overexposed: four times the light, dark parts still visible.
		{"blinded-overexposed", "[0:v]lutyuv=y=val*4:" + on, Blinded},
		{"defocused-strong", "[0:v]gblur=sigma=12:" + on, Defocused},
		{"defocused-mild", "[0:v]gblur=sigma=4:" + on, Defocused},
		// Turned 20% of the picture to the side.
		{"moved-shift", "[0:v]split[a][b];[b]crop=iw*0.8:ih:iw*0.2:0,scale=768:576[c];[a][c]overlay=" + on, Moved},
		{"moved-rotate", "[0:v]split[a][b];[b]rotate=0.2[c];[a][c]overlay=" + on, Moved},
		// Turned and zoomed onto another part of the campus.
		{"moved-pan", "[0:v]split[a][b];[b]crop=iw*0.6:ih*0.6:iw*0.4:ih*0.1,scale=768:576[c];[a][c]overlay=" + on, Moved},
	}
	cfg := Config{}.Defaults()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := vtestClip(t, c.name, 20, c.graph)
			evs, spans := run(t, Config{}, path, [2]float64{0, from}, [2]float64{from + 0.5, to}, [2]float64{to + 0.5, 20})
			t.Logf("normal:   %s\ntampered: %s\nrestored: %s%s", spans[0], spans[1], spans[2], describe(evs))
			var started, cleared []Event
			for _, e := range evs {
				switch {
				case e.Kind != c.want:
					t.Errorf("unexpected %s event", e.Kind)
				case e.Cleared:
					cleared = append(cleared, e)
				default:
					started = append(started, e)
				}
			}
			if len(started) != 1 || len(cleared) != 1 {
				t.Fatalf("%d start and %d clear events for %s, want 1 and 1", len(started), len(cleared), c.want)
			}
			s, cl := started[0], cleared[0]
			if at := secs(s.Since); at < from-0.05 || at > from+1 {
				t.Errorf("%s began at %.1f s, tampered at %.0f s", c.want, at, from)
			}
			if at := secs(s.At); at > from+cfg.Hold.Seconds()+1.5 {
				t.Errorf("%s confirmed at %.1f s, tampered at %.0f s", c.want, at, from)
			}
			if at := secs(cl.Since); at < to-0.05 || at > to+1.5 {
				t.Errorf("%s recovery began at %.1f s, restored at %.0f s", c.want, at, to)
			}
			if at := secs(cl.At); at > to+cfg.Clear.Seconds()+2 {
				t.Errorf("%s cleared at %.1f s, restored at %.0f s", c.want, at, to)
			}
			if s.Detail == "" || cl.Detail == "" {
				t.Error("event without detail")
			}
		})
	}
}

// TestCoveredAtStart: a camera that starts covered has no reference yet;
// covered is judged on the picture alone and must still fire, and the
// reference must then be learned from the uncovered scene only.
func TestCoveredAtStart(t *testing.T) {
	path := vtestClip(t, "covered-at-start", 20, "[0:v]drawbox=c=black:t=fill:enable='lt(t,6)',noise=alls=3:allf=t")
	evs, spans := run(t, Config{}, path, [2]float64{12, 20})
	t.Logf("after learning: %s%s", spans[0], describe(evs))
	if len(evs) != 2 || evs[0].Kind != Covered || evs[0].Cleared || evs[1].Kind != Covered || !evs[1].Cleared {
		t.Fatalf("want covered started and cleared, got:%s", describe(evs))
	}
	if at := secs(evs[0].At); at > 3.5 {
		t.Errorf("covered confirmed at %.1f s, covered from the first frame", at)
	}
	if at := secs(evs[1].Since); at < 5.95 || at > 7 {
		t.Errorf("covered recovery began at %.1f s, uncovered at 6 s", at)
	}
}

// TestQuietOnNormalFootage: no tamper alert on real scenes that change in
// every way but the camera's: people walking, leaves in the wind (and a
// hand waving close to the lens at the end of tree.avi), big objects
// passing close, the light dimming at once or slowly, a dark noisy night.
func TestQuietOnNormalFootage(t *testing.T) {
	cache := footage.Cache{Dir: footage.DefaultDir()}
	cases := []struct {
		name string
		clip func(t *testing.T) string
	}{
		{"pedestrians", func(t *testing.T) string { return must(t)(cache.Pedestrians(t.Context())) }},
		{"tree", func(t *testing.T) string { return must(t)(cache.Tree(t.Context())) }},
		// Two large objects (each an eighth of the picture) crossing all the
		// time, close to the camera, on top of the pedestrians.
		{"close-passers", func(t *testing.T) string {
			return vtestClip(t, "close-passers", 24, "[0:v]split=3[bg][s1][s2];"+
				"[s1]crop=iw/4:ih/2:iw/2:ih/3,negate[o1];[s2]crop=iw/4:ih/2:iw/8:ih/4,hflip[o2];"+
				"[bg][o1]overlay=x='mod(t*150\\,W)-w/2':y=H*0.4[t1];[t1][o2]overlay=x='W-mod(t*100\\,W)':y=H*0.1")
		}},
		// A cloud: 15% darker and 30% less contrast from one frame to the next.
		{"light-step", func(t *testing.T) string {
			return vtestClip(t, "light-step", 24, "[0:v]eq=brightness=-0.15:contrast=0.7:enable='gte(t,10)'")
		}},
		// Dusk: the picture darkens steadily over 20 s to a mean of ~35.
		{"dusk", func(t *testing.T) string {
			return vtestClip(t, "dusk", 24, "[0:v]eq=brightness='-0.3*min(t/20,1)':eval=frame")
		}},
		// Night: dark (mean ~33), low contrast, sensor noise.
		{"night", func(t *testing.T) string {
			return vtestClip(t, "night", 24, "[0:v]eq=brightness=-0.3:contrast=0.45,noise=alls=6:allf=t")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, spans := run(t, Config{}, c.clip(t), [2]float64{0, 1000})
			t.Logf("%s", spans[0])
			if len(evs) > 0 {
				t.Errorf("tamper events on normal footage:%s", describe(evs))
			}
		})
	}
}

func must(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Defaults().Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	d := Config{}.Defaults()
	if d.Hold != 3*time.Second || d.BlindedShare != 0.5 || d.MovedMatch != 0.35 || d.CoveredDrop != 0.25 || d.DarkMean != 64 {
		t.Errorf("unexpected defaults %+v", d)
	}
	for _, bad := range []Config{
		{Hold: -time.Second},
		{BlindedShare: 1.5},
		{DefocusedRatio: 0.7},
		{MovedMatch: 0.9},
		{CoveredContrast: -1},
		{CoveredDrop: 1},
		{DarkMean: 300},
	} {
		if err := bad.Defaults().Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
		if _, err := New(bad); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
}

// TestResetRelearns: an installer who re-aims a camera on purpose resets
// the detector; the moved condition clears and the view is learned anew.
func TestResetRelearns(t *testing.T) {
	path := vtestClip(t, "moved-pan", 20, "[0:v]split[a][b];[b]crop=iw*0.6:ih*0.6:iw*0.4:ih*0.1,scale=768:576[c];[a][c]overlay=enable='between(t,8,14)'")
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var cleared []Event
	frames := 0 // frames processed since the reset
	decode(t, path, func(gray gocv.Mat, at time.Time) {
		if frames > 0 {
			return
		}
		res := d.Process(gray, at)
		switch {
		case cleared != nil:
			frames++
			if !res.Learning {
				t.Error("not learning after Reset")
			}
		case len(res.Started) > 0:
			if !d.Active(Moved) {
				t.Error("moved started but is not active")
			}
			cleared = d.Reset()
			if d.Active(Moved) {
				t.Error("moved still active after Reset")
			}
		}
	})
	if len(cleared) != 1 || cleared[0].Kind != Moved || !cleared[0].Cleared {
		t.Fatalf("Reset returned %+v, want moved cleared", cleared)
	}
}

// TestSizeChangeRelearns: when the stream changes size (the installer
// switched to another profile) a condition judged against the old
// reference clears and the view is learned anew.
func TestSizeChangeRelearns(t *testing.T) {
	path := vtestClip(t, "moved-pan", 20, "[0:v]split[a][b];[b]crop=iw*0.6:ih*0.6:iw*0.4:ih*0.1,scale=768:576[c];[a][c]overlay=enable='between(t,8,14)'")
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	small := gocv.NewMat()
	defer small.Close()
	var after *Result
	decode(t, path, func(gray gocv.Mat, at time.Time) {
		if after != nil {
			return
		}
		if !d.Active(Moved) {
			d.Process(gray, at)
			return
		}
		gocv.Resize(gray, &small, image.Pt(160, 120), 0, 0, gocv.InterpolationArea)
		res := d.Process(small, at)
		after = &res
	})
	if after == nil {
		t.Fatal("moved never started")
	}
	if len(after.Cleared) != 1 || after.Cleared[0].Kind != Moved || !after.Learning || d.Active(Moved) {
		t.Errorf("after the size change: %+v", *after)
	}
}
