package central

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/wire"
)

// exporter plays an edge's side of evidence retrieval for one video:
// it describes the export, serves its pieces and releases pins; after
// stopAfter pieces (0: never) it drops the connection. offsets are the
// pieces asked for.
type exporter struct {
	data      []byte
	stopAfter int

	mu      sync.Mutex
	offsets []int64
}

func (x *exporter) serve(t *testing.T, e *edgeClient) {
	answer(t, e, func(req wire.Request, send func(wire.Response)) {
		resp := wire.Response{Status: wire.StatusOK, Final: true}
		switch req.Method {
		case wire.MethodExportInfo:
			size, chunk := int64(len(x.data)), req.Evidence.ChunkSize
			m := wire.ExportManifest{Camera: req.Camera, From: req.From, To: req.To, Start: req.From, End: req.To,
				Duration: req.To.Sub(req.From), Frames: 1, Codec: "h264", Size: size, ChunkSize: chunk, TimeSource: "rtcp"}
			for off := int64(0); off < size; off += chunk {
				s := sha256.Sum256(x.data[off:min(off+chunk, size)])
				m.Chunks = append(m.Chunks, hex.EncodeToString(s[:]))
			}
			s := sha256.Sum256(x.data)
			m.SHA256 = hex.EncodeToString(s[:])
			resp.Data, _ = json.Marshal(m)
		case wire.MethodExportRange:
			x.mu.Lock()
			x.offsets = append(x.offsets, req.Evidence.Offset)
			n, stop := len(x.offsets), x.stopAfter
			x.mu.Unlock()
			if stop > 0 && n > stop {
				e.ws.Close() // the link drops
				return
			}
			resp.Data = x.data[req.Evidence.Offset : req.Evidence.Offset+req.Evidence.Length]
		case wire.MethodRelease:
			resp.Data = []byte(`{"pins":[]}`)
		default:
			resp.Status = wire.StatusNotAvailable
		}
		send(resp)
	})
}

func (x *exporter) asked() []int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.offsets)
}

// TestReplicasRetrieveEvidence: a liaison asks B for video of an edge
// connected to A; A retrieves it into the shared store and B serves it.
// Then a retrieval whose edge drops after two verified pieces, with A
// gone, resumes on B (where the edge reconnects) from the third piece,
// and the video is whole.
func TestReplicasRetrieveEvidence(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "evidence")
	keys := t.TempDir()
	cfgA, cfgB := replicaConfig(t, url, keys), replicaConfig(t, url, keys)
	for _, c := range []*Config{&cfgA, &cfgB} {
		c.Retrieval = RetrievalConfig{ChunkSize: 4096, Poll: config.Duration(50 * time.Millisecond), Retry: config.Duration(50 * time.Millisecond)}
	}
	a := newServer(t, cfgA)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	tls := filepath.Join(cfgA.DataDir, "tls")
	cfgB.EdgeHub.CertFile, cfgB.EdgeHub.KeyFile, cfgB.EdgeHub.SelfSignedHosts = filepath.Join(tls, "edge-hub.crt"), filepath.Join(tls, "edge-hub.key"), nil
	b := newServer(t, cfgB)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	video := make([]byte, 6*4096+100)
	rand.Read(video)
	onA := &exporter{data: video}
	onA.serve(t, connectEdge(t, a, northID, northToken))

	ask := func(s *Server) string {
		to := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
		resp, body := adminDo(t, s, http.MethodPost, "/api/v1/evidence/requests", map[string]any{"case_number": "2026-17", "reason": "gate forced",
			"cameras": []map[string]string{{"edge": northID, "camera": "cam-gate"}}, "from": to.Add(-time.Minute), "to": to})
		var r EvidenceRequest
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil || r.ID == "" {
			t.Fatalf("evidence request: %d %s", resp.StatusCode, body)
		}
		return r.ID
	}
	ready := func(s *Server, id string) {
		t.Helper()
		eventually(t, "request "+id+" ready", func() bool {
			var r EvidenceRequest
			getJSON(t, s, "/api/v1/evidence/requests/"+id, &r)
			return r.Status == RetrievalReady
		})
		resp, got := get(t, s, "/api/v1/evidence/requests/"+id+"/items/0/video.mp4")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, video) {
			t.Fatalf("video of %s: %d, %d bytes; want the edge's %d", id, resp.StatusCode, len(got), len(video))
		}
	}
	first := ask(b)
	ready(b, first)

	onA.mu.Lock()
	onA.stopAfter = len(onA.offsets) + 2 // two more pieces, then the link drops
	onA.mu.Unlock()
	second := ask(b)
	eventually(t, "two pieces of the second request verified", func() bool {
		r, err := b.retr.get(second)
		return err == nil && r.Items[0].ChunksVerified >= 2
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	onB := &exporter{data: video}
	onB.serve(t, connectEdge(t, b, northID, northToken))
	ready(b, second)
	if got := onB.asked(); len(got) == 0 || got[0] < 2*4096 {
		t.Fatalf("B asked for pieces at %v: it should resume after the two verified on A (from %d)", got, 2*4096)
	}
}

// TestReplicasPlayback: a guard's playback session made through B works
// through A as well (the session is in the database), and the windows of
// north, connected to A, come through B (relayed to A) and through A.
func TestReplicasPlayback(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "playback")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	e := connectEdge(t, a, northID, northToken)
	e.send(wire.TypeHeartbeat, wire.Heartbeat{Time: time.Now().UTC(), Cameras: []wire.CameraStatus{{ID: "gate-cam", Name: "Gate road", Online: true}}})
	answer(t, e, func(req wire.Request, send func(wire.Response)) {
		if req.Method != wire.MethodPlayback {
			send(wire.Response{Status: wire.StatusNotAvailable, Final: true})
			return
		}
		info, _ := json.Marshal(wire.PlaybackInfo{Camera: req.Camera, Codec: "avc1.4d401f", Origin: req.Playback.Origin, Start: req.From, End: req.To, Frames: 3})
		send(wire.Response{Status: wire.StatusOK, ContentType: "application/json", Data: info})
		send(wire.Response{Status: wire.StatusOK, ContentType: "video/mp4", Part: 1, Data: []byte("INIT")})
		send(wire.Response{Status: wire.StatusOK, ContentType: "video/mp4", Part: 2, Data: []byte("FRAG"), Final: true})
	})
	eventually(t, "B to know north's camera", func() bool {
		var st EdgeStatus
		getJSON(t, b, "/api/v1/edges/"+northID, &st)
		return st.Online && len(st.Cameras) == 1
	})
	onB := signIn(t, b, "ann", RoleGuard)
	start := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	sess, code, body := createSession(t, onB, start, start.Add(5*time.Minute), northID+"/gate-cam")
	if code != http.StatusCreated || len(sess.Cameras) != 1 || sess.Cameras[0].Name != "Gate road" {
		t.Fatalf("session through B: %d %s", code, body)
	}
	onA := &browser{t: t, s: a, cookie: onB.cookie}
	for name, br := range map[string]*browser{"B": onB, "A": onA} {
		resp, got := br.do(http.MethodGet, fmt.Sprintf("/api/v1/playback/sessions/%s/video?edge=%s&camera=gate-cam&from=%s&to=%s",
			sess.ID, northID, rfc(start), rfc(start.Add(time.Minute))), nil)
		if resp.StatusCode != http.StatusOK || string(got) != "INITFRAG" || resp.Header.Get("X-Vigil-Frames") != "3" {
			t.Fatalf("a window through %s: %d %q %v", name, resp.StatusCode, got, resp.Header)
		}
	}
	if resp, _ := onA.do(http.MethodDelete, "/api/v1/playback/sessions/"+sess.ID, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("end the session through A: %d", resp.StatusCode)
	}
	if resp, _ := onB.do(http.MethodGet, fmt.Sprintf("/api/v1/playback/sessions/%s/timeline", sess.ID), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the ended session through B: %d, want 404", resp.StatusCode)
	}
}
