package clips

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestPinsSurviveEviction pins an alert's window, records ten more
// budget turnovers (with a restart in between) and checks that the window
// is still there whole, that everything around it went, and that it goes
// too once released.
func TestPinsSurviveEviction(t *testing.T) {
	clip := bursts(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Default.MaxBytes = 4 << 20 // about 90 s
	s := openStore(t, cfg)
	f := newFeed(clip, epoch)
	alert := epoch.Add(60 * time.Second)
	record(t, recorder(t, s, "gate"), f, alert.Add(2*time.Second))
	pin, err := s.Pin("alert-1", "gate", alert, "motion")
	if err != nil {
		t.Fatal(err)
	}
	if !pin.From.Equal(alert.Add(-10*time.Second)) || !pin.To.Equal(alert.Add(30*time.Second)) {
		t.Fatalf("pin %v..%v, want the default 10 s pre-roll and 30 s post-roll", pin.From, pin.To)
	}
	record(t, recorder(t, s, "gate"), f, epoch.Add(5*time.Minute))
	flush(t, s)

	// A restart keeps the pin.
	s.Close()
	cfg.Registerer = nil
	s = openStore(t, cfg)
	if ps := s.Pins(); len(ps) != 1 || ps[0].ID != "alert-1" {
		t.Fatalf("pins after restart: %+v", ps)
	}
	record(t, recorder(t, s, "gate"), f, epoch.Add(10*time.Minute))
	flush(t, s)

	st := s.Stats().Cameras[0]
	if st.Bytes > cfg.Default.MaxBytes {
		t.Errorf("camera holds %d bytes, budget %d", st.Bytes, cfg.Default.MaxBytes)
	}
	// Chunks are 4 s from the first keyframe: the pin holds 48 s..92 s.
	want := int64(float64(clipBytes(clip)) * 44 / 40)
	if st.PinnedBytes < want*9/10 || st.PinnedBytes > want*11/10 {
		t.Errorf("pinned %d bytes, want about %d", st.PinnedBytes, want)
	}
	path, info := exportFile(t, s, "gate", pin.From, pin.To)
	if p := ffprobe(t, path); p.Frames != 400 || !info.Start.Equal(pin.From) {
		t.Errorf("pinned window: %d frames from %v, want 400 from %v", p.Frames, info.Start, pin.From)
	}
	tl, err := s.Timeline("gate", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 2 || !tl.Spans[0].Start.Equal(epoch.Add(48*time.Second)) || !tl.Spans[0].End.Equal(epoch.Add(92*time.Second)) {
		t.Fatalf("timeline: %+v, want the pinned 48 s..92 s and the recent video", tl.Spans)
	}
	if !tl.Spans[1].Start.After(epoch.Add(9 * time.Minute)) {
		t.Errorf("unpinned video from %v was kept", tl.Spans[1].Start)
	}

	if err := s.Unpin("alert-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin("alert-1"); err != nil {
		t.Errorf("second unpin: %v", err)
	}
	record(t, recorder(t, s, "gate"), f, epoch.Add(11*time.Minute))
	flush(t, s)
	if _, _, err := exportOrErr(s, "gate", pin.From, pin.To); !errors.Is(err, ErrNoVideo) {
		t.Errorf("released window after more recording: %v, want ErrNoVideo", err)
	}
}

// TestPinsFull fills the pinned share of the store: further pins are
// refused with a red condition, nothing pinned is dropped, and releasing
// evidence clears the condition.
func TestPinsFull(t *testing.T) {
	var mu sync.Mutex
	var conds []Condition
	cfg := testConfig(t, t.TempDir())
	cfg.MaxPinnedBytes = 1 << 20
	cfg.OnCondition = func(c Condition) {
		mu.Lock()
		conds = append(conds, c)
		mu.Unlock()
	}
	s := openStore(t, cfg)
	record(t, recorder(t, s, "gate"), newFeed(bursts(t), epoch), epoch.Add(3*time.Minute))
	if _, err := s.Pin("a1", "gate", epoch.Add(30*time.Second), "motion"); err != nil {
		t.Fatal(err)
	}
	flush(t, s) // counts what is pinned: about 2 MB, over the 1 MiB share
	_, err := s.Pin("a2", "gate", epoch.Add(2*time.Minute), "motion")
	if !errors.Is(err, ErrPinsFull) {
		t.Fatalf("second pin: %v, want ErrPinsFull", err)
	}
	mu.Lock()
	raised := len(conds) == 1 && conds[0].Kind == CondPinsFull && conds[0].Active
	mu.Unlock()
	if !raised {
		t.Fatalf("conditions %+v, want pins_full raised", conds)
	}
	if got := s.Conditions(); len(got) != 1 || got[0].Kind != CondPinsFull {
		t.Errorf("Conditions() = %+v", got)
	}
	if err := s.Unpin("a1"); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if _, err := s.Pin("a2", "gate", epoch.Add(2*time.Minute), "motion"); err != nil {
		t.Fatalf("pin after release: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conds) != 2 || conds[1].Kind != CondPinsFull || conds[1].Active {
		t.Errorf("conditions %+v, want pins_full cleared", conds)
	}
}

// TestPinExpiry releases evidence after the retention period.
func TestPinExpiry(t *testing.T) {
	clk := &clock{t: epoch}
	cfg := testConfig(t, t.TempDir())
	cfg.Clock = clk.Now
	cfg.EvidenceRetention = time.Hour
	s := openStore(t, cfg)
	record(t, recorder(t, s, "gate"), newFeed(bursts(t), epoch), epoch.Add(time.Minute))
	if _, err := s.Pin("a1", "gate", epoch.Add(30*time.Second), ""); err != nil {
		t.Fatal(err)
	}
	clk.Set(epoch.Add(59 * time.Minute))
	flush(t, s)
	if len(s.Pins()) != 1 {
		t.Fatal("pin released before its time")
	}
	clk.Set(epoch.Add(61 * time.Minute))
	flush(t, s)
	if ps := s.Pins(); len(ps) != 0 {
		t.Errorf("pins after the evidence retention: %+v", ps)
	}
}
