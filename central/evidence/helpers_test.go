package evidence

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/contactsheet"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// epoch is the wall clock of the first recorded frame.
var epoch = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// exported is one camera's MP4 as the edge's clip store exports it.
type exported struct {
	path  string
	info  clips.ExportInfo
	req   Range
	sheet string // its contact sheet, as the edge makes it (withSheet)
}

// withSheet makes e's contact sheet as an edge answers
// wire.MethodContactSheet (small, for speed) and keeps it beside the MP4.
func withSheet(t testing.TB, e exported, camera string) exported {
	t.Helper()
	title := SheetTitle("Lotus village north", "North gate", camera, Range{Start: e.info.Start, End: e.info.End})
	jpg, err := contactsheet.Make(e.path, e.info.Start, title, contactsheet.Options{Columns: 3, Rows: 2, TileWidth: 160})
	if err != nil {
		t.Fatal(err)
	}
	e.sheet = strings.TrimSuffix(e.path, ".mp4") + ".jpg"
	if err := os.WriteFile(e.sheet, jpg, 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// recordAndExport records clip into a real clip store as a camera would
// deliver it (wall clock from epoch) and exports [from, to) as MP4: the
// same bytes an edge sends for a retrieval.
func recordAndExport(t testing.TB, clip *sim.Clip, camera string, from, to time.Duration) exported {
	t.Helper()
	dir := t.TempDir()
	fp := clips.Footprint{MemTableSize: 1 << 20, BlockCacheSize: 1 << 20, IndexCacheSize: 1 << 20, ValueLogFileSize: 1 << 20}
	s, err := clips.Open(clips.Config{Dir: filepath.Join(dir, "store"), Footprint: fp, MinFreeBytes: fp.Reserve(),
		BucketDuration: 10 * time.Second, FlushInterval: 100 * time.Millisecond, Registerer: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Recorder(camera)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range clip.Packets {
		if p.PTS > to+4*time.Second {
			break
		}
		n := 0
		for _, nalu := range p.AU {
			n += 4 + len(nalu)
		}
		for r.Pending() > 1<<20 {
			time.Sleep(time.Millisecond)
		}
		r.Write(streams.AccessUnit{Codec: clip.Info.Codec, NALUs: p.AU, PTS: p.PTS, Time: epoch.Add(p.PTS),
			TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: n})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, safeName(camera)+".mp4")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := Range{Start: epoch.Add(from), End: epoch.Add(to)}
	info, err := s.Export(ctx, f, camera, req.Start, req.End)
	if err != nil {
		t.Fatal(err)
	}
	return withSheet(t, exported{path: out, info: info, req: req}, camera)
}

var (
	h264Clip = func(t testing.TB) *sim.Clip { c, _ := testrig.BurstsClip(t); return c }
	h265Clip = func(t testing.TB) *sim.Clip {
		spec := footage.DefaultBursts()
		spec.H265 = true
		return testrig.Clip(t, spec)
	}
)

// custodyExport makes an audit log with a few entries and exports it.
func custodyExport(t testing.TB) []byte {
	t.Helper()
	l, err := audit.OpenDir(t.TempDir(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	liaison := audit.Actor{User: "li.wei", Role: "police_liaison"}
	for _, e := range []audit.Entry{
		{Actor: liaison, Action: audit.ActionLogin},
		{Actor: liaison, Action: audit.ActionSearch, Target: "lotus/north/wall/north-gate", Details: json.RawMessage(`{"from":"2026-11-22T03:00:00Z","to":"2026-11-22T03:10:00Z"}`)},
		{Actor: liaison, Action: audit.ActionView, Target: "alert-1"},
		{Actor: liaison, Action: audit.ActionExport, Target: "bundle-1", Details: json.RawMessage(`{"case":"2026-XA-0117"}`)},
	} {
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	if _, err := l.Export(ctx, &b, 2, 0); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

func testCamera(e exported, id, name string) Camera {
	return Camera{
		SiteID: "lotus/north", SiteName: "Lotus village north", EntranceID: "lotus/north/wall/north-gate", EntranceName: "North gate",
		CameraID: id, CameraName: name, EdgeID: "edge-north-1",
		Requested: e.req, Actual: Range{Start: e.info.Start, End: e.info.End},
		ClockOffset: 12 * time.Millisecond, ClockSource: ClockRTCP, VideoPath: e.path, ContactSheetPath: e.sheet,
		Alerts:     []json.RawMessage{json.RawMessage(`{"id":"alert-1","kind":"intrusion","history":[{"state":"acknowledged","by":"guard1"}]}`)},
		GateEvents: []json.RawMessage{json.RawMessage(`{"gate":"north-gate","event":"forced","time":"2026-11-22T03:00:05Z"}`)},
	}
}

func testRequest(t testing.TB, key ed25519.PrivateKey, cams ...Camera) Request {
	return Request{
		BundleID: "bundle-1", CaseNumber: "2026-XA-0117", Requester: audit.Actor{User: "li.wei", Role: "police_liaison"},
		Reason: "break-in at the north gate", ExportedAt: epoch.Add(72 * time.Hour), Software: "vigil test",
		Key: key, Cameras: cams, Custody: custodyExport(t),
	}
}

// ffprobe is testrig.FFprobe: every frame decoded, the stream reported.
func ffprobe(t testing.TB, path string) testrig.Probe { return testrig.FFprobe(t, path) }

func ffprobeCodec(c string) string {
	if c == "h265" {
		return "hevc"
	}
	return c
}
