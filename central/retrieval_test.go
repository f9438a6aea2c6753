package central

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// chunkFaults is the test's view of the link: it counts every chunk
// central receives, and for requests with certain case numbers flips a
// byte in one chunk or cuts the edge's connection after one.
type chunkFaults struct {
	s *Server

	mu      sync.Mutex
	seen    map[string]map[int]int // request → chunk → times received
	corrupt map[string]int         // case number → chunk to corrupt once
	cut     map[string]int         // case number → chunk after which the link is cut once
	cuts    int
	// stop: case number → chunk at which central is stopped: the hook
	// signals stopping and holds the chunk until proceed is closed.
	stop     map[string]int
	stopping chan struct{}
	proceed  chan struct{}
}

func (f *chunkFaults) hook(reqID string, _ int, chunk int, data []byte) []byte {
	f.mu.Lock()
	srv := f.s
	f.mu.Unlock()
	r, err := srv.retr.get(reqID)
	f.mu.Lock()
	if c, ok := f.stop[r.CaseNumber]; ok && err == nil && c == chunk {
		delete(f.stop, r.CaseNumber)
		f.mu.Unlock()
		close(f.stopping)
		<-f.proceed
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.seen[reqID] == nil {
		f.seen[reqID] = map[int]int{}
	}
	f.seen[reqID][chunk]++
	if err != nil {
		return data
	}
	if c, ok := f.corrupt[r.CaseNumber]; ok && c == chunk {
		delete(f.corrupt, r.CaseNumber)
		data = slices.Clone(data)
		data[len(data)/2] ^= 0x20
	}
	if c, ok := f.cut[r.CaseNumber]; ok && c == chunk {
		delete(f.cut, r.CaseNumber)
		f.cuts++
		srv.edges.kick(northID, websocket.CloseGoingAway, "test: link cut mid-fetch")
	}
	return data
}

func (f *chunkFaults) counts(reqID string) map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.seen[reqID])
}

// evidenceRig is a real central, a real edge and a simulated camera.
type evidenceRig struct {
	t      *testing.T
	s      *Server
	cfg    edge.Config
	node   *edge.Node
	faults *chunkFaults
	police *browser
}

func startEvidenceRig(t *testing.T) *evidenceRig {
	oldChunk, oldPoll, oldRetry, oldHook := retrievalChunkSize, retrievalPoll, retrievalRetry, retrievalChunkHook
	t.Cleanup(func() {
		retrievalChunkSize, retrievalPoll, retrievalRetry, retrievalChunkHook = oldChunk, oldPoll, oldRetry, oldHook
	})
	retrievalChunkSize, retrievalPoll, retrievalRetry = 64<<10, 100*time.Millisecond, 100*time.Millisecond
	faults := &chunkFaults{seen: map[string]map[int]int{}, corrupt: map[string]int{}, cut: map[string]int{}, stop: map[string]int{},
		stopping: make(chan struct{}), proceed: make(chan struct{})}
	retrievalChunkHook = faults.hook

	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	s := startServer(t)
	faults.s = s
	rig := &evidenceRig{t: t, s: s, faults: faults}
	rig.cfg = edge.Config{
		EdgeID: northID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central:   edge.CentralConfig{URL: "wss://" + s.EdgeAddr() + wire.EdgePath, Token: northToken, Pin: wire.FormatPin(s.EdgePin()), BackoffMax: config.Duration(500 * time.Millisecond)},
		Cameras:   []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate"), Armed: true}},
		Recording: edge.RecordingConfig{PreRoll: config.Duration(2 * time.Second), PostRoll: config.Duration(3 * time.Second)},
	}
	if errs := rig.cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	rig.startEdge()
	rig.police = signIn(t, s, "liaison", RolePolice)
	return rig
}

func (g *evidenceRig) startEdge() {
	g.t.Helper()
	node, err := edge.Start(g.cfg, edge.Options{Log: testrig.Logger(g.t), UplinkBackoffMin: 100 * time.Millisecond, CameraBackoffMax: 2 * time.Second})
	if err != nil {
		g.t.Fatal(err)
	}
	g.node = node
	g.t.Cleanup(func() { node.Close() })
	until(g.t, "edge connected", 10*time.Second, func() bool { return g.s.edges.connected(northID) })
}

func until(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// request files an evidence request as the liaison.
func (g *evidenceRig) request(caseNumber string, from, to time.Time) EvidenceRequest {
	g.t.Helper()
	body := map[string]any{"case_number": caseNumber, "reason": "burglary reported at the north gate",
		"cameras": []map[string]string{{"edge": northID, "camera": "gate-cam"}}, "from": from, "to": to}
	resp, b := g.police.do(http.MethodPost, "/api/v1/evidence/requests", body)
	if resp.StatusCode != http.StatusCreated {
		g.t.Fatalf("create request: %d %s", resp.StatusCode, b)
	}
	var r EvidenceRequest
	if err := json.Unmarshal(b, &r); err != nil {
		g.t.Fatal(err)
	}
	return r
}

func (g *evidenceRig) get(id string) EvidenceRequest {
	g.t.Helper()
	resp, b := g.police.do(http.MethodGet, "/api/v1/evidence/requests/"+id, nil)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("get request: %d %s", resp.StatusCode, b)
	}
	var r EvidenceRequest
	if err := json.Unmarshal(b, &r); err != nil {
		g.t.Fatal(err)
	}
	return r
}

// waitStatus polls the request until its status is want (failing on
// "failed" unless that is wanted), logging every status it passes.
func (g *evidenceRig) waitStatus(id, want string, within time.Duration) EvidenceRequest {
	g.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		r := g.get(id)
		if s := r.Status + " " + r.Items[0].Detail; s != last {
			g.t.Logf("%s: %s (%d%%, %d/%d chunks)", id, s, r.Items[0].Percent, r.Items[0].ChunksVerified, r.Items[0].ChunksTotal)
			last = s
		}
		if r.Status == want {
			return r
		}
		if r.Status == RetrievalFailed {
			g.t.Fatalf("%s failed: %s", id, r.Items[0].Detail)
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: still %s after %v, want %s", id, r.Status, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// download fetches an item's MP4 from central and returns it.
func (g *evidenceRig) download(id string, item int) []byte {
	g.t.Helper()
	resp, b := g.police.do(http.MethodGet, "/api/v1/evidence/requests/"+id+"/items/"+strconv.Itoa(item)+"/video.mp4", nil)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("download: %d %s", resp.StatusCode, b)
	}
	return b
}

// edgeExport is the MP4 the edge's own API exports for the range.
func (g *evidenceRig) edgeExport(from, to time.Time) []byte {
	g.t.Helper()
	u := "http://" + g.node.Addr() + "/api/v1/recordings/gate-cam/mp4?start=" + url.QueryEscape(from.Format(time.RFC3339Nano)) +
		"&duration=" + to.Sub(from).String()
	resp, err := edgeGet(g.t, g.s, northID, u)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("edge export: %d %s", resp.StatusCode, b)
	}
	return b
}

// getEdgeJSON decodes the edge's answer to GET u (a token central
// issued) into v.
func getEdgeJSON(t *testing.T, s *Server, u string, v any) {
	t.Helper()
	resp, err := edgeGet(t, s, northID, u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkItem compares the retrieved video with the edge's own export and
// the stated hash.
func (g *evidenceRig) checkItem(r EvidenceRequest) []byte {
	g.t.Helper()
	it := r.Items[0]
	got := g.download(r.ID, 0)
	want := g.edgeExport(r.From, r.To)
	if sha(got) != sha(want) || it.SHA256 != sha(want) || it.Export.SHA256 != sha(want) {
		g.t.Fatalf("%s: central holds %d bytes (%s, item says %s), the edge exports %d bytes (%s)", r.ID, len(got), sha(got), it.SHA256, len(want), sha(want))
	}
	if it.ChunksVerified != it.ChunksTotal {
		g.t.Errorf("%s: %d of %d chunks verified", r.ID, it.ChunksVerified, it.ChunksTotal)
	}
	return got
}

func TestEvidenceRetrievalEndToEnd(t *testing.T) {
	g := startEvidenceRig(t)
	s := g.s

	// An alert: the first crossing, 5 s into the clip.
	var alert Record
	until(t, "a motion alert at central", 30*time.Second, func() bool {
		recs, _, err := s.store.Query(AlertQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Kind == "motion" && r.Source == "gate-cam" {
				alert = r
				return true
			}
		}
		return false
	})
	from, to := alert.Time.Add(-3*time.Second), alert.Time.Add(5*time.Second)
	until(t, "the range to be in the past", 15*time.Second, func() bool { return time.Now().After(to.Add(2 * time.Second)) })

	// 1. Search: the camera's recorded spans and the alert, with its workflow.
	sup := signIn(t, s, "sup", RoleSupervisor)
	q := "/api/v1/evidence/search?entrance=" + siteID + "&from=" + url.QueryEscape(from.Add(-time.Minute).Format(time.RFC3339Nano)) +
		"&to=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	resp, b := sup.do(http.MethodGet, q, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search: %d %s", resp.StatusCode, b)
	}
	var res SearchResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	cam := searchCamera(t, res, "gate-cam")
	if cam.RecordingsStatus != "ok" || len(cam.Recordings.Spans) == 0 {
		t.Fatalf("search: recordings %s %s %+v", cam.RecordingsStatus, cam.RecordingsError, cam.Recordings)
	}
	if sp := cam.Recordings.Spans[0]; sp.Start.After(from) || sp.End.Before(to) {
		t.Errorf("search: span %v..%v does not cover %v..%v", sp.Start, sp.End, from, to)
	}
	if !slices.ContainsFunc(cam.Alerts, func(r Record) bool { return r.ID == alert.ID && r.State != "" }) {
		t.Errorf("search: alert %s not on the camera's timeline: %+v", alert.ID, cam.Alerts)
	}
	t.Logf("search: %d span(s), %d gap(s), %d alert(s); clock offset %d ms (%s)", len(cam.Recordings.Spans), len(cam.Recordings.Gaps),
		len(cam.Alerts), cam.Recordings.ClockOffsetMS, cam.Recordings.ClockOffsetSource)
	// By alert: the window is found from the alert.
	resp, b = sup.do(http.MethodGet, "/api/v1/evidence/search?alert="+url.QueryEscape(alert.ID), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search by alert: %d %s", resp.StatusCode, b)
	}

	// 2. A request completes: the MP4 is the edge's export, byte for byte,
	// and ffprobe agrees with the manifest; the pins are released.
	r := g.request("CASE-1", from, to)
	r = g.waitStatus(r.ID, RetrievalReady, 60*time.Second)
	mp4 := g.checkItem(r)
	it := r.Items[0]
	m := it.Export
	t.Logf("retrieved %d bytes in %d chunks: %s..%s, %s %dx%d, %d frames, offset %d ms (%s), central's %d ms",
		m.Size, it.ChunksTotal, m.Start.Format(time.RFC3339Nano), m.End.Format(time.RFC3339Nano), m.Codec, m.Width, m.Height, m.Frames,
		m.ClockOffsetMS, m.ClockOffsetSource, it.CentralClockOffsetMS)
	if it.ChunksTotal < 3 {
		t.Fatalf("only %d chunks: the test needs several", it.ChunksTotal)
	}
	if m.Codec != "H264" && m.Codec != "h264" && m.Codec != "H.264" {
		t.Logf("codec reported as %q", m.Codec)
	}
	if m.Width != 640 || m.Height != 480 {
		t.Errorf("resolution %dx%d, want 640x480", m.Width, m.Height)
	}
	if m.Start.After(from) || m.End.Before(to.Add(-200*time.Millisecond)) || m.ClockOffsetSource == "" || it.CentralClockOffsetSource == "" {
		t.Errorf("manifest range %v..%v for %v..%v, offset source %q / %q", m.Start, m.End, from, to, m.ClockOffsetSource, it.CentralClockOffsetSource)
	}
	ffprobeCheck(t, mp4, m)
	if it.ChunksFetched != it.ChunksTotal || it.ChunksRejected != 0 {
		t.Errorf("clean fetch: %d fetched, %d rejected, %d chunks", it.ChunksFetched, it.ChunksRejected, it.ChunksTotal)
	}
	until(t, "pins released", 10*time.Second, func() bool { return g.get(r.ID).Items[0].PinsReleased })
	rel := g.get(r.ID).Items[0].ReleasedPins
	if !slices.Contains(rel, wire.EvidencePinPrefix+r.ID+"-0") || !slices.Contains(rel, alert.ID) {
		t.Errorf("released pins %v, want the retrieval's and the alert's (%s)", rel, alert.ID)
	}

	// What the bundle writer gets: the verified file, the edge's facts, the alert with its workflow.
	bc, err := s.evidence.bundleCameras(g.get(r.ID))
	if err != nil || len(bc) != 1 {
		t.Fatalf("bundle cameras: %v %v", bc, err)
	}
	if onDisk, err := os.ReadFile(bc[0].VideoPath); err != nil || sha(onDisk) != bc[0].SHA256 || bc[0].Codec != "h264" ||
		!slices.ContainsFunc(bc[0].Alerts, func(a json.RawMessage) bool { return strings.Contains(string(a), alert.ID) }) {
		t.Errorf("bundle cameras: %+v (%v)", bc[0], err)
	}

	// The signed bundle of the request verifies offline; a flipped byte is named.
	checkBundle(t, s, g.get(r.ID))

	// 3. A chunk corrupted in transit is detected and fetched again.
	g.faults.mu.Lock()
	g.faults.corrupt["CASE-CORRUPT"] = 1
	g.faults.mu.Unlock()
	rc := g.request("CASE-CORRUPT", from, to)
	rc = g.waitStatus(rc.ID, RetrievalReady, 60*time.Second)
	g.checkItem(rc)
	if c := g.faults.counts(rc.ID); rc.Items[0].ChunksRejected != 1 || c[1] != 2 || c[0] != 1 {
		t.Errorf("corrupted chunk: %d rejected, received %v", rc.Items[0].ChunksRejected, c)
	}

	// 4. The link is cut mid-fetch: the fetch resumes where it stopped,
	// never fetching a verified chunk again.
	g.faults.mu.Lock()
	g.faults.cut["CASE-CUT"] = 1
	g.faults.mu.Unlock()
	rx := g.request("CASE-CUT", from, to)
	rx = g.waitStatus(rx.ID, RetrievalReady, 60*time.Second)
	g.checkItem(rx)
	c := g.faults.counts(rx.ID)
	for i := range rx.Items[0].ChunksTotal {
		if c[i] != 1 {
			t.Errorf("link cut: chunk %d received %d times (%v)", i, c[i], c)
		}
	}
	if g.faults.cuts != 1 {
		t.Errorf("the link was cut %d times", g.faults.cuts)
	}
	t.Logf("link cut: %d chunks, %d fetch attempts", rx.Items[0].ChunksTotal, rx.Items[0].ChunksFetched)

	// 5. The edge is offline when the request is made: it waits, and
	// completes when the edge is back.
	g.node.Close()
	until(t, "edge gone", 10*time.Second, func() bool { return !s.edges.connected(northID) })
	ro := g.request("CASE-OFFLINE", from, to)
	if ro.Status != RetrievalWaiting {
		t.Errorf("offline edge: status %s, want %s", ro.Status, RetrievalWaiting)
	}
	// Search says the edge is offline and still shows the alert and the copies central holds.
	resp, b = sup.do(http.MethodGet, q, nil)
	res = SearchResult{}
	if err := json.Unmarshal(b, &res); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("search (offline): %d %s", resp.StatusCode, b)
	}
	cam = searchCamera(t, res, "gate-cam")
	if cam.RecordingsStatus != "edge_offline" || len(cam.Alerts) == 0 || len(cam.Retrieved) < 3 {
		t.Errorf("search (offline): %s, %d alerts, %d retrieved", cam.RecordingsStatus, len(cam.Alerts), len(cam.Retrieved))
	}
	time.Sleep(time.Second)
	if st := g.get(ro.ID).Status; st != RetrievalWaiting {
		t.Errorf("offline edge: status %s after a second, want %s", st, RetrievalWaiting)
	}
	g.startEdge()
	ro = g.waitStatus(ro.ID, RetrievalReady, 60*time.Second)
	g.checkItem(ro)

	// 6. Central stops mid-fetch and starts again on the same data: the
	// fetch resumes from the last verified chunk.
	g.faults.mu.Lock()
	g.faults.stop["CASE-RESTART"] = 2
	g.faults.mu.Unlock()
	rs := g.request("CASE-RESTART", from, to)
	select {
	case <-g.faults.stopping:
	case <-time.After(60 * time.Second):
		t.Fatal("the fetch never reached chunk 2")
	}
	addr, hub := s.Addr(), s.EdgeAddr()
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	time.Sleep(200 * time.Millisecond) // Close has cancelled the workers' context
	close(g.faults.proceed)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(s.cfg.DataDir)
	cfg.Listen, cfg.EdgeHub.Listen = addr, hub // the edge redials the hub it knows
	s2 := newServer(t, cfg)
	g.faults.mu.Lock()
	g.faults.s = s2
	g.faults.mu.Unlock()
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	g.s, g.police = s2, signIn(t, s2, "liaison", RolePolice) // the requester: only they (and supervisors, admins) see the request
	rs = g.waitStatus(rs.ID, RetrievalReady, 60*time.Second)
	g.checkItem(rs)
	c = g.faults.counts(rs.ID)
	for i := range rs.Items[0].ChunksTotal {
		if c[i] != 1 {
			t.Errorf("central restart: chunk %d received %d times (%v)", i, c[i], c)
		}
	}
	t.Logf("central restart: %d chunks, %d fetch attempts", rs.Items[0].ChunksTotal, rs.Items[0].ChunksFetched)
}

func searchCamera(t *testing.T, res SearchResult, cam string) CameraTimeline {
	t.Helper()
	for _, e := range res.Edges {
		for _, c := range e.Cameras {
			if e.ID == northID && c.ID == cam {
				return c
			}
		}
	}
	t.Fatalf("search: no camera %s in %+v", cam, res)
	return CameraTimeline{}
}

// ffprobeCheck: codec and resolution as stated, duration within one frame.
func ffprobeCheck(t *testing.T, mp4 []byte, m *wire.ExportManifest) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Log("ffprobe not installed; skipping its check")
		return
	}
	p := filepath.Join(t.TempDir(), "v.mp4")
	if err := os.WriteFile(p, mp4, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames,duration", "-of", "json", p).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var pr struct {
		Streams []struct {
			Codec    string `json:"codec_name"`
			Width    int    `json:"width"`
			Height   int    `json:"height"`
			Frames   string `json:"nb_read_frames"`
			Duration string `json:"duration"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &pr); err != nil || len(pr.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	st := pr.Streams[0]
	d, _ := strconv.ParseFloat(st.Duration, 64)
	frame := m.Duration.Seconds() / float64(m.Frames)
	t.Logf("ffprobe: %s %dx%d, %s frames, %.3f s (manifest %d frames, %.3f s)", st.Codec, st.Width, st.Height, st.Frames, d, m.Frames, m.Duration.Seconds())
	if st.Codec != "h264" || st.Width != m.Width || st.Height != m.Height || st.Frames != strconv.Itoa(m.Frames) {
		t.Errorf("ffprobe: %+v, manifest %s %dx%d %d frames", st, m.Codec, m.Width, m.Height, m.Frames)
	}
	if math.Abs(d-m.Duration.Seconds()) > frame+1e-6 {
		t.Errorf("ffprobe duration %.3f s, manifest %.3f s: more than one frame (%.3f s) apart", d, m.Duration.Seconds(), frame)
	}
}

// Every role against every evidence endpoint, enforced by central.
func TestEvidenceRoles(t *testing.T) {
	s := startServer(t)
	now := time.Now().UTC()
	create := map[string]any{"case_number": "C-7", "reason": "test", "from": now.Add(-time.Minute), "to": now.Add(-30 * time.Second),
		"cameras": []map[string]string{{"edge": northID, "camera": "gate-cam"}}}
	// An existing request for the read endpoints (the edge is offline: it waits).
	admin := signIn(t, s, "root", RoleAdmin)
	resp, b := admin.do(http.MethodPost, "/api/v1/evidence/requests", create)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin create: %d %s", resp.StatusCode, b)
	}
	var r EvidenceRequest
	_ = json.Unmarshal(b, &r)
	if r.Status != RetrievalWaiting || r.Requester != "root" {
		t.Errorf("created: %+v", r)
	}
	search := "/api/v1/evidence/search?from=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(now.Format(time.RFC3339))
	type call struct {
		method, path string
		body         any
		ok           int
	}
	calls := []call{
		{http.MethodGet, search, nil, http.StatusOK},
		{http.MethodPost, "/api/v1/evidence/requests", create, http.StatusCreated},
		{http.MethodGet, "/api/v1/evidence/requests", nil, http.StatusOK},
		{http.MethodGet, "/api/v1/evidence/requests/" + r.ID, nil, http.StatusOK},
		{http.MethodGet, "/api/v1/evidence/requests/" + r.ID + "/items/0/video.mp4", nil, http.StatusConflict}, // not fetched yet
		{http.MethodGet, "/api/v1/evidence/requests/" + r.ID + "/bundle.zip", nil, http.StatusConflict},
	}
	allowed := map[string][]bool{ // per call above
		RoleGuard:      {false, false, false, false, false, false},
		RoleSupervisor: {true, false, true, true, true, true}, // reads every request; makes none
		RolePolice:     {true, true, true, true, true, true},
		RoleInstaller:  {false, false, false, false, false, false},
		RoleAdmin:      {true, true, true, true, true, true},
	}
	for _, role := range Roles {
		br := signIn(t, s, "u-"+strings.ReplaceAll(role, "_", "-"), role)
		for i, c := range calls {
			want := http.StatusForbidden
			if allowed[role][i] {
				want = c.ok
			}
			if role == RolePolice && strings.Contains(c.path, r.ID) {
				want = http.StatusNotFound // the admin's request is not the liaison's to see
			}
			resp, b := br.do(c.method, c.path, c.body)
			if resp.StatusCode != want {
				t.Errorf("%s: %s %s: %d %s, want %d", role, c.method, c.path, resp.StatusCode, b, want)
			}
		}
	}
	for _, c := range calls {
		req, _ := http.NewRequest(c.method, "http://"+s.Addr()+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("no session: %s %s: %d, want 401", c.method, c.path, resp.StatusCode)
		}
	}
	// Bad requests name what is wrong.
	for _, bad := range []map[string]any{
		{"reason": "x", "from": now.Add(-time.Minute), "to": now, "cameras": create["cameras"]},
		{"case_number": "C", "reason": "x", "from": now, "to": now.Add(-time.Minute), "cameras": create["cameras"]},
		{"case_number": "C", "reason": "x", "from": now.Add(-3 * time.Hour), "to": now, "cameras": create["cameras"]},
		{"case_number": "C", "reason": "x", "from": now.Add(-time.Minute), "to": now, "cameras": []map[string]string{{"edge": "nobody", "camera": "c"}}},
	} {
		if resp, b := admin.do(http.MethodPost, "/api/v1/evidence/requests", bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("bad request %v: %d %s", bad, resp.StatusCode, b)
		}
	}
}

// checkBundle builds the request's bundle with a fresh key and audit log,
// verifies it, and checks that one flipped byte in the video fails it.
func checkBundle(t *testing.T, s *Server, r EvidenceRequest) {
	t.Helper()
	ctx := context.Background()
	key, err := evidence.GenerateKey(filepath.Join(t.TempDir(), "evidence.key"))
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.OpenDir(t.TempDir(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	for _, a := range []string{audit.ActionExport, audit.ActionDownload} {
		if _, err := alog.Append(ctx, audit.Entry{Actor: audit.Actor{User: "liaison", Role: RolePolice}, Action: a, Target: r.ID}); err != nil {
			t.Fatal(err)
		}
	}
	var zb bytes.Buffer
	m, err := s.evidence.buildBundle(ctx, &zb, r, key, alog)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	res, err := evidence.Verify(ctx, bytes.NewReader(zb.Bytes()), int64(zb.Len()), pub)
	if err != nil {
		t.Fatalf("bundle does not verify: %v", err)
	}
	// Every camera has the contact sheet its edge made (central decodes
	// nothing): the stored file, byte for byte, as the manifest lists it.
	sheets := map[string]string{}
	for _, it := range r.Items {
		sheets[it.ContactSheetSHA256] = it.ContactSheet
	}
	for _, c := range m.Cameras {
		var sum string
		for _, f := range m.Files {
			if f.Name == c.ContactSheet {
				sum = f.SHA256
			}
		}
		if c.ContactSheet == "" || sheets[sum] == "" {
			t.Errorf("%s: contact sheet %q (sha256 %s, note %q) is not one the edge sent (%v)", c.CameraID, c.ContactSheet, sum, c.ContactSheetNote, sheets)
		}
	}
	c := m.Cameras[0]
	t.Logf("bundle: %d bytes, %d files, camera %s %s %dx%d %d frames %.3f s, clock %s, offset %.0f ms, %d alert(s)",
		zb.Len(), len(m.Files), c.CameraID, c.Codec, c.Width, c.Height, c.Frames, c.DurationSeconds, c.ClockSource, c.ClockOffsetMS, len(c.Alerts))
	_ = res
	// One flipped byte inside the video.
	b := slices.Clone(zb.Bytes())
	i := bytes.Index(b, []byte("mdat"))
	if i < 0 {
		t.Fatal("no mdat in the bundle")
	}
	b[i+1000] ^= 1
	if _, err := evidence.Verify(ctx, bytes.NewReader(b), int64(len(b)), pub); err == nil || !strings.Contains(err.Error(), ".mp4") {
		t.Errorf("a flipped byte in the video: %v, want a failure naming the MP4", err)
	}
}

// A camera reconfigured inside the requested range (640x360 H.264, then
// 320x240 H.265 from 10 s on): the edge's export stops at the change and
// central fetches the rest as a part of its own, with its own range,
// file, pin and progress, resumed across a central restart in the middle
// of it. The request is ready with one verified MP4 per part, each the
// edge's own export of that part; the edge keeps the rest of the range
// pinned until central holds it and then releases every pin; the bundle
// downloads with two MP4s, which ffprobe and ffmpeg judge at their own
// size and frame count, and verifies as `vigil evidence verify` does.
func TestEvidenceRetrievalAcrossChange(t *testing.T) {
	oldChunk, oldPoll, oldRetry, oldHook := retrievalChunkSize, retrievalPoll, retrievalRetry, retrievalChunkHook
	t.Cleanup(func() {
		retrievalChunkSize, retrievalPoll, retrievalRetry, retrievalChunkHook = oldChunk, oldPoll, oldRetry, oldHook
	})
	retrievalChunkSize, retrievalPoll, retrievalRetry = 8<<10, 100*time.Millisecond, 100*time.Millisecond
	// The link: every chunk received, by item; central is stopped when
	// chunk 1 of the added part (item 1) arrives.
	var mu sync.Mutex
	seen := map[[2]int]int{}
	stopped := false
	stopping, proceed := make(chan struct{}), make(chan struct{})
	retrievalChunkHook = func(_ string, item, chunk int, data []byte) []byte {
		mu.Lock()
		stop := !stopped && item == 1 && chunk == 1
		stopped = stopped || stop
		mu.Unlock()
		if stop {
			close(stopping)
			<-proceed
		}
		mu.Lock()
		seen[[2]int{item, chunk}]++
		mu.Unlock()
		return data
	}
	clip := func(w, h int, h265 bool) *sim.Clip {
		return testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: w, Height: h, Bursts: []footage.Burst{{Start: 2, End: 6}}, H265: h265})
	}
	first, second := clip(640, 360, false), clip(320, 240, true)

	s := startServer(t)
	g := &evidenceRig{t: t, s: s}
	g.cfg = edge.Config{
		EdgeID: northID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: edge.CentralConfig{URL: "wss://" + s.EdgeAddr() + wire.EdgePath, Token: northToken, Pin: wire.FormatPin(s.EdgePin()), BackoffMax: config.Duration(500 * time.Millisecond)},
		// Nothing answers there: the test delivers the camera's video itself.
		Cameras: []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: "rtsp://127.0.0.1:1/gate"}},
	}
	if errs := g.cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	g.startEdge()
	g.police = signIn(t, s, "liaison", RolePolice)
	edgePins := func() int {
		var st struct {
			Pins int `json:"pins"`
		}
		getEdgeJSON(t, g.s, "http://"+g.node.Addr()+"/api/v1/recordings", &st)
		return st.Pins
	}

	// The camera as the edge records it, 40 s ago: the change at 10 s.
	base := time.Now().Add(-40 * time.Second).UTC().Truncate(time.Second)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	for i, c := range []*sim.Clip{first, second} {
		pts0 := time.Duration(i) * 10 * time.Second
		for _, p := range c.Packets {
			size := 0
			for _, nalu := range p.AU {
				size += 4 + len(nalu)
			}
			g.node.OnAccessUnit("gate-cam", streams.AccessUnit{Codec: c.Info.Codec, NALUs: p.AU, PTS: pts0 + p.PTS, Time: base.Add(pts0 + p.PTS),
				TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: size})
			time.Sleep(time.Millisecond) // as a camera would, never faster than the store writes
		}
	}
	from, to := at(5*time.Second), at(15*time.Second)
	r := g.request("CASE-CHANGE", from, to)

	// Mid-way through the second part: the first is at central, its pins
	// kept; the second is an item of its own, stored; the edge pins both.
	select {
	case <-stopping:
	case <-time.After(60 * time.Second):
		t.Fatal("the fetch never reached chunk 1 of the second part")
	}
	mid, err := s.retr.get(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(mid.Items) != 2 || mid.Items[0].Status != RetrievalReady || mid.Items[0].PinsReleased || mid.Items[1].Part != 1 ||
		!mid.Items[1].From.Equal(at(10*time.Second)) || !mid.Items[1].To.Equal(to) || mid.Items[1].Export == nil {
		t.Fatalf("mid-way: %+v", mid.Items)
	}
	if n := edgePins(); n != 2 {
		t.Errorf("mid-way the edge holds %d pins, want 2 (one per part)", n)
	}

	// Central stops and starts again on the same data.
	addr, hub := s.Addr(), s.EdgeAddr()
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	time.Sleep(200 * time.Millisecond) // Close has cancelled the workers' context
	close(proceed)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(s.cfg.DataDir)
	cfg.Listen, cfg.EdgeHub.Listen = addr, hub // the edge redials the hub it knows
	s2 := newServer(t, cfg)
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	g.s, g.police = s2, signIn(t, s2, "liaison", RolePolice) // the requester: only they (and supervisors, admins) see the request
	r = g.waitStatus(r.ID, RetrievalReady, 60*time.Second)
	until(t, "pins released", 10*time.Second, func() bool {
		its := g.get(r.ID).Items
		return len(its) == 2 && its[0].PinsReleased && its[1].PinsReleased
	})
	r = g.get(r.ID)

	want := []struct {
		codec, probe     string
		w, h, frames     int
		start, end, next time.Duration // from base
		file             string
		fromT            time.Time // the range asked of the edge starts here
	}{
		{codec: "H264", probe: "h264", w: 640, h: 360, frames: 60, start: 4 * time.Second, end: 10 * time.Second, next: 10 * time.Second,
			file: northID + "--gate-cam.mp4", fromT: from},
		{codec: "H265", probe: "hevc", w: 320, h: 240, frames: 50, start: 10 * time.Second, end: 15 * time.Second,
			file: northID + "--gate-cam+part2.mp4", fromT: at(10 * time.Second)},
	}
	if len(r.Items) != len(want) {
		t.Fatalf("%d items, want %d: %+v", len(r.Items), len(want), r.Items)
	}
	var released []string
	videos := map[string][]byte{} // by SHA-256
	for i, w := range want {
		it := r.Items[i]
		m := it.Export
		wantNext := time.Time{}
		if w.next > 0 {
			wantNext = at(w.next)
		}
		if it.Part != i || !it.From.Equal(w.fromT) || !it.To.Equal(to) || m.Codec != w.codec || m.Width != w.w || m.Height != w.h ||
			m.Frames != w.frames || !m.Start.Equal(at(w.start)) || !m.End.Equal(at(w.end)) || !m.Next.Equal(wantNext) || filepath.Base(it.File) != w.file {
			t.Errorf("item %d: part %d %s..%s, file %s, export %s %dx%d %d frames %s..%s next %s; want %+v", i, it.Part, it.From, it.To, it.File,
				m.Codec, m.Width, m.Height, m.Frames, m.Start, m.End, m.Next, w)
		}
		if it.ChunksVerified != it.ChunksTotal {
			t.Errorf("item %d: %d of %d chunks verified", i, it.ChunksVerified, it.ChunksTotal)
		}
		// Central's copy is the edge's own export of the part.
		got := g.download(r.ID, i)
		if edgeMP4 := g.edgeExport(w.fromT, to); sha(got) != sha(edgeMP4) || it.SHA256 != sha(got) || m.SHA256 != sha(got) {
			t.Errorf("item %d: central holds %d bytes (%s), the edge exports %d bytes (%s)", i, len(got), sha(got), len(edgeMP4), sha(edgeMP4))
		}
		videos[sha(got)] = got
		released = append(released, it.ReleasedPins...)
	}
	// The second part resumed after the restart where it stopped: no
	// verified chunk fetched again.
	mu.Lock()
	for c := range r.Items[1].ChunksTotal {
		if n := seen[[2]int{1, c}]; n != 1 {
			t.Errorf("central restart: chunk %d of the second part received %d times", c, n)
		}
	}
	mu.Unlock()
	if r.Items[1].ChunksTotal < 3 {
		t.Errorf("the second part is %d chunks: the restart needs it to be several", r.Items[1].ChunksTotal)
	}
	for i := range want {
		if pin := wire.EvidencePinPrefix + r.ID + "-" + strconv.Itoa(i); !slices.Contains(released, pin) {
			t.Errorf("pin %s not released (released %v)", pin, released)
		}
	}
	if n := edgePins(); n != 0 {
		t.Errorf("the edge holds %d pins after both parts were released", n)
	}

	// The bundle: two MP4s, each the retrieved part, judged by ffprobe and
	// ffmpeg; it verifies as `vigil evidence verify` does.
	resp, zb := g.police.do(http.MethodGet, "/api/v1/evidence/requests/"+r.ID+"/bundle.zip", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bundle.zip: %d %s", resp.StatusCode, zb)
	}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.zip")
	if err := os.WriteFile(bundle, zb, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := evidence.VerifyFile(context.Background(), bundle, s2.EvidencePublicKey())
	if err != nil {
		t.Fatalf("the bundle does not verify: %v", err)
	}
	t.Log(evidence.Summary(res))
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	var mp4s []string
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".mp4") {
			mp4s = append(mp4s, f.Name)
		}
	}
	cams := res.Manifest.Cameras
	for _, c := range cams {
		if c.ContactSheet == "" {
			t.Errorf("%s: no contact sheet: %s", c.Video, c.ContactSheetNote)
		}
	}
	if strings.Join(mp4s, " ") != "video/gate-cam.mp4 video/gate-cam-2.mp4" || len(cams) != 2 {
		t.Fatalf("bundle MP4s %v, %d camera entries; want video/gate-cam.mp4 and video/gate-cam-2.mp4", mp4s, len(cams))
	}
	for i, w := range want {
		c := cams[i]
		if c.CameraID != "gate-cam" || c.Video != mp4s[i] || c.Codec != strings.ToLower(w.codec) || c.Width != w.w || c.Height != w.h ||
			c.Frames != w.frames || !c.Actual.Start.Equal(at(w.start)) || !c.Actual.End.Equal(at(w.end)) ||
			!c.Requested.Start.Equal(from) || !c.Requested.End.Equal(to) {
			t.Errorf("bundle entry %d: %+v, want %+v", i, c, w)
		}
		zf, err := zr.Open(c.Video)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zf)
		zf.Close()
		if err != nil {
			t.Fatal(err)
		}
		if videos[sha(b)] == nil {
			t.Errorf("%s is not a retrieved part", c.Video)
		}
		path := filepath.Join(dir, strconv.Itoa(i)+".mp4")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if p := testrig.FFprobe(t, path); p.Codec != w.probe || p.Width != w.w || p.Height != w.h || p.Frames != w.frames || !p.FirstKey ||
			math.Abs(p.Duration-(w.end-w.start).Seconds()) > 0.1 {
			t.Errorf("%s: ffprobe %+v, want %s %dx%d, %d frames over %v", c.Video, p, w.probe, w.w, w.h, w.frames, w.end-w.start)
		}
		if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s: ffmpeg decoding: %v: %s", c.Video, err, out)
		}
	}
	readme, err := zr.Open(evidence.ReadmeName)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(readme)
	readme.Close()
	for _, s := range []string{"part 1 of 2", "part 2 of 2", "640×360", "320×240", "H265"} {
		if !strings.Contains(string(rb), s) {
			t.Errorf("README.txt lacks %q", s)
		}
	}
}

// The parts of a camera's range as the worker sees them: a later part is
// added once (describing the first again only moves a part not yet
// described), takes its own range and file, and a part at central waits
// for the others before its pins go. Items stored before parts existed
// ask for the request's range.
func TestRetrievalParts(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r := EvidenceRequest{ID: "ev-1", From: at(5), To: at(15), Items: []RetrievalItem{
		{Edge: northID, Camera: "gate-cam", Status: RetrievalFetching},
		{Edge: northID, Camera: "yard-cam", Status: RetrievalQueued},
	}}
	if from, to := r.itemRange(&r.Items[0]); !from.Equal(at(5)) || !to.Equal(at(15)) {
		t.Errorf("an item stored before parts asks for %v..%v", from, to)
	}
	r.addPart(0, at(9), at(15))
	r.addPart(0, at(10), at(15)) // described again: the same part, moved
	if len(r.Items) != 3 || r.Items[2].Part != 1 || !r.Items[2].From.Equal(at(10)) || r.Items[2].Camera != "gate-cam" {
		t.Fatalf("items after adding a part: %+v", r.Items)
	}
	r.Items[2].Export = &wire.ExportManifest{Start: at(10), End: at(15)}
	r.addPart(0, at(11), at(15)) // a described part stays as it is
	if !r.Items[2].From.Equal(at(10)) {
		t.Errorf("a described part moved to %v", r.Items[2].From)
	}
	if from, to := r.itemRange(&r.Items[2]); !from.Equal(at(10)) || !to.Equal(at(15)) {
		t.Errorf("the second part asks for %v..%v", from, to)
	}
	if got := r.parts(2); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("parts of the camera: %v", got)
	}
	if a, b := itemPath(r.ID, &r.Items[0]), itemPath(r.ID, &r.Items[2]); a == b || !strings.HasSuffix(b, "--gate-cam+part2.mp4") {
		t.Errorf("files %s and %s", a, b)
	}
	// The first part at central waits for the second before its pins go.
	r.Items[0].Status, r.Items[0].Export = RetrievalReady, &wire.ExportManifest{Start: at(4), End: at(10), Next: at(10)}
	if r.workable(0) || !r.workable(2) || r.partsReady(0) {
		t.Errorf("with the second part to fetch: workable %v/%v, parts ready %v", r.workable(0), r.workable(2), r.partsReady(0))
	}
	r.Items[2].Status = RetrievalReady
	if !r.workable(0) || !r.workable(2) || !r.partsReady(0) || r.overall() == RetrievalReady {
		t.Errorf("both parts at central: workable %v/%v, parts ready %v, request %s", r.workable(0), r.workable(2), r.partsReady(0), r.overall())
	}
	r.Items[0].PinsReleased, r.Items[2].PinsReleased = true, true
	if r.workable(0) || r.workable(2) {
		t.Error("released parts are still worked on")
	}
	// A failed part: the other one is not worked on again.
	r.Items[0].PinsReleased, r.Items[2].Status = false, RetrievalFailed
	if r.workable(0) || r.overall() != RetrievalFailed {
		t.Errorf("with the second part failed: workable %v, request %s", r.workable(0), r.overall())
	}
}
