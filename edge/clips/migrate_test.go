package clips

import (
	"github.com/vigil-perimeter/vigil/internal/atomicfile"

	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The v1 fixture (testdata/v1gen/README.md): a store written by the v1
// code, and what that code reported about it.

type upV1FixtureCamera struct {
	Camera        string       `json:"camera"`
	Codec         string       `json:"codec"`
	FramesWritten int          `json:"frames_written"`
	Timeline      Timeline     `json:"timeline"`
	Export        []ExportInfo `json:"export"`
}

type upV1FixtureFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type upV1Fixture struct {
	Cameras   []upV1FixtureCamera `json:"cameras"`
	Pins      []Pin               `json:"pins"`
	PinExport []ExportInfo        `json:"pin_export"`
	Files     []upV1FixtureFile   `json:"files"`
}

func upLoadV1Fixture(t testing.TB) upV1Fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1store.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx upV1Fixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatalf("v1store.json: %v", err)
	}
	if len(fx.Cameras) != 2 || len(fx.Pins) != 1 {
		t.Fatalf("v1store.json: %d cameras, %d pins; want 2 and 1", len(fx.Cameras), len(fx.Pins))
	}
	return fx
}

// upExtractV1 unpacks testdata/v1store.tar.gz into a temporary directory
// and returns the store's directory.
func upExtractV1(t testing.TB) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "v1store.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("v1store.tar.gz: %v", err)
		}
		path := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, root+string(filepath.Separator)) {
			t.Fatalf("v1store.tar.gz: bad name %q", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg, tar.TypeGNUSparse: // the reader expands a sparse file's holes
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode)&0o777|0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("v1store.tar.gz: %q: unexpected type %c", h.Name, h.Typeflag)
		}
	}
	dir := filepath.Join(root, "v1store")
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		t.Fatalf("extracted v1 store: %v", err)
	}
	return dir
}

// upLogBook is a logger that keeps what it logs (info and above), and
// passes it to t.Log.
type upLogBook struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *upLogBook) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *upLogBook) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *upLogBook) reset() {
	b.mu.Lock()
	b.buf.Reset()
	b.mu.Unlock()
}

func upUpgradeConfig(t *testing.T, dir string) (Config, *upLogBook) {
	cfg := testConfig(t, dir)
	book := &upLogBook{}
	cfg.Log = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, book), &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg, book
}

// upV1FilesIn lists the v1 Badger files (and the upgrade marker) left in dir.
func upV1FilesIn(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && isV1File(e.Name()) {
			out = append(out, e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, videoDir, v1Done)); err == nil {
		out = append(out, filepath.Join(videoDir, v1Done))
	}
	return out
}

// upSegmentFiles lists camera's segment files.
func upSegmentFiles(t testing.TB, dir, camera string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, videoDir, camDir(camera))
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("segments of %s: %v", camera, err)
	}
	sort.Strings(out)
	return out
}

// upSameInstant: within 1 ms.
func upSameInstant(a, b time.Time) bool {
	d := a.Sub(b)
	return d < time.Millisecond && d > -time.Millisecond
}

func upCheckPins(t testing.TB, s *Store, want []Pin) {
	t.Helper()
	got := s.Pins()
	if len(got) != len(want) {
		t.Fatalf("Pins: %d, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Camera != w.Camera || g.Reason != w.Reason || !g.From.Equal(w.From) || !g.To.Equal(w.To) ||
			!g.Created.Equal(w.Created) || !g.Expires.Equal(w.Expires) {
			t.Errorf("pin %d = %+v, want %+v", i, g, w)
		}
	}
}

func upCheckExportInfo(t testing.TB, what string, got, want ExportInfo) {
	t.Helper()
	if got.Camera != want.Camera || got.Codec != want.Codec || got.Width != want.Width || got.Height != want.Height ||
		got.Frames != want.Frames || got.Bytes != want.Bytes || got.Span != want.Span ||
		!upSameInstant(got.Start, want.Start) || !upSameInstant(got.End, want.End) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func upCheckExportParts(t testing.TB, s *Store, what, camera string, from, to time.Time, want []ExportInfo) {
	t.Helper()
	got, err := s.ExportParts(camera, from, to)
	if err != nil {
		t.Fatalf("ExportParts %s: %v", what, err)
	}
	if len(got) != len(want) {
		t.Fatalf("ExportParts %s: %d parts, want %d: %+v", what, len(got), len(want), got)
	}
	for i := range want {
		upCheckExportInfo(t, what, got[i], want[i])
	}
}

// upCheckSpans compares a timeline's spans with v1's: the same times
// (±1 ms), and bytes within 3 % (a segment adds its MP4 framing).
func upCheckSpans(t testing.TB, camera string, got, want []Span) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d spans %+v, want %d %+v", camera, len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		if !upSameInstant(g.Start, w.Start) || !upSameInstant(g.End, w.End) {
			t.Errorf("%s span %d: %v..%v, want %v..%v", camera, i, g.Start, g.End, w.Start, w.End)
		}
		d := float64(g.Bytes-w.Bytes) / float64(w.Bytes)
		t.Logf("%s span %d: %d bytes, v1 %d (%+.2f%%)", camera, i, g.Bytes, w.Bytes, 100*d)
		if d < -0.03 || d > 0.03 {
			t.Errorf("%s span %d: %d bytes, v1 had %d (%+.1f%%)", camera, i, g.Bytes, w.Bytes, 100*d)
		}
	}
}

// upCheckUpgraded asserts that dir holds an upgraded copy of the fixture:
// no v1 file left, segments that play, and the same video and pins as
// v1 reported. extra (camera: spans) are spans recorded after the v1
// ones, expected at the end of the camera's timeline.
func upCheckUpgraded(t *testing.T, s *Store, dir string, fx upV1Fixture, extra map[string][]Span) {
	t.Helper()
	if left := upV1FilesIn(t, dir); len(left) > 0 {
		t.Errorf("v1 files left after the upgrade: %v", left)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	upCheckPins(t, s, fx.Pins)
	for _, c := range fx.Cameras {
		segs := upSegmentFiles(t, dir, c.Camera)
		if len(segs) == 0 {
			t.Errorf("%s: no segments under %s", c.Camera, filepath.Join(dir, videoDir))
		}
		tl, err := s.Timeline(c.Camera, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("Timeline %s: %v", c.Camera, err)
		}
		upCheckSpans(t, c.Camera, tl.Spans, append(append([]Span{}, c.Timeline.Spans...), extra[c.Camera]...))
		spans := c.Timeline.Spans
		from, to := spans[0].Start, spans[len(spans)-1].End
		upCheckExportParts(t, s, c.Camera+" full range", c.Camera, from, to, c.Export)
		path, info := exportFile(t, s, c.Camera, from, to)
		if info.Frames != c.FramesWritten {
			t.Errorf("%s: export of %d frames, want %d", c.Camera, info.Frames, c.FramesWritten)
		}
		if p := ffprobe(t, path); p.Frames != c.FramesWritten || p.Width != 640 || p.Height != 480 || !p.FirstKey {
			t.Errorf("%s: ffprobe of the export: %+v, want %d frames 640×480 starting with a keyframe", c.Camera, p, c.FramesWritten)
		}
	}
	for _, p := range fx.Pins {
		upCheckExportParts(t, s, "pin "+p.ID, p.Camera, p.From, p.To, fx.PinExport)
	}
}

// upCheckSegmentsPlay decodes every segment file with ffmpeg.
func upCheckSegmentsPlay(t *testing.T, dir string, cameras ...string) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, cam := range cameras {
		for _, f := range upSegmentFiles(t, dir, cam) {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				out, err := exec.Command("ffmpeg", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput()
				if err != nil || len(out) > 0 {
					t.Errorf("ffmpeg %s: %v: %s", f, err, out)
				}
			}()
		}
	}
	wg.Wait()
}

// upRecordMore writes d of bursts to gate-north from at, flushes, exports
// it and returns its span.
func upRecordMore(t *testing.T, s *Store, at time.Time, d time.Duration) Span {
	t.Helper()
	r := recorder(t, s, "gate-north")
	f := newFeed(bursts(t), at)
	n := record(t, r, f, at.Add(d))
	flush(t, s)
	path, info := exportFile(t, s, "gate-north", at, at.Add(d))
	if info.Frames != n {
		t.Errorf("export after the upgrade: %d frames, %d written", info.Frames, n)
	}
	if p := ffprobe(t, path); p.Frames != n {
		t.Errorf("ffprobe of the export after the upgrade: %+v, want %d frames", p, n)
	}
	return Span{Start: info.Start, End: info.End, Bytes: info.Bytes}
}

func upRequireFFmpeg(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: make test installs it", tool)
		}
	}
}

// TestUpgradeV1 opens the v1 fixture: it is upgraded in place, holds
// what v1 reported, records on, and reopens cleanly.
func TestUpgradeV1(t *testing.T) {
	upRequireFFmpeg(t)
	fx := upLoadV1Fixture(t)
	dir := upExtractV1(t)
	cfg, book := upUpgradeConfig(t, dir)

	start := time.Now()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Logf("Open with the upgrade: %v", time.Since(start))
	logs := book.String()
	if !strings.Contains(logs, "clip store upgraded") {
		t.Errorf("no upgrade logged:\n%s", logs)
	}
	if strings.Contains(logs, "UPGRADE FAILED") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("errors logged by the upgrade:\n%s", logs)
	}
	upCheckUpgraded(t, s, dir, fx, nil)
	upCheckSegmentsPlay(t, dir, "gate-north", "yard")
	if _, err := os.Stat(filepath.Join(dir, condFileName)); err != nil {
		t.Errorf("conditions file: %v", err)
	}

	// Recording goes on after the upgrade.
	more := upRecordMore(t, s, epoch.Add(3*time.Minute), 6*time.Second)
	extra := map[string][]Span{"gate-north": {more}}
	upCheckUpgraded(t, s, dir, fx, extra)
	before := map[string]Timeline{}
	for _, c := range fx.Cameras {
		before[c.Camera], _ = s.Timeline(c.Camera, time.Time{}, time.Time{})
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reopened: a clean start, nothing to upgrade or reconcile, nothing changed.
	book.reset()
	s = openStore(t, cfg)
	logs = book.String()
	for _, bad := range []string{"upgrade", "reconciled", "REPAIRED", "level=ERROR", "level=WARN"} {
		if strings.Contains(logs, bad) {
			t.Errorf("reopen logged %q:\n%s", bad, logs)
		}
	}
	upCheckUpgraded(t, s, dir, fx, extra)
	for _, c := range fx.Cameras {
		tl, err := s.Timeline(c.Camera, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(tl); string(b) != upMustJSON(t, before[c.Camera]) {
			t.Errorf("%s: timeline changed by a reopen:\n got %s\nwant %s", c.Camera, b, upMustJSON(t, before[c.Camera]))
		}
	}
	upCheckSegmentsPlay(t, dir, "gate-north")
}

func upMustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUpgradeV1Interrupted interrupts the upgrade: during the copy (the
// store opens without the old video and the next Open finishes), and
// after the marker, with some v1 files deleted (the next Open deletes
// the rest).
func TestUpgradeV1Interrupted(t *testing.T) {
	upRequireFFmpeg(t)
	fx := upLoadV1Fixture(t)

	t.Run("copy", func(t *testing.T) {
		dir := upExtractV1(t)
		cfg, book := upUpgradeConfig(t, dir)
		errStop := errors.New("interrupted by the test")
		v1CopyHook = func(copied int) error {
			if copied == 1 {
				return errStop
			}
			return nil
		}
		s, err := Open(cfg)
		v1CopyHook = nil
		if err != nil {
			t.Fatalf("Open with the upgrade interrupted: %v", err)
		}
		if logs := book.String(); !strings.Contains(logs, "UPGRADE FAILED") || !strings.Contains(logs, errStop.Error()) {
			t.Errorf("the failed upgrade was not logged:\n%s", logs)
		}
		for _, f := range fx.Files {
			if _, err := os.Stat(filepath.Join(dir, f.Name)); err != nil {
				t.Errorf("v1 file after an interrupted upgrade: %v", err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, videoDir, v1Done)); err == nil {
			t.Errorf("upgrade marker written by an interrupted copy")
		}
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		upCheckPins(t, s, fx.Pins) // the journal is written before the copy
		// The store works: it records and exports.
		more := upRecordMore(t, s, epoch.Add(3*time.Minute), 6*time.Second)
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		book.reset()
		s = openStore(t, cfg)
		if logs := book.String(); !strings.Contains(logs, "clip store upgraded") || strings.Contains(logs, "level=ERROR") {
			t.Errorf("resumed upgrade:\n%s", logs)
		}
		upCheckUpgraded(t, s, dir, fx, map[string][]Span{"gate-north": {more}})
		upCheckSegmentsPlay(t, dir, "gate-north", "yard")
	})

	t.Run("removal", func(t *testing.T) {
		dir := upExtractV1(t)
		cfg, book := upUpgradeConfig(t, dir)
		// The copy completed and the marker was written (migrateV1's
		// first half), then removeV1 was cut short: some v1 files gone,
		// MANIFEST and the others still there.
		n, err := copyV1(cfg.withDefaults(), cfg.Log)
		if err != nil || n == 0 {
			t.Fatalf("copyV1: %d chunks, %v", n, err)
		}
		done := filepath.Join(dir, videoDir, v1Done)
		if err := atomicfile.Write(done, []byte("test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"000001.vlog", "DISCARD"} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		book.reset()
		s := openStore(t, cfg)
		if logs := book.String(); strings.Contains(logs, "clip store upgraded") || strings.Contains(logs, "level=ERROR") {
			t.Errorf("finishing the removal copied again or failed:\n%s", logs)
		}
		upCheckUpgraded(t, s, dir, fx, nil)
		upCheckSegmentsPlay(t, dir, "gate-north", "yard")
	})
}

// TestUpgradeV1LowDisk would fill the disk below the floor during the
// copy; the store measures free space with kv.FreeBytes, which a test
// cannot fake.
func TestUpgradeV1LowDisk(t *testing.T) {
	fx := upLoadV1Fixture(t)
	fs := mountTmpfs(t, "40m")
	dir := filepath.Join(fs, "clips")
	if out, err := exec.Command("cp", "-a", upExtractV1(t), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	free, err := freeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, book := upUpgradeConfig(t, dir)
	// Room above the floor for about 1.5 MB of the 3.6 MB of v1 video.
	cfg.MinFreeBytes = free - 1500<<10
	s := openStore(t, cfg)
	if !strings.Contains(book.String(), "no room above the disk floor") {
		t.Fatalf("no loud word about the video left behind:\n%s", book.String())
	}
	if left := upV1FilesIn(t, dir); len(left) != 0 {
		t.Errorf("v1 files left: %v", left)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// The pinned evidence was copied first, whole.
	upCheckPins(t, s, fx.Pins)
	p := fx.Pins[0]
	upCheckExportParts(t, s, "pinned range", p.Camera, p.From, p.To, fx.PinExport)
	// And then the newest video: gate-north's last span is there, its
	// oldest video is not.
	tl, err := s.Timeline("gate-north", time.Time{}, time.Time{})
	if err != nil || len(tl.Spans) == 0 {
		t.Fatalf("gate-north: %+v, %v", tl, err)
	}
	want := fx.Cameras[0].Timeline.Spans
	if last := tl.Spans[len(tl.Spans)-1]; !upSameInstant(last.End, want[len(want)-1].End) {
		t.Errorf("gate-north's newest video ends %v, v1 had it to %v", last.End, want[len(want)-1].End)
	}
	if first := tl.Spans[0]; !first.Start.After(want[0].Start) && first.End.Sub(first.Start) >= want[0].End.Sub(want[0].Start) {
		t.Errorf("gate-north's oldest span was copied whole on a disk without room for it: %+v", tl.Spans)
	}
}

// TestUpgradeV1Empty upgrades a v1 store that holds no video (a v1
// Badger with nothing in it): nothing to copy, the v1 files still go.
func TestUpgradeV1Empty(t *testing.T) {
	dir := t.TempDir()
	cfg, book := upUpgradeConfig(t, dir)
	db, err := badger.Open(badgerOptions(dir, cfg.Footprint.withDefaults(), cfg.Log))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, cfg)
	if logs := book.String(); strings.Contains(logs, "UPGRADE FAILED") {
		t.Errorf("upgrading an empty v1 store failed:\n%s", logs)
	}
	if left := upV1FilesIn(t, dir); len(left) > 0 {
		t.Errorf("v1 files left after the upgrade: %v", left)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}
