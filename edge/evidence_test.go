package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

func TestPieceHasher(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16000 bytes
	for _, size := range []int64{1, 7, 1000, 4096, 16000, 20000} {
		h := &pieceHasher{size: size, whole: sha256.New(), piece: sha256.New()}
		// Written in awkward slices.
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 333)
			h.Write(rest[:k])
			rest = rest[k:]
		}
		h.finish()
		var want []string
		for off := int64(0); off < int64(len(data)); off += size {
			s := sha256.Sum256(data[off:min(off+size, int64(len(data)))])
			want = append(want, hex.EncodeToString(s[:]))
		}
		whole := sha256.Sum256(data)
		if h.n != int64(len(data)) || fmt.Sprint(h.pieces) != fmt.Sprint(want) || hex.EncodeToString(h.whole.Sum(nil)) != hex.EncodeToString(whole[:]) {
			t.Errorf("size %d: %d bytes, %d pieces (want %d)", size, h.n, len(h.pieces), len(want))
		}
	}
}

// The edge's side of evidence retrieval against a real clip store fed by
// a simulated camera: recordings, a described export whose pieces and
// whole match the store's own export, sequential and resumed ranges, and
// release of the pins.
func TestEvidenceEdgeSide(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		// No central: the uplink keeps trying; the evidence methods are called directly.
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t", BackoffMax: config.Duration(time.Second)},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate")}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	n, err := Start(cfg, Options{Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	start := time.Now()
	time.Sleep(7 * time.Second)
	from, to := start.Add(time.Second), start.Add(5*time.Second)
	ctx := context.Background()

	rec, err := n.evidence.recordings(wire.Request{Method: wire.MethodRecordings, Camera: "gate-cam", From: start, To: time.Now()})
	if err != nil || len(rec.Spans) == 0 || rec.ClockOffsetSource == "" {
		t.Fatalf("recordings: %+v %v", rec, err)
	}
	if _, err := n.evidence.recordings(wire.Request{Method: wire.MethodRecordings, Camera: "nope"}); err == nil {
		t.Error("recordings of an unknown camera: no error")
	}

	var want bytes.Buffer
	if _, err := n.clips.Export(ctx, &want, "gate-cam", from, to); err != nil {
		t.Fatal(err)
	}
	const chunk = 32 << 10
	key := "req-1-0"
	req := wire.Request{Camera: "gate-cam", From: from, To: to, Evidence: &wire.EvidenceParams{Key: key, ChunkSize: chunk}}
	req.Method = wire.MethodExportInfo
	m, err := n.evidence.exportInfo(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want.Bytes())
	if m.Size != int64(want.Len()) || m.SHA256 != hex.EncodeToString(sum[:]) || m.Width != 640 || m.Height != 480 || m.Frames == 0 || m.PinID != wire.EvidencePinPrefix+key {
		t.Fatalf("manifest: %d bytes %s %dx%d %d frames pin %q; the store exports %d bytes %x", m.Size, m.SHA256, m.Width, m.Height, m.Frames, m.PinID, want.Len(), sum)
	}
	if m.TimeSource != "rtcp" && m.TimeSource != "arrival" {
		t.Errorf("time source %q", m.TimeSource)
	}
	if len(m.Chunks) < 3 {
		t.Fatalf("%d chunks: the test needs several", len(m.Chunks))
	}
	pinned := func(id string) bool {
		for _, p := range n.clips.Pins() {
			if p.ID == id {
				return true
			}
		}
		return false
	}
	if !pinned(m.PinID) {
		t.Fatal("the described range is not pinned")
	}

	get := func(off int64) []byte {
		t.Helper()
		r := req
		r.Method, r.Evidence = wire.MethodExportRange, &wire.EvidenceParams{Key: key, Offset: off, Length: chunk}
		b, err := n.evidence.exportRange(ctx, r)
		if err != nil {
			t.Fatalf("range at %d: %v", off, err)
		}
		i := off / chunk
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != m.Chunks[i] {
			t.Fatalf("chunk %d does not match its hash", i)
		}
		return b
	}
	// Sequentially: one cursor carries on from piece to piece.
	var got []byte
	for off := int64(0); off < m.Size; off += chunk {
		got = append(got, get(off)...)
		if off+chunk < m.Size {
			n.evidence.cursors.mu.Lock()
			c := n.evidence.cursors.open[cursorKey(req)]
			n.evidence.cursors.mu.Unlock()
			if c == nil || c.off != off+chunk {
				t.Fatalf("after the piece at %d the cursor is %+v", off, c)
			}
		}
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("pieces do not add up to the export")
	}
	n.evidence.cursors.mu.Lock()
	left := len(n.evidence.cursors.open)
	n.evidence.cursors.mu.Unlock()
	if left != 0 {
		t.Errorf("%d cursors left after the export's end", left)
	}
	// Resumed in the middle (a new connection), and out of order.
	get(2 * chunk)
	get(chunk)
	get(3 * chunk)
	// Past the end.
	r := req
	r.Method, r.Evidence = wire.MethodExportRange, &wire.EvidenceParams{Key: key, Offset: m.Size + 10, Length: chunk}
	if _, err := n.evidence.exportRange(ctx, r); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("range past the end: %v", err)
	}

	// Release: the retrieval's pin and a pin inside the range go; a pin
	// reaching outside it stays.
	if _, err := n.clips.PinRange("alert-in", "gate-cam", m.Start.Add(time.Second), m.End.Add(-time.Second), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.clips.PinRange("alert-out", "gate-cam", m.Start.Add(time.Second), m.End.Add(time.Minute), "test"); err != nil {
		t.Fatal(err)
	}
	r.Method, r.From, r.To, r.Evidence = wire.MethodRelease, m.Start, m.End, &wire.EvidenceParams{Key: key}
	rel, err := n.evidence.release(r)
	if err != nil {
		t.Fatal(err)
	}
	if pinned(m.PinID) || pinned("alert-in") || !pinned("alert-out") || len(rel.Pins) != 2 {
		t.Errorf("after release %v: pins %+v", rel.Pins, n.clips.Pins())
	}
}

// feedClip plays a clip once into the node as its camera delivers it:
// PTS from pts0, the wall clock from wall0, never faster than the clip
// store writes.
func feedClip(t *testing.T, n *Node, cam string, clip *sim.Clip, pts0 time.Duration, wall0 time.Time) {
	t.Helper()
	r, err := n.clips.Recorder(cam)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range clip.Packets {
		for r.Pending() > 1<<20 {
			time.Sleep(time.Millisecond)
		}
		size := 0
		for _, nalu := range p.AU {
			size += 4 + len(nalu)
		}
		n.OnAccessUnit(cam, streams.AccessUnit{Codec: clip.Info.Codec, NALUs: p.AU, PTS: pts0 + p.PTS, Time: wall0.Add(p.PTS),
			TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: size})
	}
}

// A camera reconfigured mid-range (640x360 H.264, then 320x240 H.265):
// the export of the range is described up to the change, at its own size
// and codec, with Next where the rest starts, and its pin holds the rest
// of the range until central has that too; the rest is described on its
// own; each description is the store's own export of that part, byte for
// byte; releasing both parts with the whole range leaves no pin.
func TestEvidenceAcrossChange(t *testing.T) {
	clip := func(w, h int, h265 bool) *sim.Clip {
		return testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: w, Height: h, Bursts: []footage.Burst{{Start: 2, End: 6}}, H265: h265})
	}
	first, second := clip(640, 360, false), clip(320, 240, true)
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t", BackoffMax: config.Duration(time.Second)},
		// Nothing answers there: the test delivers the camera's video itself.
		Cameras: []conf.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: "rtsp://127.0.0.1:1/gate"}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	n, err := Start(cfg, Options{Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	base := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	feedClip(t, n, "gate-cam", first, 0, base)
	feedClip(t, n, "gate-cam", second, 10*time.Second, at(10*time.Second))
	ctx := context.Background()

	const chunk = 16 << 10
	from, to := at(5*time.Second), at(15*time.Second)
	describe := func(key string, from time.Time) wire.ExportManifest {
		t.Helper()
		m, err := n.evidence.exportInfo(ctx, wire.Request{Method: wire.MethodExportInfo, Camera: "gate-cam", From: from, To: to,
			Evidence: &wire.EvidenceParams{Key: key, ChunkSize: chunk}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Check(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	pins := func() map[string][2]time.Time {
		out := map[string][2]time.Time{}
		for _, p := range n.clips.Pins() {
			out[p.ID] = [2]time.Time{p.From, p.To}
		}
		return out
	}
	m1 := describe("req-1-0", from)
	if !m1.Start.Equal(at(4*time.Second)) || !m1.End.Equal(at(10*time.Second)) || !m1.Next.Equal(at(10*time.Second)) ||
		m1.Codec != "H264" || m1.Width != 640 || m1.Height != 360 || m1.Frames != 60 {
		t.Fatalf("first part: %s..%s next %s, %s %dx%d, %d frames; want 4 s..10 s next 10 s, H264 640x360, 60 frames",
			m1.Start, m1.End, m1.Next, m1.Codec, m1.Width, m1.Height, m1.Frames)
	}
	if p := pins()[m1.PinID]; !p[0].Equal(m1.Start) || !p[1].Equal(to) {
		t.Errorf("the first part's pin covers %v..%v, want %v..%v: the rest of the range with it", p[0], p[1], m1.Start, to)
	}
	m2 := describe("req-1-1", m1.Next)
	if !m2.Start.Equal(at(10*time.Second)) || !m2.End.Equal(to) || !m2.Next.IsZero() ||
		m2.Codec != "H265" || m2.Width != 320 || m2.Height != 240 || m2.Frames != 50 {
		t.Fatalf("second part: %s..%s next %s, %s %dx%d, %d frames; want 10 s..15 s, H265 320x240, 50 frames",
			m2.Start, m2.End, m2.Next, m2.Codec, m2.Width, m2.Height, m2.Frames)
	}
	if p := pins()[m2.PinID]; !p[0].Equal(m2.Start) || !p[1].Equal(m2.End) {
		t.Errorf("the second part's pin covers %v..%v, want %v..%v", p[0], p[1], m2.Start, m2.End)
	}

	// Each part, fetched in pieces, is the store's export of it.
	for i, m := range []wire.ExportManifest{m1, m2} {
		var want bytes.Buffer
		if _, err := n.clips.Export(ctx, &want, "gate-cam", m.From, m.To); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for off := int64(0); off < m.Size; off += chunk {
			b, err := n.evidence.exportRange(ctx, wire.Request{Method: wire.MethodExportRange, Camera: "gate-cam", From: m.From, To: m.To,
				Evidence: &wire.EvidenceParams{Key: fmt.Sprintf("req-1-%d", i), Offset: off, Length: chunk}})
			if err != nil {
				t.Fatalf("part %d at %d: %v", i, off, err)
			}
			if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != m.Chunks[off/chunk] {
				t.Fatalf("part %d: piece %d does not match its hash", i, off/chunk)
			}
			got = append(got, b...)
		}
		if s := sha256.Sum256(got); !bytes.Equal(got, want.Bytes()) || hex.EncodeToString(s[:]) != m.SHA256 {
			t.Errorf("part %d: %d bytes fetched, the store exports %d", i, len(got), want.Len())
		}
	}

	// Released with the range of both parts, as central does once it
	// holds both: no pin is left.
	for _, key := range []string{"req-1-1", "req-1-0"} {
		if _, err := n.evidence.release(wire.Request{Method: wire.MethodRelease, Camera: "gate-cam", From: m1.Start, To: m2.End,
			Evidence: &wire.EvidenceParams{Key: key}}); err != nil {
			t.Fatal(err)
		}
	}
	if left := pins(); len(left) != 0 {
		t.Errorf("pins left after both parts were released: %v", left)
	}
}
