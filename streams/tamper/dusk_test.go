package tamper

import (
	"fmt"
	"image"
	"math"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// frame is what one analysis frame measured.
type frame struct {
	sec float64
	m   Measures
}

// play feeds a clip through a detector with the default config and returns
// its events and every frame's measures.
func play(t *testing.T, path string) ([]Event, []frame) {
	t.Helper()
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var evs []Event
	var frames []frame
	decode(t, path, func(gray gocv.Mat, at time.Time) {
		res := d.Process(gray, at)
		frames = append(frames, frame{secs(at), res.Measures})
		evs = append(evs, res.Cleared...)
		evs = append(evs, res.Started...)
	})
	return evs, frames
}

// lightReport says how fast the picture lost its light and detail: the
// largest fall of the mean gray level from one second to the next, and,
// once it went flat, the least edge energy within dropWithin as a share
// of the scene's 2 to 5 s earlier (what Config.CoveredDrop is held to).
type lightReport struct {
	fallPerSec float64 // gray levels
	flatAt     float64 // seconds; NaN if never flat
	before     float64 // edges 2-5 s before flatAt
	drop       float64 // least edges within dropWithin of flatAt, over before
}

func measureLight(frames []frame) lightReport {
	r := lightReport{flatAt: math.NaN(), drop: math.NaN()}
	var sums, ns []float64
	for _, f := range frames {
		s := int(f.sec)
		for len(sums) <= s {
			sums, ns = append(sums, 0), append(ns, 0)
		}
		sums[s] += f.m.Mean
		ns[s]++
	}
	for s := 1; s < len(sums); s++ {
		if ns[s] > 0 && ns[s-1] > 0 {
			r.fallPerSec = max(r.fallPerSec, sums[s-1]/ns[s-1]-sums[s]/ns[s])
		}
	}
	least := math.Inf(1)
	for _, f := range frames {
		if math.IsNaN(r.flatAt) && f.m.Before > 0 {
			r.flatAt, r.before = f.sec, f.m.Before
		}
		if !math.IsNaN(r.flatAt) && f.sec-r.flatAt <= dropWithin.Seconds() {
			least = min(least, f.m.Edges)
		}
	}
	if r.before > 0 {
		r.drop = least / r.before
	}
	return r
}

func (r lightReport) String() string {
	return fmt.Sprintf("brightness fell at most %.1f gray levels per second; flat at %.1f s, edges %.2f before, down to %.2f of that within %v (covered at ≤ %.2f)",
		r.fallPerSec, r.flatAt, r.before, r.drop, dropWithin, Config{}.Defaults().CoveredDrop)
}

// byKind splits events into started and cleared ones per kind.
func byKind(evs []Event) (started, cleared map[Kind][]Event) {
	started, cleared = map[Kind][]Event{}, map[Kind][]Event{}
	for _, e := range evs {
		if e.Cleared {
			cleared[e.Kind] = append(cleared[e.Kind], e)
		} else {
			started[e.Kind] = append(started[e.Kind], e)
		}
	}
	return started, cleared
}

// TestDuskIsNotCovered: the campus darkens steadily to black, as at dusk
// before the camera's infrared switch or under lights dimmed slowly. The
// picture ends as flat as a covered lens, but it got there over tens of
// seconds: no covered alert, one dark condition instead, cleared when the
// lights come back on.
func TestDuskIsNotCovered(t *testing.T) {
	cases := []struct {
		name     string
		seconds  int
		graph    string
		lightsOn float64 // when the light comes back at once; 0: never
	}{
		// fade scales the picture toward black; the sensor noise stays.
		{"fade-20s", 32, "[0:v]fade=t=out:st=5:d=20,noise=alls=3:allf=t", 0},
		{"fade-30s-lights-on", 50, "[0:v]split[a][b];[a]fade=t=out:st=5:d=30[f];[f][b]overlay=enable='gte(t,42)',noise=alls=3:allf=t", 42},
		// A dimmer that scales the light (eq: gray × f) from 100% to 0
		// over 40 s: blacks crush before the bright parts fade.
		{"dimmer-40s", 50, "[0:v]eq=contrast='max(0,1-max(t-5,0)/40)':brightness='-0.5*min(1,max(t-5,0)/40)':eval=frame,noise=alls=3:allf=t", 0},
	}
	cfg := Config{}.Defaults()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, frames := play(t, vtestClip(t, "dusk-"+c.name, c.seconds, c.graph))
			light := measureLight(frames)
			t.Logf("%s%s", light, describe(evs))
			started, cleared := byKind(evs)
			for _, e := range evs {
				if e.Kind != Dark {
					t.Errorf("%s event at %.1f s on a scene that only grew dark", e.Kind, secs(e.At))
				}
			}
			if len(started[Dark]) != 1 {
				t.Fatalf("%d dark conditions, want 1", len(started[Dark]))
			}
			s := started[Dark][0]
			if at := secs(s.Since); math.Abs(at-light.flatAt) > 0.05 {
				t.Errorf("dark began at %.1f s, the picture went flat at %.1f s", at, light.flatAt)
			}
			if s.Detail == "" || s.Value >= cfg.DarkMean {
				t.Errorf("dark started with value %.0f, detail %q", s.Value, s.Detail)
			}
			if light.drop <= cfg.CoveredDrop {
				t.Errorf("detail fell to %.2f of the scene's: counted as a cover", light.drop)
			}
			if c.lightsOn == 0 {
				if len(cleared[Dark]) != 0 {
					t.Errorf("dark cleared at %.1f s while still dark", secs(cleared[Dark][0].At))
				}
				return
			}
			if len(cleared[Dark]) != 1 {
				t.Fatalf("%d dark clears after the lights came on, want 1", len(cleared[Dark]))
			}
			if at := secs(cleared[Dark][0].Since); at < c.lightsOn-0.05 || at > c.lightsOn+1 {
				t.Errorf("dark recovery began at %.1f s, lights on at %.0f s", at, c.lightsOn)
			}
		})
	}
}

// slideCard is a filter graph from [v]: a black card slid over the lens
// from the left within dur seconds from t = from, taken away at t = to.
func slideCard(from, dur, to float64) string {
	return fmt.Sprintf("color=c=black:s=768x576:r=10[k];[v][k]overlay=x='-W+W*min(1\\,max(0\\,(t-%g)/%g))':shortest=1:eval=frame:enable='between(t,%g,%g)'", from, dur, from, to)
}

// TestCoveredWhenDim: the light dims over 15 s to 30% (a dim evening; the
// scene still shows, barely above the flat thresholds), then the lens is
// covered within a second or two: the fast drop is a cover, however dim
// the scene was.
func TestCoveredWhenDim(t *testing.T) {
	const from, to = 25.0, 31.0
	f := "max(0.3,1-0.7*min(max(t-2,0)/15,1))" // light 100% → 30% over 2-17 s
	dim := "[0:v]eq=contrast='" + f + "':brightness='-0.5*(1-" + f + ")':eval=frame"
	cases := []struct{ name, graph string }{
		{"card-1s", dim + "[v];" + slideCard(from, 1, to) + ",noise=alls=3:allf=t"},
		{"card-2s", dim + "[v];" + slideCard(from, 2, to) + ",noise=alls=3:allf=t"},
		// A hand over the lens: dark and out of focus.
		{"hand", dim + ",gblur=sigma=40:enable='between(t,25,31)',eq=brightness=-0.35:contrast=0.3:enable='between(t,25,31)',noise=alls=3:allf=t"},
	}
	cfg := Config{}.Defaults()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, frames := play(t, vtestClip(t, "dim-cover-"+c.name, 38, c.graph))
			light := measureLight(frames)
			var dimmed span
			for _, f := range frames {
				if f.sec >= 18 && f.sec < from {
					dimmed.add(f.m, false)
				}
			}
			t.Logf("dimmed: %s\n%s%s", &dimmed, light, describe(evs))
			if dimmed.edges[0] < cfg.CoveredEdges {
				t.Errorf("the dimmed scene is already flat (edges %.1f): nothing left to cover", dimmed.edges[0])
			}
			started, cleared := byKind(evs)
			for _, e := range evs {
				if e.Kind != Covered {
					t.Errorf("unexpected %s event at %.1f s", e.Kind, secs(e.At))
				}
			}
			if len(started[Covered]) != 1 || len(cleared[Covered]) != 1 {
				t.Fatalf("%d covered started, %d cleared; want 1 and 1", len(started[Covered]), len(cleared[Covered]))
			}
			s, cl := started[Covered][0], cleared[Covered][0]
			if at := secs(s.Since); at < from-0.05 || at > from+2.2 {
				t.Errorf("covered began at %.1f s, covered from %.0f s", at, from)
			}
			if d := s.At.Sub(s.Since); d > cfg.Hold+300*time.Millisecond {
				t.Errorf("covered confirmed %v after it began", d)
			}
			if at := secs(cl.Since); at < to-0.05 || at > to+1 {
				t.Errorf("covered recovery began at %.1f s, uncovered at %.0f s", at, to)
			}
			if light.drop > cfg.CoveredDrop {
				t.Errorf("detail fell only to %.2f of the scene's", light.drop)
			}
		})
	}
}

// TestSizeChangeKeepsCover: a stream that changes size while the lens is
// covered keeps its covered condition (judged on the picture alone, not
// on the reference), with no second alert for the same cover.
func TestSizeChangeKeepsCover(t *testing.T) {
	path := vtestClip(t, "covered-black", 20, "[0:v]drawbox=c=black:t=fill:enable='between(t,8,14)',noise=alls=3:allf=t")
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	small := gocv.NewMat()
	defer small.Close()
	var evs []Event
	decode(t, path, func(gray gocv.Mat, at time.Time) {
		in := gray
		if secs(at) >= 10 {
			gocv.Resize(gray, &small, image.Pt(160, 120), 0, 0, gocv.InterpolationArea)
			in = small
		}
		res := d.Process(in, at)
		evs = append(evs, res.Cleared...)
		evs = append(evs, res.Started...)
	})
	t.Logf("%s", describe(evs))
	if len(evs) != 2 || evs[0].Kind != Covered || evs[0].Cleared || evs[1].Kind != Covered || !evs[1].Cleared {
		t.Fatalf("want covered started and cleared once, got:%s", describe(evs))
	}
	if at := secs(evs[1].Since); at < 13.95 || at > 15 {
		t.Errorf("covered recovery began at %.1f s, uncovered at 14 s", at)
	}
}
