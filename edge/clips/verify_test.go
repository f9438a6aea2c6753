package clips

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// storeSegments lists a store's segments, oldest first per camera.
func storeSegments(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, videoDir), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, segExt) {
			out = append(out, path)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// TestVerify: a stopped store verifies clean, with its spans and gaps;
// a segment deleted, one cut by hand and one the index does not know
// are each reported, and nothing is changed.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, testConfig(t, dir))
	f := newFeed(bursts(t), epoch)
	record(t, recorder(t, s, "north"), f, epoch.Add(40*time.Second))
	// A 20 s outage: the feed resumes later with a new session.
	f2 := newFeed(bursts(t), epoch.Add(60*time.Second))
	record(t, recorder(t, s, "north"), f2, epoch.Add(100*time.Second))
	flush(t, s)
	want, err := s.Timeline("north", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	rep, err := Verify(dir, quietLogger(t))
	if err != nil || !rep.OK() || rep.Index != "ok" {
		t.Fatalf("clean store: %+v, %v", rep, err)
	}
	if len(rep.Cameras) != 1 || len(rep.Cameras[0].Gaps) != len(want.Gaps) || len(want.Gaps) != 1 {
		t.Fatalf("cameras %+v, want the timeline's gaps %+v", rep.Cameras, want.Gaps)
	}
	c := rep.Cameras[0]
	if d := c.Gaps[0].Start.Sub(want.Gaps[0].Start).Abs(); d > time.Millisecond {
		t.Errorf("gap %+v, the timeline's %+v", c.Gaps[0], want.Gaps[0])
	}
	if !c.First.Equal(want.Spans[0].Start) || c.Last.Sub(want.Spans[1].End).Abs() > time.Millisecond {
		t.Errorf("video %v..%v, the timeline's %v..%v", c.First, c.Last, want.Spans[0].Start, want.Spans[1].End)
	}

	segs := storeSegments(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	// Damage three: delete one, cut one mid-fragment, and plant one the
	// index does not know (a copy under a later name, its header fixed).
	if err := os.Remove(segs[0]); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(segs[1])
	if err := os.Truncate(segs[1], fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	orphan := plantSegment(t, dir, segs[2], epoch.Add(time.Hour))

	before := treeSizes(t, dir)
	rep, err = Verify(dir, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Missing) != 1 || len(rep.Damaged) != 1 || !strings.Contains(rep.Damaged[0], filepath.Base(segs[1])) ||
		len(rep.Orphans) != 1 || rep.Orphans[0] != orphan {
		t.Fatalf("damaged store: missing %v, damaged %v, orphans %v", rep.Missing, rep.Damaged, rep.Orphans)
	}
	if after := treeSizes(t, dir); !maps2Equal(before, after) {
		t.Error("Verify changed the store")
	}
}

// plantSegment copies a segment to another start time, as a segment
// the index never saw.
func plantSegment(t testing.TB, dir, src string, start time.Time) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	h, hl, _, _, _, err := scanSegment(bytesReaderAt(b), int64(len(b)), 0)
	if err != nil {
		t.Fatal(err)
	}
	h.Start = start.UnixNano()
	hdr, err := encodeSegmentHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	cam, _ := cameraOfDir(filepath.Base(filepath.Dir(filepath.Dir(src))))
	dst := segmentPath(dir, cam, h.Start)
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if err := os.WriteFile(dst, append(hdr, b[hl:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, os.ErrClosed
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, os.ErrClosed
	}
	return n, nil
}

func treeSizes(t testing.TB, dir string) map[string]int64 {
	out := map[string]int64{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				out[path] = fi.Size()
			}
		}
		return nil
	})
	return out
}

func maps2Equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestExportOfCutSegmentFailsCleanly: a segment cut by hand after a
// clean stop (no repair at start) fails the export that needs it with
// ErrDamaged before a byte is written; the rest exports as before.
func TestExportOfCutSegmentFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, testConfig(t, dir))
	record(t, recorder(t, s, "north"), newFeed(bursts(t), epoch), epoch.Add(30*time.Second))
	flush(t, s)
	s.Close()
	segs := storeSegments(t, dir)
	fi, _ := os.Stat(segs[2])
	os.Truncate(segs[2], fi.Size()/2)
	cut, _ := segmentStart(filepath.Base(segs[2]))
	next, _ := segmentStart(filepath.Base(segs[3]))

	s = openStore(t, testConfig(t, dir))
	_, n, err := exportOrErr(s, "north", time.Unix(0, cut), time.Unix(0, next))
	if !errors.Is(err, ErrDamaged) || n != 0 {
		t.Fatalf("export of the cut segment: %d bytes, %v; want ErrDamaged before any byte", n, err)
	}
	if _, err := s.Thumbnail("north", time.Unix(0, cut).Add(time.Second), 0); !errors.Is(err, ErrDamaged) {
		t.Errorf("thumbnail in the cut segment: %v", err)
	}
	if _, _, err := exportOrErr(s, "north", time.Unix(0, next), epoch.Add(30*time.Second)); err != nil {
		t.Errorf("export after the cut segment: %v", err)
	}
	if _, _, err := exportOrErr(s, "north", epoch, time.Unix(0, cut)); err != nil {
		t.Errorf("export before the cut segment: %v", err)
	}
}
