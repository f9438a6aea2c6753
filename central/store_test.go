package central

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

func openTestStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenStore(dir, testLogger())
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func mustPut(t *testing.T, s *Store, a wire.Alert) (Record, bool) {
	t.Helper()
	rec, inserted, err := s.Put(a)
	if err != nil {
		t.Fatalf("Put %s: %v", a.ID, err)
	}
	return rec, inserted
}

func TestStoreDedupeAndSequence(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()

	a := testAlert(northID, "a-1")
	rec, inserted := mustPut(t, s, a)
	if !inserted || rec.Seq != 1 {
		t.Fatalf("first put: inserted=%v seq=%d, want true 1", inserted, rec.Seq)
	}
	if rec.Time.Location() != time.UTC || !rec.Time.Equal(a.Time) || rec.ReceivedAt.Location() != time.UTC {
		t.Fatalf("times not kept as UTC instants: time=%v received=%v", rec.Time, rec.ReceivedAt)
	}

	again := a
	again.Summary = "re-sent after reconnect"
	dup, inserted := mustPut(t, s, again)
	if inserted || dup.Seq != 1 || dup.Summary != a.Summary {
		t.Fatalf("duplicate put: inserted=%v rec=%+v, want the original record", inserted, dup)
	}

	rec2, inserted := mustPut(t, s, testAlert(northID, "a-2"))
	if !inserted || rec2.Seq != 2 || s.LastSeq() != 2 {
		t.Fatalf("second alert: inserted=%v seq=%d last=%d", inserted, rec2.Seq, s.LastSeq())
	}

	got, err := s.Get("a-1")
	if err != nil || got.Seq != 1 || got.ID != "a-1" || got.Zones[0] != "road" || got.Boxes[0].W != 0.3 {
		t.Fatalf("Get a-1 = %+v, %v", got, err)
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get unknown: %v, want ErrNotFound", err)
	}
}

func TestStoreSequenceContinuesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	for i := 1; i <= 3; i++ {
		mustPut(t, s, testAlert(northID, fmt.Sprintf("a-%d", i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestStore(t, dir)
	defer s.Close()
	if s.LastSeq() != 3 {
		t.Fatalf("LastSeq after reopen = %d, want 3", s.LastSeq())
	}
	if rec, inserted := mustPut(t, s, testAlert(northID, "a-2")); inserted || rec.Seq != 2 {
		t.Fatalf("re-sent a-2 after reopen: inserted=%v seq=%d", inserted, rec.Seq)
	}
	if rec, inserted := mustPut(t, s, testAlert(northID, "a-4")); !inserted || rec.Seq != 4 {
		t.Fatalf("new alert after reopen: inserted=%v seq=%d, want seq 4", inserted, rec.Seq)
	}
}

func TestStoreSinceOrderAndLimit(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	for i := 1; i <= 10; i++ {
		mustPut(t, s, testAlert(northID, fmt.Sprintf("a-%02d", i)))
	}
	seqs := func(recs []Record) []uint64 {
		out := []uint64{}
		for _, r := range recs {
			out = append(out, r.Seq)
		}
		return out
	}
	tests := []struct {
		since uint64
		limit int
		want  []uint64
	}{
		{0, 100, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{3, 4, []uint64{4, 5, 6, 7}},
		{8, 100, []uint64{9, 10}},
		{10, 5, []uint64{}},
		{0, 0, []uint64{}},
		{^uint64(0), 5, []uint64{}},
	}
	for _, tc := range tests {
		recs, err := s.Since(tc.since, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(recs); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Since(%d, %d) = %v, want %v", tc.since, tc.limit, got, tc.want)
		}
	}
}

func TestStoreSnapshotKeptApart(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	jpg := testJPEG(t)
	with := testAlert(northID, "with/pic 1")
	with.Snapshot = jpg
	with.SnapshotTime = with.Time.Add(-time.Second)
	rec, _ := mustPut(t, s, with)
	if rec.SnapshotURL != "/api/v1/alerts/with%2Fpic%201/snapshot.jpg" {
		t.Fatalf("SnapshotURL = %q", rec.SnapshotURL)
	}
	if !rec.SnapshotTime.Equal(with.SnapshotTime) || rec.SnapshotTime.Location() != time.UTC {
		t.Fatalf("SnapshotTime = %v", rec.SnapshotTime)
	}
	got, err := s.Snapshot("with/pic 1")
	if err != nil || !bytes.Equal(got, jpg) {
		t.Fatalf("Snapshot round trip: %d bytes, %v", len(got), err)
	}

	// The listed record carries no JPEG bytes.
	listed, err := s.Since(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(listed[0])
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["snapshot"]; ok || len(b) > 2048 {
		t.Fatalf("listed record holds the snapshot: %d bytes %s", len(b), b)
	}

	without, _ := mustPut(t, s, testAlert(northID, "no-pic"))
	if without.SnapshotURL != "" {
		t.Fatalf("SnapshotURL without snapshot = %q", without.SnapshotURL)
	}
	if _, err := s.Snapshot("no-pic"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Snapshot without one: %v, want ErrNotFound", err)
	}
}

// Edges put concurrently, and re-send; every alert must get exactly one
// sequence number and the numbers must have no gaps.
func TestStoreConcurrentPuts(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				a := testAlert(northID, fmt.Sprintf("a-%d", i*writers+w))
				for range 2 { // the second is a re-send
					if _, _, err := s.Put(a); err != nil {
						errs <- err
					}
				}
				// Another writer re-sends a neighbour's alert too.
				if _, _, err := s.Put(testAlert(northID, fmt.Sprintf("a-%d", i*writers))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs, err := s.Since(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || ids[r.ID] {
			t.Fatalf("record %d: seq %d id %s (dup=%v)", i, r.Seq, r.ID, ids[r.ID])
		}
		ids[r.ID] = true
	}
	if len(recs) != writers*each {
		t.Fatalf("%d records, want %d", len(recs), writers*each)
	}
}

// TestStorePerimeterFields: a perimeter alert's line and direction, dwell
// region and entry, and path are kept for the console, with the
// built-in priorities (a crossing 2, a loitering 3).
func TestStorePerimeterFields(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	a := testAlert(northID, "p-1")
	a.Kind, a.Line, a.Direction = wire.KindPerimeterCrossing, "east wall", "in"
	a.Path = []wire.Point{{X: 0.2, Y: 0.9}, {X: 0.3, Y: 0.7}}
	l := testAlert(northID, "p-2")
	l.Kind, l.Dwell, l.Since = wire.KindPerimeterLoiter, "gate apron", l.Time.Add(-20*time.Second)
	mustPut(t, s, a)
	mustPut(t, s, l)
	got, err := s.Get("p-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Line != "east wall" || got.Direction != "in" || len(got.Path) != 2 || got.Path[1] != a.Path[1] || got.Priority != 2 {
		t.Fatalf("crossing record %+v", got)
	}
	got, err = s.Get("p-2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Dwell != "gate apron" || !got.Since.Equal(l.Since) || got.Since.Location() != time.UTC || got.Priority != 3 {
		t.Fatalf("loiter record %+v", got)
	}
}
