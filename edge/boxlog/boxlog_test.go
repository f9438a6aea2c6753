package boxlog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string, retention time.Duration) (*Log, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l, err := Open(Config{Dir: dir, Retention: retention, Registerer: reg, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, reg
}

// settle waits for the writer to commit what is queued.
func settle(t *testing.T, l *Log, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(l.written) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%v frames written, want %v", testutil.ToFloat64(l.written), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A camera analysed at 10 frames a second keeps 5 of them, in time order,
// each with its boxes to 1/65535; frames without boxes, other cameras
// (one whose name starts with this one's) and times outside the range
// are not returned; the boxes outlive a restart.
func TestAddRange(t *testing.T) {
	dir := t.TempDir()
	l, reg := open(t, dir, 0)
	if got := testutil.ToFloat64(l.dropped); got != 0 {
		t.Fatalf("dropped %v at start", got)
	}
	if n, err := testutil.GatherAndCount(reg, "vigil_edge_motion_boxes_dropped_total"); err != nil || n != 1 {
		t.Fatalf("the drop counter is not exported at start: %d %v", n, err)
	}
	box := func(i int) []wire.Box {
		return []wire.Box{{X: 0.1, Y: float64(i) / 100, W: 0.25, H: 0.5}, {X: 1, Y: 1, W: 0, H: 0}}
	}
	for i := range 20 { // 2 s at 10 fps
		at := epoch.Add(time.Duration(i) * 100 * time.Millisecond)
		l.Add("gate", at, box(i))
		l.Add("gate-2", at, box(i))
		l.Add("gate", at.Add(time.Millisecond), nil)
	}
	settle(t, l, 20)
	got, err := l.Range("gate", epoch.Add(200*time.Millisecond), epoch.Add(1800*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 { // 0.2, 0.4, ... 1.6 s
		t.Fatalf("%d frames, want 8: %v", len(got), got)
	}
	for i, f := range got {
		k := 2 + 2*i
		if want := epoch.Add(time.Duration(k) * 100 * time.Millisecond); !f.Time.Equal(want) {
			t.Errorf("frame %d at %v, want %v", i, f.Time, want)
		}
		want := box(k)
		if len(f.Boxes) != 2 || f.Boxes[1] != want[1] || abs(f.Boxes[0].Y-want[0].Y) > 1.0/65535 || abs(f.Boxes[0].W-0.25) > 1.0/65535 {
			t.Errorf("frame %d boxes %v, want %v", i, f.Boxes, want)
		}
	}
	l.Close()
	if _, err := l.Range("gate", epoch, epoch.Add(time.Hour)); err == nil {
		t.Error("Range after Close: no error")
	}
	l, _ = open(t, dir, 0)
	if got, err := l.Range("gate", epoch, epoch.Add(time.Hour)); err != nil || len(got) != 10 {
		t.Errorf("after a restart: %d frames, %v; want 10", len(got), err)
	}
	if got, _ := l.Range("gate-", epoch, epoch.Add(time.Hour)); len(got) != 0 {
		t.Errorf("camera gate-: %d frames of another camera", len(got))
	}
}

func abs(v float64) float64 { return max(v, -v) }

// Boxes expire after the retention.
func TestRetention(t *testing.T) {
	l, _ := open(t, t.TempDir(), time.Second)
	now := time.Now()
	l.Add("gate", now, []wire.Box{{X: 0.5, Y: 0.5, W: 0.1, H: 0.1}})
	settle(t, l, 1)
	if got, _ := l.Range("gate", now.Add(-time.Second), now.Add(time.Second)); len(got) != 1 {
		t.Fatalf("%d frames before expiry, want 1", len(got))
	}
	time.Sleep(2100 * time.Millisecond)
	if got, _ := l.Range("gate", now.Add(-time.Second), now.Add(time.Second)); len(got) != 0 {
		t.Errorf("%d frames after the retention, want none", len(got))
	}
}

// With the writer stopped, Add fills the queue and then drops, counting
// every frame dropped, and never blocks.
func TestAddNeverBlocks(t *testing.T) {
	l, reg := open(t, t.TempDir(), 0)
	l.Close()
	done := make(chan struct{})
	go func() {
		for i := range queueLen + 44 {
			l.Add("gate", epoch.Add(time.Duration(i)*time.Second), []wire.Box{{W: 0.1, H: 0.1}})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Add blocked")
	}
	if got := testutil.ToFloat64(l.dropped); got != 44 {
		t.Errorf("%v dropped, want 44", got)
	}
	want := "\n# HELP vigil_edge_motion_boxes_dropped_total Analysed frames' motion boxes not kept for playback: the box log's queue was full.\n# TYPE vigil_edge_motion_boxes_dropped_total counter\nvigil_edge_motion_boxes_dropped_total 44\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_edge_motion_boxes_dropped_total"); err != nil {
		t.Error(err)
	}
}

// Range returns at most MaxRange frames, the first ones.
func TestRangeBounded(t *testing.T) {
	l, _ := open(t, t.TempDir(), 0)
	var batch []entry
	for i := range MaxRange + 100 {
		batch = append(batch, entry{camera: "gate", t: epoch.Add(time.Duration(i) * 200 * time.Millisecond), boxes: []wire.Box{{W: 0.1, H: 0.1}}})
	}
	for len(batch) > 0 {
		n := min(len(batch), 1000)
		l.write(batch[:n])
		batch = batch[n:]
	}
	got, err := l.Range("gate", epoch, epoch.Add(time.Hour))
	if err != nil || len(got) != MaxRange || !got[0].Time.Equal(epoch) {
		t.Fatalf("%d frames from %v, %v; want the first %d", len(got), got[0].Time, err, MaxRange)
	}
}

// Every record decodes to what was encoded, at the grid's precision, and
// every box is clamped to 0..1; at most MaxBoxes are kept.
func TestFrameCodec(t *testing.T) {
	var many []wire.Box
	for i := range MaxBoxes + 3 {
		many = append(many, wire.Box{X: float64(i) / 100, Y: -1, W: 2, H: 0.5})
	}
	got, err := decodeFrame(encodeFrame(many))
	if err != nil || len(got) != MaxBoxes || got[3] != (wire.Box{X: got[3].X, Y: 0, W: 1, H: got[3].H}) || abs(got[3].X-0.03) > 1.0/65535 {
		t.Fatalf("%d boxes %v, %v", len(got), got[:4], err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0}, {1, 1, 0}, {1, 0, 0}, append([]byte{1, 65}, make([]byte, 65*8)...)} {
		if _, err := decodeFrame(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// FuzzDecodeFrame: any bytes decode or fail cleanly; what decodes encodes
// back to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeFrame([]wire.Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}}))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 2, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		boxes, err := decodeFrame(v)
		if err != nil {
			return
		}
		if back := encodeFrame(boxes); !bytes.Equal(back, v) {
			t.Fatalf("%x decodes to %v, which encodes to %x", v, boxes, back)
		}
		for _, b := range boxes {
			for _, c := range []float64{b.X, b.Y, b.W, b.H} {
				if c < 0 || c > 1 {
					t.Fatal(fmt.Sprint("coordinate out of 0..1: ", b))
				}
			}
		}
	})
}
