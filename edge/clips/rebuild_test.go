package clips

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests take the store apart between runs the way a disk, an
// operator or a crash would, and check that what it reopens is what it
// held: the index is deleted or garbled (rebuilt from the segments),
// segments are cut or overwritten by hand (repaired and reported), and
// the segments themselves play in ordinary players.

// rbLogBuffer collects a store's log, at Info and above, for assertions.
type rbLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  testing.TB
}

func (l *rbLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimSpace(string(p)))
	return l.b.Write(p)
}

func (l *rbLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func rbLogger(t testing.TB) (*slog.Logger, *rbLogBuffer) {
	buf := &rbLogBuffer{t: t}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})), buf
}

// rbNeedTools skips a test when a player it runs is not installed.
func rbNeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make test installs it): %v", tool, err)
		}
	}
}

// at is a time on the synthetic clock.
func rbAt(d time.Duration) time.Time { return epoch.Add(d) }

// rbCams are the cameras of the rebuild tests: north records
// without a break, south has a gap from 50 s to 80 s.
var rbCams = []string{"north", "south"}

// rbState is everything a store says about its video that must
// survive losing the index.
type rbState struct {
	spans   map[string][]Span
	pins    []Pin
	parts   map[string][]ExportInfo
	exports map[string]rbDigest
}

// rbDigest is one export: its info, frame count (ffprobe) and the
// SHA-256 of the whole file.
type rbDigest struct {
	info   ExportInfo
	frames int
	sha    string
}

// exportRange is what the rebuild tests export per camera: across
// south's gap and north's pin.
var rbFrom, rbTo = rbAt(30 * time.Second), rbAt(100 * time.Second)

func rbDigestExport(t *testing.T, s *Store, cam string, from, to time.Time) rbDigest {
	t.Helper()
	path, info := exportFile(t, s, cam, from, to)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return rbDigest{info: info, frames: ffprobe(t, path).Frames, sha: hex.EncodeToString(sum[:])}
}

func rbCapture(t *testing.T, s *Store) rbState {
	t.Helper()
	st := rbState{spans: map[string][]Span{}, parts: map[string][]ExportInfo{}, exports: map[string]rbDigest{}, pins: s.Pins()}
	for _, cam := range rbCams {
		tl, err := s.Timeline(cam, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		st.spans[cam] = tl.Spans
		parts, err := s.ExportParts(cam, rbFrom, rbTo)
		if err != nil {
			t.Fatal(err)
		}
		st.parts[cam] = parts
		st.exports[cam] = rbDigestExport(t, s, cam, rbFrom, rbTo)
	}
	return st
}

// rbRecord records north from 0 to 120 s, south from 0 to 50 s
// and 80 s to 120 s, and pins north at 60 s; it returns the feeds, to go
// on recording after a restart.
func rbRecord(t *testing.T, s *Store) map[string]*feed {
	clip := bursts(t)
	north, south := newFeed(clip, epoch), newFeed(clip, epoch)
	rn, rs := recorder(t, s, "north"), recorder(t, s, "south")
	record(t, rn, north, rbAt(60*time.Second))
	record(t, rs, south, rbAt(50*time.Second))
	if _, err := s.Pin("alert-1", "north", rbAt(60*time.Second), "motion"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PinRange("alert-2", "south", rbAt(40*time.Second), rbAt(45*time.Second), "line crossed"); err != nil {
		t.Fatal(err)
	}
	record(t, rn, north, rbAt(120*time.Second))
	south = newFeed(clip, rbAt(80*time.Second)) // the camera came back
	record(t, rs, south, rbAt(120*time.Second))
	flush(t, s)
	return map[string]*feed{"north": north, "south": south}
}

// rbCheckState holds a reopened store against what it held before.
func rbCheckState(t *testing.T, s *Store, want rbState) {
	t.Helper()
	got := rbCapture(t, s)
	for _, cam := range rbCams {
		w, g := want.spans[cam], got.spans[cam]
		if len(g) != len(w) {
			t.Errorf("%s: spans %+v, want %+v", cam, g, w)
			continue
		}
		for i := range w {
			if d := g[i].Start.Sub(w[i].Start).Abs(); d > time.Millisecond {
				t.Errorf("%s span %d starts at %v, want %v", cam, i, g[i].Start, w[i].Start)
			}
			if d := g[i].End.Sub(w[i].End).Abs(); d > time.Millisecond {
				t.Errorf("%s span %d ends at %v, want %v", cam, i, g[i].End, w[i].End)
			}
			if g[i].Bytes != w[i].Bytes {
				t.Errorf("%s span %d holds %d bytes, want %d", cam, i, g[i].Bytes, w[i].Bytes)
			}
		}
		if !reflect.DeepEqual(got.parts[cam], want.parts[cam]) {
			t.Errorf("%s: export parts %+v, want %+v", cam, got.parts[cam], want.parts[cam])
		}
		if got.exports[cam] != want.exports[cam] {
			t.Errorf("%s: export %+v, want %+v", cam, got.exports[cam], want.exports[cam])
		}
	}
	if !reflect.DeepEqual(got.pins, want.pins) {
		t.Errorf("pins %+v, want %+v", got.pins, want.pins)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// rbCheckLayout checks the recorded layout itself, so that a
// scenario that recorded nothing cannot pass.
func rbCheckLayout(t *testing.T, st rbState) {
	t.Helper()
	if n := st.spans["north"]; len(n) != 1 || !n[0].Start.Equal(epoch) || !n[0].End.Equal(rbAt(120*time.Second)) {
		t.Fatalf("north: %+v, want one span 0..120 s", n)
	}
	if s := st.spans["south"]; len(s) != 2 || !s[0].End.Equal(rbAt(50*time.Second)) || !s[1].Start.Equal(rbAt(80*time.Second)) {
		t.Fatalf("south: %+v, want a gap 50..80 s", s)
	}
	if len(st.pins) != 2 {
		t.Fatalf("pins %+v, want 2", st.pins)
	}
	if e := st.exports["north"]; e.frames != 700 || e.info.Frames != 700 {
		t.Fatalf("north export %+v, want 700 frames", e)
	}
	// South's export skips the gap: 30 s to 50 s and 80 s to 100 s.
	if e := st.exports["south"]; e.frames != 400 || e.info.Frames != 400 {
		t.Fatalf("south export %+v, want 400 frames", e)
	}
}

// rbContinue records another 30 s on both cameras and exports
// across the restart.
func rbContinue(t *testing.T, s *Store, feeds map[string]*feed) {
	t.Helper()
	for _, cam := range rbCams {
		record(t, recorder(t, s, cam), feeds[cam], rbAt(150*time.Second))
	}
	flush(t, s)
	for _, cam := range rbCams {
		tl, err := s.Timeline(cam, rbAt(100*time.Second), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(tl.Spans) != 1 || !tl.Spans[0].End.Equal(rbAt(150*time.Second)) || tl.Spans[0].Start.After(rbAt(100*time.Second)) {
			t.Errorf("%s after the rebuild: %+v, want one span through 150 s", cam, tl.Spans)
		}
		path, info := exportFile(t, s, cam, rbAt(110*time.Second), rbAt(130*time.Second))
		if p := ffprobe(t, path); p.Frames != 200 || info.Frames != 200 || !p.FirstKey || !info.Start.Equal(rbAt(110*time.Second)) {
			t.Errorf("%s: export across the restart: %+v, ffprobe %+v, want 200 frames from 110 s", cam, info, p)
		}
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check after recording on: %v", err)
	}
}

// TestIndexDeletedRebuilt deletes the index of a closed store: Open
// rebuilds it from the segments and the pins journal, with every span,
// pin and export as it was, and recording goes on.
func TestIndexDeletedRebuilt(t *testing.T) {
	rbNeedTools(t, "ffprobe")
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	feeds := rbRecord(t, s)
	want := rbCapture(t, s)
	rbCheckLayout(t, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.RemoveAll(filepath.Join(dir, indexDir)); err != nil {
		t.Fatal(err)
	}
	log, buf := rbLogger(t)
	cfg.Log, cfg.Registerer = log, nil
	s = openStore(t, cfg)
	rbCheckState(t, s, want)
	if !strings.Contains(buf.String(), "clip index reconciled with the segments") {
		t.Errorf("no reconcile logged after deleting the index:\n%s", buf)
	}
	rbContinue(t, s, feeds)

	// And the rebuilt index is a normal one: a clean restart keeps it all.
	s.Close()
	cfg.Registerer = nil
	s = openStore(t, cfg)
	if err := s.Check(); err != nil {
		t.Errorf("Check after a clean restart: %v", err)
	}
	for _, cam := range rbCams {
		if tl, err := s.Timeline(cam, rbAt(100*time.Second), time.Time{}); err != nil || len(tl.Spans) != 1 || !tl.Spans[0].End.Equal(rbAt(150*time.Second)) {
			t.Errorf("%s after a clean restart: %+v, %v", cam, tl.Spans, err)
		}
	}
}

// TestIndexCorruptRebuilt overwrites every file of a closed store's
// index with garbage: Open moves it aside (index.broken-*), rebuilds it,
// and everything is back.
func TestIndexCorruptRebuilt(t *testing.T) {
	rbNeedTools(t, "ffprobe")
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	feeds := rbRecord(t, s)
	want := rbCapture(t, s)
	rbCheckLayout(t, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	files, err := os.ReadDir(filepath.Join(dir, indexDir))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		path := filepath.Join(dir, indexDir, f.Name())
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, max(fi.Size(), 4096))
		rand.Read(junk)
		if err := os.WriteFile(path, junk, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("the index has no files to garble")
	}

	log, buf := rbLogger(t)
	cfg.Log, cfg.Registerer = log, nil
	s = openStore(t, cfg)
	broken, _ := filepath.Glob(filepath.Join(dir, indexDir+".broken-*"))
	if len(broken) != 1 {
		t.Errorf("index moved aside to %v, want one index.broken-*", broken)
	}
	if !strings.Contains(buf.String(), "CLIP INDEX UNREADABLE") {
		t.Errorf("the unreadable index was not reported:\n%s", buf)
	}
	rbCheckState(t, s, want)
	rbContinue(t, s, feeds)
}

// rbSegments lists a camera's segments in time order.
func rbSegments(t testing.TB, dir, cam string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, videoDir, camDir(cam), "*", "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func rbSegmentTime(t testing.TB, path string) time.Time {
	t.Helper()
	ns, ok := segmentStart(filepath.Base(path))
	if !ok {
		t.Fatalf("%s: not a segment's name", path)
	}
	return time.Unix(0, ns).UTC()
}

// rbMarkUnclean opens and closes a closed store's index without its clean
// mark, as a process killed with SIGKILL leaves it: the next Open
// reconciles.
func rbMarkUnclean(t testing.TB, cfg Config) {
	t.Helper()
	db, _, err := openIndex(cfg.Dir, cfg.Footprint, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// rbRecordFlushing records like record, with a Flush every step, so that
// every segment holds several fragments.
func rbRecordFlushing(t *testing.T, s *Store, r *Recorder, f *feed, until time.Time, step time.Duration) {
	t.Helper()
	for f.peek().Before(until) {
		record(t, r, f, f.peek().Add(step))
		flush(t, s)
	}
}

// rbFrames checks an export of a range: every frame from from (a
// keyframe) to to, decoded.
func rbFrames(t *testing.T, s *Store, cam string, from, to time.Time) {
	t.Helper()
	path, info := exportFile(t, s, cam, from, to)
	want := int(to.Sub(from) / (100 * time.Millisecond))
	if p := ffprobe(t, path); p.Frames != want || info.Frames != want || !info.Start.Equal(from) || !p.FirstKey {
		t.Errorf("%s %v..%v: %+v, ffprobe %+v, want %d frames", cam, from.Sub(epoch), to.Sub(epoch), info, p, want)
	}
}

// TestSegmentTruncatedByHand cuts one of north's segments in the middle
// of a fragment and writes garbage over the header of one of south's,
// then starts the store as after a crash: it opens, Check passes, the cut
// segment keeps its whole fragments (the timeline has a gap where the
// rest was), the rest exports intact, and the repair is logged loudly,
// naming the file. The garbled header is found when the index is
// rebuilt: that segment is set aside as *.damaged, reported, and south
// has a gap just there.
func TestSegmentTruncatedByHand(t *testing.T) {
	rbNeedTools(t, "ffprobe")
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	clip := bursts(t)
	for _, cam := range rbCams {
		rbRecordFlushing(t, s, recorder(t, s, cam), newFeed(clip, epoch), rbAt(60*time.Second), time.Second)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	end := rbAt(60 * time.Second)

	north, south := rbSegments(t, dir, "north"), rbSegments(t, dir, "south")
	if len(north) < 5 || len(south) < 5 {
		t.Fatalf("segments: %d north, %d south, want at least 5 each", len(north), len(south))
	}
	cut, garbled := north[len(north)/2], south[len(south)/2]
	cutStart, cutNext := rbSegmentTime(t, cut), rbSegmentTime(t, north[len(north)/2+1])
	garbledStart, garbledNext := rbSegmentTime(t, garbled), rbSegmentTime(t, south[len(south)/2+1])
	fi, err := os.Stat(cut)
	if err != nil {
		t.Fatal(err)
	}
	half := fi.Size() / 2
	if err := os.Truncate(cut, half); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(garbled, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 256)
	rand.Read(junk)
	if _, err := f.WriteAt(junk, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rbMarkUnclean(t, cfg)

	log, buf := rbLogger(t)
	cfg.Log, cfg.Registerer = log, nil
	s = openStore(t, cfg)
	if err := s.Check(); err != nil {
		t.Errorf("Check after the repair: %v", err)
	}
	if logged := buf.String(); !strings.Contains(logged, "REPAIRED") || !strings.Contains(logged, cut) {
		t.Errorf("the repair log does not say REPAIRED and name %s:\n%s", cut, logged)
	}

	// The cut segment keeps its complete fragments.
	fi, err = os.Stat(cut)
	if err != nil {
		t.Fatalf("the cut segment is gone: %v", err)
	}
	if fi.Size() > half || fi.Size() == 0 {
		t.Errorf("the cut segment holds %d bytes, want its whole fragments below %d", fi.Size(), half)
	}
	tl, err := s.Timeline("north", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 2 || !tl.Spans[0].Start.Equal(epoch) || !tl.Spans[1].Start.Equal(cutNext) || !tl.Spans[1].End.Equal(end) ||
		!tl.Spans[0].End.After(cutStart) || !tl.Spans[0].End.Before(cutNext) {
		t.Fatalf("north: %+v, want a gap from inside %v..%v to %v", tl.Spans, cutStart, cutNext, cutNext)
	}
	kept := tl.Spans[0].End
	rbFrames(t, s, "north", cutStart, kept) // what is left of the cut segment
	rbFrames(t, s, "north", epoch, cutStart)
	rbFrames(t, s, "north", cutNext, end)
	if p := ffprobe(t, cut); p.Frames != int(kept.Sub(cutStart)/(100*time.Millisecond)) {
		t.Errorf("the cut segment plays %d frames, want %v of them", p.Frames, kept.Sub(cutStart))
	}

	// With the index intact, the garbled header costs nothing: the
	// index knows where south's video is, and it is all there.
	rbFrames(t, s, "south", epoch, end)

	// Rebuilt from the segments, the garbled one cannot be read: it is
	// set aside and reported, and south has a gap just where it was.
	s.Close()
	if err := os.RemoveAll(filepath.Join(dir, indexDir)); err != nil {
		t.Fatal(err)
	}
	log, buf = rbLogger(t)
	cfg.Log, cfg.Registerer = log, nil
	s = openStore(t, cfg)
	if err := s.Check(); err != nil {
		t.Errorf("Check after the rebuild: %v", err)
	}
	if logged := buf.String(); !strings.Contains(logged, "REPAIRED") || !strings.Contains(logged, garbled) || strings.Contains(logged, cut) {
		t.Errorf("the rebuild's log does not say REPAIRED and name only %s:\n%s", garbled, logged)
	}
	if _, err := os.Stat(garbled + ".damaged"); err != nil {
		t.Errorf("the garbled segment was not set aside: %v", err)
	}
	if _, err := os.Stat(garbled); err == nil {
		t.Errorf("the garbled segment %s is still in place", garbled)
	}
	tl, err = s.Timeline("south", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 2 || !tl.Spans[0].End.Equal(garbledStart) || !tl.Spans[1].Start.Equal(garbledNext) {
		t.Fatalf("south: %+v, want a gap %v..%v", tl.Spans, garbledStart, garbledNext)
	}
	rbFrames(t, s, "south", epoch, garbledStart)
	rbFrames(t, s, "south", garbledNext, end)
	if tl, err := s.Timeline("north", time.Time{}, time.Time{}); err != nil || len(tl.Spans) != 2 || !tl.Spans[0].End.Equal(kept) {
		t.Errorf("north after the rebuild: %+v, %v, want it as repaired", tl.Spans, err)
	}
	rbFrames(t, s, "north", cutStart, kept)

	// Recording goes on, and the repaired store restarts clean.
	record(t, recorder(t, s, "north"), newFeed(clip, rbAt(70*time.Second)), rbAt(80*time.Second))
	flush(t, s)
	s.Close()
	log, buf = rbLogger(t)
	cfg.Log, cfg.Registerer = log, nil
	s = openStore(t, cfg)
	if err := s.Check(); err != nil {
		t.Errorf("Check after a clean restart: %v", err)
	}
	if strings.Contains(buf.String(), "REPAIRED") {
		t.Errorf("a clean restart after the repair repaired again:\n%s", buf)
	}
	rbFrames(t, s, "north", rbAt(70*time.Second), rbAt(80*time.Second))
}

// rbPlayersAccept runs ffmpeg and gst-discoverer on a segment as it is.
func rbPlayersAccept(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("%s: ffmpeg: %v: %s", path, err, out)
	}
	if out, err := exec.Command("gst-discoverer-1.0", path).CombinedOutput(); err != nil {
		t.Errorf("%s: gst-discoverer-1.0: %v: %s", path, err, out)
	}
}

// TestSegmentsPlayDirectly records a camera that changes picture size
// midway and plays every segment file, the one still being written
// included, with ffmpeg and GStreamer: each decodes without a word, at
// the size of its side of the change, and a new segment starts at the
// change.
func TestSegmentsPlayDirectly(t *testing.T) {
	rbNeedTools(t, "ffmpeg", "ffprobe", "gst-discoverer-1.0")
	for _, tc := range []struct {
		name  string
		h265  bool
		codec string
	}{{"h264", false, "h264"}, {"h265", true, "hevc"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			first, second := changeClip(t, 640, 360, tc.h265), changeClip(t, 320, 240, tc.h265)
			dir := t.TempDir()
			s := openStore(t, testConfig(t, dir))
			r := recorder(t, s, "gate")
			play(t, r, first, 0, epoch)
			flush(t, s)
			// The first segment of the second size is still open:
			// the writer goes on appending to it.
			open := rbSegments(t, dir, "gate")
			if len(open) == 0 {
				t.Fatal("no segments")
			}
			rbPlayersAccept(t, open[len(open)-1])
			play(t, r, second, 10*time.Second, rbAt(10*time.Second))
			flush(t, s)

			files := rbSegments(t, dir, "gate")
			if len(files) < 4 {
				t.Fatalf("%d segments, want at least 4: %v", len(files), files)
			}
			change := false
			var wg sync.WaitGroup
			for _, f := range files {
				start := rbSegmentTime(t, f)
				change = change || start.Equal(rbAt(10*time.Second))
				w, h := 640, 360
				if !start.Before(rbAt(10 * time.Second)) {
					w, h = 320, 240
				}
				wg.Add(1)
				go func() { // the players take a while to start
					defer wg.Done()
					rbPlayersAccept(t, f)
				}()
				p := ffprobe(t, f)
				if p.Codec != tc.codec || p.Width != w || p.Height != h || !p.FirstKey || p.Frames == 0 {
					t.Errorf("%s: ffprobe %+v, want %s %dx%d starting with a keyframe", filepath.Base(f), p, tc.codec, w, h)
				}
			}
			wg.Wait()
			if !change {
				t.Errorf("no segment starts at the change: %v", files)
			}
			// The last segment is still being written: players take it
			// as it is after a Flush, and it holds every frame so far.
			last := files[len(files)-1]
			if p := ffprobe(t, last); p.Frames != int(rbAt(20*time.Second).Sub(rbSegmentTime(t, last))/(100*time.Millisecond)) {
				t.Errorf("the open segment %s: %d frames, want all from %v to 20 s", filepath.Base(last), p.Frames, rbSegmentTime(t, last))
			}

			parts, err := s.ExportParts("gate", rbAt(5*time.Second), rbAt(15*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != 2 || parts[0].Width != 640 || parts[0].Height != 360 || parts[1].Width != 320 || parts[1].Height != 240 ||
				parts[0].Frames != 60 || parts[1].Frames != 50 || !parts[0].Next.Equal(rbAt(10*time.Second)) {
				t.Errorf("export parts %+v, want 60 frames at 640x360 and 50 at 320x240", parts)
			}
			for i, from := range []time.Time{rbAt(5 * time.Second), rbAt(10 * time.Second)} {
				path, _ := exportFile(t, s, "gate", from, rbAt(15*time.Second))
				if p := ffprobe(t, path); p.Frames != parts[i].Frames || p.Width != parts[i].Width || p.Codec != tc.codec {
					t.Errorf("part %d: ffprobe %+v, want %+v", i, p, parts[i])
				}
			}
		})
	}
}

// TestPinsJournal: pins made and released survive a restart and the
// index's deletion; a torn last line in pins.jsonl (a crash while
// appending) is skipped with a warning, the other pins load, and later
// pins are not glued onto it.
func TestPinsJournal(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	record(t, recorder(t, s, "gate"), newFeed(bursts(t), epoch), rbAt(60*time.Second))
	flush(t, s)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Pin(id, "gate", rbAt(30*time.Second), "test "+id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PinRange("c", "gate", rbAt(10*time.Second), rbAt(20*time.Second), "replaced"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin("b"); err != nil {
		t.Fatal(err)
	}
	want := s.Pins()
	ids := map[string]Pin{}
	for _, p := range want {
		ids[p.ID] = p
	}
	if len(want) != 2 || ids["a"].ID != "a" || !ids["c"].From.Equal(rbAt(10*time.Second)) || ids["c"].Reason != "replaced" {
		t.Fatalf("pins %+v, want a and the replaced c", want)
	}
	reopen := func(what string) *rbLogBuffer {
		t.Helper()
		s.Close()
		log, buf := rbLogger(t)
		cfg.Log, cfg.Registerer = log, nil
		s = openStore(t, cfg)
		return buf
	}
	reopen("restart")
	if got := s.Pins(); !reflect.DeepEqual(got, want) {
		t.Fatalf("pins after a restart %+v, want %+v", got, want)
	}
	s.Close()
	if err := os.RemoveAll(filepath.Join(dir, indexDir)); err != nil {
		t.Fatal(err)
	}
	reopen("index deleted")
	if got := s.Pins(); !reflect.DeepEqual(got, want) {
		t.Fatalf("pins after the index was deleted %+v, want %+v", got, want)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}

	// A torn last line: half of a pin's line, no newline.
	s.Close()
	line, err := json.Marshal(journalLine{Op: "pin", Pin: &Pin{ID: "torn", Camera: "gate", From: epoch, To: rbAt(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	jf, err := os.OpenFile(filepath.Join(dir, pinsJournal), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jf.Write(line[:len(line)/2]); err != nil {
		t.Fatal(err)
	}
	jf.Close()
	buf := reopen("torn line")
	if got := s.Pins(); !reflect.DeepEqual(got, want) {
		t.Fatalf("pins after a torn line %+v, want %+v", got, want)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "pins journal") {
		t.Errorf("the torn line was not warned about:\n%s", buf)
	}
	// A pin made now is not glued onto the torn line.
	if _, err := s.Pin("d", "gate", rbAt(50*time.Second), "after the tear"); err != nil {
		t.Fatal(err)
	}
	want = s.Pins()
	buf = reopen("after the tear")
	if got := s.Pins(); !reflect.DeepEqual(got, want) || len(got) != 3 {
		t.Fatalf("pins after a pin made past a torn line %+v, want %+v", got, want)
	}
	if strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("the journal still warns after it was compacted:\n%s", buf)
	}
	b, err := os.ReadFile(filepath.Join(dir, pinsJournal))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(lines) != 3 || bytes.Contains(b, []byte("torn")) {
		t.Errorf("the journal after compaction:\n%s\nwant one line per pin", b)
	}
}
