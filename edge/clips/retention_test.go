package clips

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRetentionBytes records two cameras for 20 turnovers of their byte
// budgets and checks, after every minute of video, that each camera stays
// within its budget and that the disk use stays bounded: DropPrefix plus
// value-log GC really give the space back.
func TestRetentionBytes(t *testing.T) {
	clip := bursts(t)
	cfg := testConfig(t, t.TempDir())
	const budget = 2 << 20
	cfg.Default.MaxBytes = budget
	s := openStore(t, cfg)
	cams := []*Recorder{recorder(t, s, "north"), recorder(t, s, "south")}
	feeds := []*feed{newFeed(clip, epoch), newFeed(clip, epoch)}

	// Two budgets, a bucket each of slack, the value-log file being
	// written and Badger's LSM and memtable files.
	const diskBound = 2*budget + 2*(500<<10) + 5<<20
	var written, maxDisk int64
	end := epoch.Add(15 * time.Minute)
	for now := epoch.Add(time.Minute); !now.After(end); now = now.Add(time.Minute) {
		for i, r := range cams {
			record(t, r, feeds[i], now)
		}
		flush(t, s)
		st := s.Stats()
		for _, c := range st.Cameras {
			if c.Bytes > budget {
				t.Errorf("%v: %s holds %d bytes, budget %d", now.Sub(epoch), c.Camera, c.Bytes, budget)
			}
		}
		written = st.Bytes
		maxDisk = max(maxDisk, st.DiskUsed)
		if st.DiskUsed > diskBound {
			t.Errorf("%v: %d bytes on disk, bound %d", now.Sub(epoch), st.DiskUsed, diskBound)
		}
	}
	st := s.Stats()
	total := int64(0)
	for _, r := range cams {
		total += int64(testutil.ToFloat64(r.m.written))
	}
	t.Logf("recorded %d MiB in all, %d KiB kept, at most %d KiB on disk (bound %d KiB)", total>>20, written>>10, maxDisk>>10, diskBound>>10)
	if total < 10*2*budget {
		t.Fatalf("recorded only %d bytes: not enough turnovers", total)
	}
	// The budget holds this much of the clip; retention drops 10 s buckets.
	keep := time.Duration(float64(budget) / float64(clipBytes(clip)) * float64(clip.Duration))
	for _, c := range st.Cameras {
		if age := end.Sub(c.Oldest); age > keep+5*time.Second || age < keep-15*time.Second {
			t.Errorf("%s keeps %v of video, want about %v", c.Camera, age, keep)
		}
	}
	// What is kept is intact.
	path, _ := exportFile(t, s, "north", end.Add(-30*time.Second), end)
	if p := ffprobe(t, path); p.Frames != 300 {
		t.Errorf("last 30 s: %d frames, want 300", p.Frames)
	}
}

// TestRetentionAge keeps two minutes of video by age alone.
func TestRetentionAge(t *testing.T) {
	clk := &clock{t: epoch}
	cfg := testConfig(t, t.TempDir())
	cfg.Default.MaxAge = 2 * time.Minute
	cfg.Clock = clk.Now
	s := openStore(t, cfg)
	r := recorder(t, s, "gate")
	f := newFeed(bursts(t), epoch)
	end := epoch.Add(12 * time.Minute)
	for now := epoch.Add(30 * time.Second); !now.After(end); now = now.Add(30 * time.Second) {
		record(t, r, f, now)
		clk.Set(now)
		flush(t, s)
	}
	st := s.Stats()
	c := st.Cameras[0]
	// Whole 10 s buckets go once their newest chunk is older than MaxAge.
	if age := end.Sub(c.Oldest); age > 2*time.Minute+10*time.Second || age < 2*time.Minute-10*time.Second {
		t.Errorf("oldest video is %v old, want 2 min give or take a bucket", age)
	}
	if st.DiskUsed > 8<<20 {
		t.Errorf("%d bytes on disk for 2 min of 25 kB/s video", st.DiskUsed)
	}
	tl, err := s.Timeline("gate", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 1 || len(tl.Gaps) != 0 || !tl.Spans[0].Start.Equal(c.Oldest) {
		t.Errorf("timeline %+v, want one span from %v", tl, c.Oldest)
	}
}
