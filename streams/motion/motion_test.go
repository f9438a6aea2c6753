package motion_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// rect is an axis-aligned polygon in normalised coordinates.
func rect(x0, y0, x1, y1 float64) motion.Polygon {
	return motion.Polygon{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}
}

// alertWithin fails unless ev was raised between from and from+within.
func alertWithin(t *testing.T, ev camera.FileEvent, from float64, within time.Duration) {
	t.Helper()
	if d := ev.Raised.Sub(at(from)); d < 0 || d > within {
		t.Errorf("alert %v after the object entered at %gs, want within %v", d, from, within)
	}
}

// TestZonesAndMasks: the object crosses the lower middle band of the
// picture (55–80 % of the height) twice. A mask over that band silences
// it; a zone over it is named in the events; a zone elsewhere sees nothing;
// a zone whose minimum size is above the object's ignores it.
func TestZonesAndMasks(t *testing.T) {
	clip := burstsClip(t, 20, footage.Burst{Start: 5, End: 9}, footage.Burst{Start: 12, End: 16})
	band := rect(0, 0.45, 1, 0.9)
	tests := []struct {
		name  string
		cfg   motion.Config
		zones []string // of every event; nil: expect no event
	}{
		{"no zones: the whole picture is zone all", motion.Config{}, []string{motion.AllZone}},
		{"mask over the crossing", motion.Config{Masks: []motion.Polygon{band}}, nil},
		{"zone over the crossing is named", motion.Config{Zones: []motion.Zone{
			{Name: "roofs", Points: rect(0, 0, 1, 0.3)},
			{Name: "lane", Points: band},
		}}, []string{"lane"}},
		{"zone away from the crossing", motion.Config{Zones: []motion.Zone{{Name: "roofs", Points: rect(0, 0, 1, 0.3)}}}, nil},
		{"zone for bigger objects", motion.Config{Zones: []motion.Zone{{Name: "lane", Points: band, MinArea: 0.05}}}, nil},
		{"mask over half the crossing: still seen in the other half", motion.Config{Masks: []motion.Polygon{rect(0, 0.45, 0.5, 0.9)}}, []string{motion.AllZone}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := motionEvents(t, clip, tc.cfg)
			if tc.zones == nil {
				if len(evs) != 0 {
					t.Fatalf("%d events, want none", len(evs))
				}
				return
			}
			if len(evs) != 2 {
				t.Fatalf("%d events for 2 crossings", len(evs))
			}
			for _, ev := range evs {
				if !slices.Equal(ev.Zones, tc.zones) {
					t.Errorf("event zones %v, want %v", ev.Zones, tc.zones)
				}
				if len(ev.Boxes) == 0 {
					t.Error("event without a box")
				}
				for _, b := range ev.Boxes {
					if b.Y+b.H < 0.45 || b.Y > 0.9 {
						t.Errorf("box %+v is not on the crossing", b)
					}
				}
			}
			if len(tc.cfg.Masks) == 0 {
				alertWithin(t, evs[0], 5, time.Second)
				alertWithin(t, evs[1], 12, time.Second)
			}
		})
	}
}

// TestPersistenceNeedsKOfN: an object that crosses the whole picture in
// 0.3 s is in fewer than 3 of the analysed frames (5 fps) and raises
// nothing; the same clip with 1-of-1 persistence raises it, so it is
// persistence, not blindness, that keeps it quiet.
func TestPersistenceNeedsKOfN(t *testing.T) {
	clip := burstsClip(t, 12, footage.Burst{Start: 6, End: 6.3})
	if evs := motionEvents(t, clip, motion.Config{}); len(evs) != 0 {
		t.Errorf("%d events for an object seen in fewer than k frames", len(evs))
	}
	evs := motionEvents(t, clip, motion.Config{K: 1, N: 1})
	if len(evs) != 1 {
		t.Fatalf("1 of 1: %d events, want 1", len(evs))
	}
	alertWithin(t, evs[0], 6, 500*time.Millisecond)
}

// TestLightingChangesRaiseNothing: the still scene with the light changed
// abruptly or gradually from 10 s on, made with ffmpeg filters.
func TestLightingChangesRaiseNothing(t *testing.T) {
	tests := []struct{ name, graph string }{
		{"lights on", ",split[a][b];[b]lutyuv=y='min(val*1.4\\,255)'[n];[a][n]overlay=enable='gte(t,10)'"},
		{"lights off", ",split[a][b];[b]lutyuv=y='val*0.5'[n];[a][n]overlay=enable='gte(t,10)'"},
		{"a lamp lights a third of the picture", ",split[a][b];[b]crop=iw/3:ih:0:0,lutyuv=y='min(val*1.4\\,255)'[n];[a][n]overlay=0:0:enable='gte(t,10)'"},
		{"day to night (IR): colour gone, contrast and gamma changed", ",split[a][b];[b]hue=s=0,eq=contrast=1.5:gamma=0.7:brightness=0.05[n];[a][n]overlay=enable='gte(t,10)'"},
		{"a cloud darkens the scene over 2 s", ",eq=brightness='-0.25*clip((t-10)/2\\,0\\,1)':eval=frame"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "motion-light-" + strings.Fields(tc.name)[0] + "-" + strings.Fields(tc.name)[1]
			clip := makeClip(t, name, [][]string{sample("vtest.avi")}, stillScene(20)+tc.graph)
			if evs := motionEvents(t, clip, motion.Config{}); len(evs) != 0 {
				t.Errorf("%d motion events for a change of light", len(evs))
			}
		})
	}
}

// TestMotionRightAfterLightsOn: someone walking in a second after the
// light changed is still seen promptly (the old model's leftovers do not
// hide them).
func TestMotionRightAfterLightsOn(t *testing.T) {
	walk := burstsClip(t, 20, footage.Burst{Start: 11, End: 15})
	clip := makeClip(t, "motion-lights-on-walk", [][]string{{"-i", walk}},
		"[0:v]split[a][b];[b]lutyuv=y='min(val*1.4\\,255)'[n];[a][n]overlay=enable='gte(t,10)'")
	evs := motionEvents(t, clip, motion.Config{})
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1 (the walker)", len(evs))
	}
	alertWithin(t, evs[0], 11, time.Second)
	for _, b := range evs[0].Boxes {
		if b.W > 0.3 {
			t.Errorf("box %+v: the walker merged with the lit scene", b)
		}
	}
}

// TestVegetationRaisesNothing: opencv-doc's tree.avi, leaves swaying
// behind a window with glare, raises nothing after the warm-up. From about
// 23 s on a hand reaches in front of the lens: that is an object, and it is
// reported.
func TestVegetationRaisesNothing(t *testing.T) {
	leaves := makeClip(t, "motion-tree-leaves", [][]string{sample("tree.avi")}, "[0:v]trim=duration=22,setpts=PTS-STARTPTS")
	if evs := motionEvents(t, leaves, motion.Config{}); len(evs) != 0 {
		t.Errorf("%d motion events on swaying leaves", len(evs))
	}
	whole := makeClip(t, "motion-tree-whole", [][]string{sample("tree.avi")}, "[0:v]null")
	evs := motionEvents(t, whole, motion.Config{})
	if len(evs) != 1 {
		t.Fatalf("%d events on the whole clip, want 1 (the hand)", len(evs))
	}
	if evs[0].Start.Before(at(22)) {
		t.Errorf("event from %v, before the hand appears", evs[0].Start.Sub(epoch))
	}
}

// TestRainAndSnowRaiseNothing: the still scene behind falling speckle,
// bright spots at random places in every frame, made with ffmpeg's geq.
func TestRainAndSnowRaiseNothing(t *testing.T) {
	tests := []struct {
		name, grid string // the speckle is drawn on grid and scaled up to 640×480
		share      float64
	}{
		{"rain: thin streaks", "320x60", 0.004},
		{"light snow", "160x120", 0.003},
		{"big flakes", "80x60", 0.01},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			graph := stillScene(20) + "[bg];" +
				fmt.Sprintf("[1:v]geq=lum='if(lt(random(0)\\,%g)\\,220\\,0)':cb=128:cr=128,scale=640:480:flags=neighbor,format=gray[s];", tc.share) +
				"[bg]format=gray[g];[g][s]blend=all_mode=lighten:shortest=1,format=yuv420p"
			clip := makeClip(t, "motion-speckle-"+tc.grid, [][]string{sample("vtest.avi"),
				{"-f", "lavfi", "-i", "color=black:s=" + tc.grid + ":r=10:d=20"}}, graph)
			if evs := motionEvents(t, clip, motion.Config{}); len(evs) != 0 {
				t.Errorf("%d motion events on speckle", len(evs))
			}
		})
	}
}

// TestSlowWalkerIsSeen: an object crossing 70 % of the picture in 30 s
// (about 7 px/s at 320 px) is too slow for the change test and must still
// be found by its travel, within 2.5 s.
func TestSlowWalkerIsSeen(t *testing.T) {
	clip := burstsClip(t, 40, footage.Burst{Start: 5, End: 35})
	evs := motionEvents(t, clip, motion.Config{})
	if len(evs) == 0 {
		t.Fatal("the slow walker raised nothing")
	}
	alertWithin(t, evs[0], 5, 2500*time.Millisecond)
}

func TestConfigValidation(t *testing.T) {
	good := motion.Zone{Name: "gate", Points: rect(0, 0, 0.5, 1)}
	tests := []struct {
		name string
		cfg  motion.Config
		want string // "" for valid
	}{
		{"defaults", motion.Config{}, ""},
		{"zones and masks", motion.Config{Zones: []motion.Zone{good}, Masks: []motion.Polygon{rect(0, 0, 0.2, 0.1)}}, ""},
		{"unnamed zone", motion.Config{Zones: []motion.Zone{good, {Points: rect(0, 0, 1, 1)}}}, "zones[1].name: is required"},
		{"same name twice", motion.Config{Zones: []motion.Zone{good, good}}, `zones[1].name: "gate" is used twice`},
		{"two points", motion.Config{Zones: []motion.Zone{{Name: "z", Points: motion.Polygon{{0, 0}, {1, 1}}}}}, "zones[0].points: needs at least 3 points"},
		{"point outside", motion.Config{Zones: []motion.Zone{{Name: "z", Points: motion.Polygon{{0, 0}, {1.2, 0}, {1, 1}}}}}, "zones[0].points: point 1 (1.2, 0) is outside"},
		{"flat polygon", motion.Config{Masks: []motion.Polygon{{{0, 0}, {0.5, 0.5}, {1, 1}}}}, "masks[0]: encloses no area"},
		{"sensitivity", motion.Config{Zones: []motion.Zone{{Name: "z", Points: rect(0, 0, 1, 1), Sensitivity: 2}}}, "zones[0].sensitivity"},
		{"zone min area", motion.Config{Zones: []motion.Zone{{Name: "z", Points: rect(0, 0, 1, 1), MinArea: 1}}}, "zones[0].min_area"},
		{"k above n", motion.Config{K: 6, N: 5}, "k of n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Defaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			d, err := motion.New(tc.cfg)
			if tc.want == "" && err != nil {
				t.Fatalf("New: %v", err)
			}
			if d != nil {
				d.Close()
			}
		})
	}
}
