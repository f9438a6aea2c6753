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

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
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
	cfg := Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		// No central: the uplink keeps trying; the evidence methods are called directly.
		Central: CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t", BackoffMax: config.Duration(time.Second)},
		Cameras: []CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate")}},
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

	rec, err := n.evidenceRecordings(wire.Request{Method: wire.MethodRecordings, Camera: "gate-cam", From: start, To: time.Now()})
	if err != nil || len(rec.Spans) == 0 || rec.ClockOffsetSource == "" {
		t.Fatalf("recordings: %+v %v", rec, err)
	}
	if _, err := n.evidenceRecordings(wire.Request{Method: wire.MethodRecordings, Camera: "nope"}); err == nil {
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
	m, err := n.evidenceExportInfo(ctx, req)
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
		b, err := n.evidenceRange(ctx, r)
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
			n.evidence.mu.Lock()
			c := n.evidence.cursors[cursorKey(req)]
			n.evidence.mu.Unlock()
			if c == nil || c.off != off+chunk {
				t.Fatalf("after the piece at %d the cursor is %+v", off, c)
			}
		}
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("pieces do not add up to the export")
	}
	n.evidence.mu.Lock()
	left := len(n.evidence.cursors)
	n.evidence.mu.Unlock()
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
	if _, err := n.evidenceRange(ctx, r); err == nil || !strings.Contains(err.Error(), "past the end") {
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
	rel, err := n.evidenceRelease(r)
	if err != nil {
		t.Fatal(err)
	}
	if pinned(m.PinID) || pinned("alert-in") || !pinned("alert-out") || len(rel.Pins) != 2 {
		t.Errorf("after release %v: pins %+v", rel.Pins, n.clips.Pins())
	}
}
