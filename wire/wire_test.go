package wire

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	a := Alert{ID: "e1-1", EdgeID: "e1", SiteID: "s", Source: "cam", Kind: "motion", Severity: Red,
		Time: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC), Snapshot: []byte{0xff, 0xd8, 0xff}}
	frame, err := Marshal(TypeAlert, a)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Unmarshal(frame)
	if err != nil {
		t.Fatal(err)
	}
	var b Alert
	if err := DecodeBody(env, &b); err != nil {
		t.Fatal(err)
	}
	if env.Type != TypeAlert || b.ID != a.ID || !b.Time.Equal(a.Time) || !bytes.Equal(b.Snapshot, a.Snapshot) {
		t.Fatalf("round trip changed the alert: %+v", b)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRejects(t *testing.T) {
	tests := []struct {
		name, frame, want string
	}{
		{"not json", "{", "malformed envelope"},
		{"old version", `{"v":1,"type":"alert","body":{}}`, "unsupported envelope version 1"},
		{"no type", `{"v":2,"body":{}}`, "without type"},
		{"too big", `{"v":1,"type":"alert","body":"` + strings.Repeat("x", MaxFrameBytes) + `"}`, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal([]byte(tc.frame))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAlertValidate(t *testing.T) {
	ok := Alert{ID: "x", EdgeID: "e", Source: "c", Kind: "motion", Severity: Yellow, Time: time.Now()}
	bad := map[string]func(*Alert){
		"id":        func(a *Alert) { a.ID = "" },
		"long id":   func(a *Alert) { a.ID = strings.Repeat("a", 129) },
		"edge":      func(a *Alert) { a.EdgeID = "" },
		"source":    func(a *Alert) { a.Source = "" },
		"kind":      func(a *Alert) { a.Kind = "" },
		"severity":  func(a *Alert) { a.Severity = "purple" },
		"direction": func(a *Alert) { a.Direction = "sideways" },
		"long line": func(a *Alert) { a.Line = strings.Repeat("l", 129) },
		"long path": func(a *Alert) { a.Path = make([]Point, MaxPath+1) },
		"path off":  func(a *Alert) { a.Path = []Point{{X: 0.5, Y: 1.5}} },
		"time":      func(a *Alert) { a.Time = time.Time{} },
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range bad {
		a := ok
		mut(&a)
		if a.Validate() == nil {
			t.Errorf("%s: invalid alert accepted", name)
		}
	}
}

// FuzzUnmarshal: whatever an edge (or an impostor) sends, parsing an
// envelope and any body returns an error or a value, never panics.
func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal(TypeAlert, Alert{ID: "a", EdgeID: "e", Source: "c", Kind: "motion", Severity: Red, Time: time.Now()})
	f.Add(good)
	f.Add([]byte(`{"v":2,"type":"ack","body":{"ids":["a","b"]}}`))
	f.Add([]byte(`{"v":2,"type":"alert","body":{"snapshot":"!!"}}`))
	f.Add([]byte(`{"v":2,"type":"alert","body":{"kind":"perimeter.crossing","line":"east wall","direction":"in","path":[{"x":0.1,"y":0.9},{"x":1e400}]}}`))
	f.Add([]byte(`{"v":2,"type":"hello","body":{"edge_id":"e","nonce":"AAAA","signature":"AAAA"}}`))
	f.Add([]byte(`{"v":2,"type":"request","body":{"id":"r1","method":"clip","camera":"c"}}`))
	f.Add([]byte(`{"v":2,"type":"event_batch","body":{"id":"b","edge_id":"e","events":[{"source":"g"}]}}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		env, err := Unmarshal(frame)
		if err != nil {
			return
		}
		var a Alert
		if DecodeBody(env, &a) == nil {
			_ = a.Validate()
		}
		var h Hello
		if DecodeBody(env, &h) == nil {
			_ = h.SigningBytes()
		}
		var u AlertUpdate
		if DecodeBody(env, &u) == nil {
			_ = u.Validate()
		}
		var b EventBatch
		if DecodeBody(env, &b) == nil {
			_ = b.Validate()
		}
		var r Request
		if DecodeBody(env, &r) == nil {
			_ = r.Validate()
		}
	})
}

func TestAlertClosedAndUpdateCount(t *testing.T) {
	now := time.Now()
	good := AlertClosed{AlertID: "a1", State: "resolved", By: "alice", Time: now}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []AlertClosed{{State: "resolved", Time: now}, {AlertID: "a1", Time: now}, {AlertID: "a1", State: "resolved"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	u := AlertUpdate{ID: "u1", AlertID: "a1", EdgeID: "e1", Time: now, Count: -1}
	if u.Validate() == nil {
		t.Error("negative count accepted")
	}
	u.Count, u.Boxes = 2, []Box{{X: 0.1, Y: 0.1, W: 0.2, H: 0.2}}
	b, err := Marshal(TypeAlertUpdate, u)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var back AlertUpdate
	if err := DecodeBody(env, &back); err != nil || back.Count != 2 || len(back.Boxes) != 1 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

// An update's links are checked like an alert's.
func TestAlertUpdateLinks(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	u := AlertUpdate{ID: "u-1", AlertID: "a-1", EdgeID: "e", Time: at, Links: []Link{{Camera: "cam", ClipFrom: at, ClipTo: at.Add(time.Minute)}}}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	u.Links[0].ClipTo = at.Add(-time.Second)
	if err := u.Validate(); err == nil || !strings.Contains(err.Error(), "alert_update: links[0]") {
		t.Fatalf("backwards clip: %v", err)
	}
	u.Links = []Link{{ClipFrom: at}}
	if err := u.Validate(); err == nil || !strings.Contains(err.Error(), "camera is empty") {
		t.Fatalf("no camera: %v", err)
	}
}

// TestPerimeterAlertRoundTrip: a crossing's line, direction and path, and
// a loiter's region and entry time, reach central as sent.
func TestPerimeterAlertRoundTrip(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := Alert{ID: "x", EdgeID: "e", Source: "c", Kind: KindPerimeterCrossing, Severity: Red, Time: now,
		Line: "east wall", Direction: "in", Path: []Point{{X: 0.2, Y: 0.9}, {X: 0.3, Y: 0.7}}}
	l := Alert{ID: "y", EdgeID: "e", Source: "c", Kind: KindPerimeterLoiter, Severity: Yellow, Time: now,
		Dwell: "gate apron", Since: now.Add(-20 * time.Second), Path: []Point{{X: 0.5, Y: 0.5}}}
	for _, in := range []Alert{a, l} {
		if err := in.Validate(); err != nil {
			t.Fatal(err)
		}
		b, err := Marshal(TypeAlert, in)
		if err != nil {
			t.Fatal(err)
		}
		env, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var out Alert
		if err := DecodeBody(env, &out); err != nil {
			t.Fatal(err)
		}
		if out.Line != in.Line || out.Direction != in.Direction || out.Dwell != in.Dwell || !out.Since.Equal(in.Since) ||
			len(out.Path) != len(in.Path) || out.Path[0] != in.Path[0] {
			t.Fatalf("got %+v, sent %+v", out, in)
		}
	}
	b, _ := Marshal(TypeAlert, Alert{ID: "z", EdgeID: "e", Source: "c", Kind: "motion", Severity: Red, Time: now})
	for _, f := range []string{"line", "direction", "dwell", "since", "path"} {
		if strings.Contains(string(b), `"`+f+`"`) {
			t.Errorf("a motion alert carries %q: %s", f, b)
		}
	}
}
