package journal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
)

func ev(id string) gates.Event {
	return gates.Event{ID: id, Gate: "north", Device: "ctrl", Kind: gates.Button, Time: time.Now().UTC(), Source: "webhook/ctrl"}
}

func open(t *testing.T, dir string, opts Options) *Journal {
	t.Helper()
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// abandon stops the committer without a final done mark or sync, as
// kill -9 would leave the files (the page cache survives a process kill).
func abandon(j *Journal) {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.f.Close()
}

func TestAppendDoneReplay(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	recs, err := j.Append(context.Background(), time.Now(), []gates.Event{ev("a"), ev("b"), ev("c")})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq != 1 || recs[2].Seq != 3 {
		t.Fatalf("seqs %d..%d, want 1..3", recs[0].Seq, recs[2].Seq)
	}
	j.Done(2) // out of order: nothing is done up to 2 yet
	if j.DoneUpTo() != 0 {
		t.Fatalf("done up to %d", j.DoneUpTo())
	}
	j.Done(1)
	if j.DoneUpTo() != 2 {
		t.Fatalf("done up to %d, want 2", j.DoneUpTo())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, Options{})
	defer j.Close()
	p := j.Pending()
	if len(p) != 1 || p[0].Seq != 3 || p[0].Event.ID != "c" {
		t.Fatalf("pending %+v, want only c (seq 3)", p)
	}
	// IDs survive the restart: a resend is a duplicate, never a new record.
	recs, err = j.Append(context.Background(), time.Now(), []gates.Event{ev("a"), ev("d")})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq != 0 || recs[1].Seq != 4 {
		t.Fatalf("after restart: seqs %d, %d; want 0 (duplicate), 4", recs[0].Seq, recs[1].Seq)
	}
}

// TestTornTail cuts the journal at every byte of its last records, as a
// crash mid-write would, and checks that every record wholly written
// survives, the torn one is cut, and new appends after it are readable.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	j := open(t, src, Options{})
	for i := range 5 {
		if _, err := j.Append(context.Background(), time.Now(), []gates.Event{ev(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	abandon(j)
	name := filepath.Join(src, fmt.Sprintf("%020d.log", 1))
	full, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int // offsets after each record
	if _, err := readSegment(name, func(byte, uint64, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(full); {
		n := int(uint32(full[off]) | uint32(full[off+1])<<8 | uint32(full[off+2])<<16 | uint32(full[off+3])<<24)
		off += headerLen + n
		ends = append(ends, off)
	}
	for cut := ends[len(ends)-3]; cut <= len(full); cut++ {
		dir := t.TempDir()
		data := full[:cut]
		if cut < len(full) && rand.IntN(2) == 0 {
			data = append(append([]byte(nil), full[:cut]...), 0xff, 0x00) // garbage after the cut
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		j := open(t, dir, Options{})
		whole := 0
		for _, e := range ends {
			if e <= cut {
				whole++
			}
		}
		if got := len(j.Pending()); got != whole-1 { // the first record is the segment's done mark
			t.Fatalf("cut at %d of %d: %d pending, want %d", cut, len(full), got, whole-1)
		}
		recs, err := j.Append(context.Background(), time.Now(), []gates.Event{ev("new")})
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
		j = open(t, dir, Options{})
		p := j.Pending()
		if len(p) != whole || p[len(p)-1].Seq != recs[0].Seq {
			t.Fatalf("cut at %d: after reopen %d pending (last %+v), want %d ending in seq %d", cut, len(p), p[len(p)-1], whole, recs[0].Seq)
		}
		j.Close()
	}
}

// TestGroupCommit: concurrent appends share fsyncs.
func TestGroupCommit(t *testing.T) {
	var mu sync.Mutex
	commits := 0
	j := open(t, t.TempDir(), Options{OnCommit: func([]Record) { mu.Lock(); commits++; mu.Unlock() }})
	defer j.Close()
	var wg sync.WaitGroup
	for c := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var evs []gates.Event
			for i := range 100 {
				evs = append(evs, ev(fmt.Sprintf("%d-%d", c, i)))
			}
			if _, err := j.Append(context.Background(), time.Now(), evs); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if commits < 1 || commits > 10 {
		t.Fatalf("%d commits for 10 concurrent appends", commits)
	}
	t.Logf("10 concurrent appends of 100 events: %d fsyncs", commits)
}

// TestCompaction: done segments older than the window are deleted, and
// their IDs forgotten; sequence numbers go on.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	j := open(t, dir, Options{SegmentSize: 200, Window: time.Minute, CheckpointEvery: 10 * time.Millisecond, Now: clock})
	for i := range 20 {
		recs, err := j.Append(context.Background(), now, []gates.Event{ev(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		j.Done(recs[0].Seq)
	}
	before, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	j.Close()
	now = now.Add(2 * time.Minute)
	j = open(t, dir, Options{SegmentSize: 200, Window: time.Minute, CheckpointEvery: 10 * time.Millisecond, Now: clock})
	defer j.Close()
	if _, err := j.Append(context.Background(), now, []gates.Event{ev("x")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	deadline := time.Now().Add(2 * time.Second)
	var after []string
	for time.Now().Before(deadline) {
		after, _ = filepath.Glob(filepath.Join(dir, "*.log"))
		if len(after) <= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(before) < 3 || len(after) > 2 {
		t.Fatalf("segments: %d before, %d after compaction", len(before), len(after))
	}
	recs, err := j.Append(context.Background(), now, []gates.Event{ev("0")})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq != 22 {
		t.Fatalf("seq %d after compaction, want 22 (an old ID beyond the window is new again)", recs[0].Seq)
	}
}

func BenchmarkAppend100x10(b *testing.B) {
	j := open(&testing.T{}, b.TempDir(), Options{})
	defer j.Close()
	for n := 0; b.Loop(); n++ {
		var wg sync.WaitGroup
		for c := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				evs := make([]gates.Event, 100)
				for i := range evs {
					evs[i] = ev(fmt.Sprintf("%d-%d-%d", n, c, i))
				}
				j.Append(context.Background(), time.Now(), evs)
			}()
		}
		wg.Wait()
	}
}
