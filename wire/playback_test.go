package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The playback methods' requests: a camera, from < to within the bound,
// and for playback an origin.
func TestValidatePlayback(t *testing.T) {
	from := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	origin := &PlaybackParams{Origin: from}
	for _, tc := range []struct {
		name string
		req  Request
		bad  string // in the error; "" = valid
	}{
		{"playback", Request{Method: MethodPlayback, Camera: "gate", From: from, To: from.Add(10 * time.Second), Playback: origin}, ""},
		{"playback of the longest window", Request{Method: MethodPlayback, Camera: "gate", From: from, To: from.Add(MaxPlaybackWindow), Playback: &PlaybackParams{Origin: from, KeyframesOnly: true}}, ""},
		{"playback over 60 s", Request{Method: MethodPlayback, Camera: "gate", From: from, To: from.Add(MaxPlaybackWindow + time.Millisecond), Playback: origin}, "window over 1m0s"},
		{"playback without camera", Request{Method: MethodPlayback, From: from, To: from.Add(time.Second), Playback: origin}, "needs camera"},
		{"playback backwards", Request{Method: MethodPlayback, Camera: "gate", From: from, To: from, Playback: origin}, "from < to"},
		{"playback without from", Request{Method: MethodPlayback, Camera: "gate", To: from, Playback: origin}, "from < to"},
		{"playback without params", Request{Method: MethodPlayback, Camera: "gate", From: from, To: from.Add(time.Second)}, "origin"},
		{"playback without origin", Request{Method: MethodPlayback, Camera: "gate", From: from, To: from.Add(time.Second), Playback: &PlaybackParams{}}, "origin"},
		{"overlay", Request{Method: MethodOverlay, Camera: "gate", From: from, To: from.Add(MaxOverlayRange)}, ""},
		{"overlay over 10 min", Request{Method: MethodOverlay, Camera: "gate", From: from, To: from.Add(MaxOverlayRange + time.Second)}, "range over 10m0s"},
		{"overlay without camera", Request{Method: MethodOverlay, From: from, To: from.Add(time.Second)}, "needs camera"},
		{"overlay backwards", Request{Method: MethodOverlay, Camera: "gate", From: from.Add(time.Second), To: from}, "from < to"},
		{"overlay without to", Request{Method: MethodOverlay, Camera: "gate", From: from}, "from < to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.ID = "req-1"
			err := tc.req.Validate()
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Errorf("error %v, want one saying %q", err, tc.bad)
			}
		})
	}
}

// A playback request and its answers survive JSON as central and the
// browser read them: the params, Next only when set, the overlay's
// field names.
func TestPlaybackJSON(t *testing.T) {
	from := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	req := Request{ID: "r", Method: MethodPlayback, Camera: "gate", From: from, To: from.Add(time.Second), Playback: &PlaybackParams{Origin: from, KeyframesOnly: true}}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back Request
	if err := json.Unmarshal(b, &back); err != nil || back.Playback == nil || !back.Playback.Origin.Equal(from) || !back.Playback.KeyframesOnly || back.Validate() != nil {
		t.Fatalf("request round trip: %s → %+v %v", b, back, err)
	}
	info, _ := json.Marshal(PlaybackInfo{Camera: "gate", Codec: "avc1.640028", Origin: from, Start: from, End: from.Add(time.Second), Frames: 10})
	if strings.Contains(string(info), "next") || !strings.Contains(string(info), `"codec":"avc1.640028"`) {
		t.Errorf("info without a change: %s", info)
	}
	info, _ = json.Marshal(PlaybackInfo{Next: from})
	if !strings.Contains(string(info), `"next":"2026-03-01T12:00:00Z"`) {
		t.Errorf("info with a change: %s", info)
	}
	ov, _ := json.Marshal(Overlay{Camera: "gate", Boxes: []BoxFrame{{Time: from, Boxes: []Box{{X: 0.5, Y: 0.25, W: 0.1, H: 0.2}}}},
		Zones: []OverlayZone{{Name: "yard", Points: []Point{{X: 0, Y: 1}}}}, Lines: []OverlayLine{{Name: "fence", A: Point{X: 0.1}, B: Point{Y: 0.9}, Direction: "in"}}})
	for _, want := range []string{`"boxes":[{"t":"2026-03-01T12:00:00Z","boxes":[{"x":0.5,"y":0.25,"w":0.1,"h":0.2}]}]`, `"zones":[{"name":"yard","points":[{"x":0,"y":1}]}]`,
		`"lines":[{"name":"fence","a":{"x":0.1,"y":0},"b":{"x":0,"y":0.9},"direction":"in"}]`} {
		if !strings.Contains(string(ov), want) {
			t.Errorf("overlay %s lacks %s", ov, want)
		}
	}
}
