package e2e

import (
	"archive/zip"
	"bytes"
	"context"
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

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/uplink/linkproxy"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// The edge of the evidence retrieval tests, as central's config enrols it.
const (
	retrievalEdge = "gate-north"
	retrievalSite = "village-7"
)

// retrievalConfig is central with the evidence edge enrolled, fetching in
// chunks of chunkSize and polling and retrying every 100 ms; faults sees
// every chunk it fetches.
func retrievalConfig(chunkSize int64, faults central.RetrievalFaults) central.Config {
	return central.Config{
		Edges:           []central.EdgeConfig{rig.Edge(retrievalEdge, retrievalSite)},
		Retrieval:       central.RetrievalConfig{ChunkSize: chunkSize, Poll: config.Duration(100 * time.Millisecond), Retry: config.Duration(100 * time.Millisecond)},
		RetrievalFaults: faults,
	}
}

// chunkFaults is the test's view of the link: it counts every chunk
// central receives, and for requests with certain case numbers flips a
// byte in one chunk or cuts the edge's connection after one (a real cut:
// the link proxy between edge and central drops it).
type chunkFaults struct {
	mu          sync.Mutex
	consoleAddr string                 // central's API, the same across restarts
	link        *linkproxy.Proxy       // the edge's way to central's hub
	cases       map[string]string      // request → case number
	seen        map[string]map[int]int // request → chunk → times received
	corrupt     map[string]int         // case number → chunk to corrupt once
	cut         map[string]int         // case number → chunk after which the link is cut once
	cuts        int
	// stop: case number → chunk at which central is stopped: the hook
	// signals stopping and holds the chunk until proceed is closed.
	stop     map[string]int
	stopping chan struct{}
	proceed  chan struct{}
}

func newChunkFaults() *chunkFaults {
	return &chunkFaults{cases: map[string]string{}, seen: map[string]map[int]int{}, corrupt: map[string]int{}, cut: map[string]int{},
		stop: map[string]int{}, stopping: make(chan struct{}), proceed: make(chan struct{})}
}

// caseOf is the case number of request id, asked of central's API as
// the admin (the hook runs in central's worker: it never fails the test).
func (f *chunkFaults) caseOf(id string) string {
	f.mu.Lock()
	c, ok := f.cases[id]
	addr := f.consoleAddr
	f.mu.Unlock()
	if ok {
		return c
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/evidence/requests/"+url.PathEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+rig.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var r central.EvidenceRequest
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
		return ""
	}
	f.mu.Lock()
	f.cases[id] = r.CaseNumber
	f.mu.Unlock()
	return r.CaseNumber
}

// hook is central's RetrievalFaults.
func (f *chunkFaults) hook(reqID string, _ int, chunk int, data []byte) []byte {
	cs := f.caseOf(reqID)
	f.mu.Lock()
	if c, ok := f.stop[cs]; ok && cs != "" && c == chunk {
		delete(f.stop, cs)
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
	if cs == "" {
		return data
	}
	if c, ok := f.corrupt[cs]; ok && c == chunk {
		delete(f.corrupt, cs)
		data = slices.Clone(data)
		data[len(data)/2] ^= 0x20
	}
	if c, ok := f.cut[cs]; ok && c == chunk {
		delete(f.cut, cs)
		f.cuts++
		f.link.Drop() // this chunk arrived; the next request finds the link gone
	}
	return data
}

func (f *chunkFaults) counts(reqID string) map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.seen[reqID])
}

// set arms a fault: m[caseNumber] = chunk.
func (f *chunkFaults) set(m map[string]int, caseNumber string, chunk int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m[caseNumber] = chunk
}

// evidenceRig is a real central, a real edge and a simulated camera.
type evidenceRig struct {
	t      *testing.T
	c      *rig.Central
	cfg    edge.Config
	node   *edge.Node
	faults *chunkFaults
	police *rig.Browser
}

func startEvidenceRig(t *testing.T) *evidenceRig {
	faults := newChunkFaults()
	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	c := rig.StartCentral(t, retrievalConfig(64<<10, faults.hook))
	link, err := linkproxy.Start(c.EdgeAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Close)
	faults.mu.Lock()
	faults.consoleAddr, faults.link = c.Addr(), link
	faults.mu.Unlock()
	g := &evidenceRig{t: t, c: c, faults: faults}
	g.cfg = edge.Config{
		EdgeID: retrievalEdge, SiteID: retrievalSite, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		// Through the link proxy: the test cuts it.
		Central: edge.CentralConfig{URL: "wss://" + link.Addr() + wire.EdgePath, Pin: c.Pin(), Token: rig.EdgeToken,
			BackoffMax: config.Duration(500 * time.Millisecond)},
		Cameras:   []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate"), Armed: true}},
		Recording: edge.RecordingConfig{PreRoll: config.Duration(2 * time.Second), PostRoll: config.Duration(3 * time.Second)},
	}
	g.node = startEvidenceEdge(t, c, g.cfg)
	g.police = c.SignIn("liaison", central.RolePolice)
	return g
}

// request files an evidence request as the liaison.
func (g *evidenceRig) request(caseNumber string, from, to time.Time) central.EvidenceRequest {
	g.t.Helper()
	body := map[string]any{"case_number": caseNumber, "reason": "burglary reported at the north gate",
		"cameras": []map[string]string{{"edge": retrievalEdge, "camera": "gate-cam"}}, "from": from, "to": to}
	resp, b := g.police.Do(http.MethodPost, "/api/v1/evidence/requests", body)
	if resp.StatusCode != http.StatusCreated {
		g.t.Fatalf("create request: %d %s", resp.StatusCode, b)
	}
	var r central.EvidenceRequest
	if err := json.Unmarshal(b, &r); err != nil {
		g.t.Fatal(err)
	}
	return r
}

func (g *evidenceRig) get(id string) central.EvidenceRequest {
	g.t.Helper()
	resp, b := g.police.Do(http.MethodGet, "/api/v1/evidence/requests/"+id, nil)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("get request: %d %s", resp.StatusCode, b)
	}
	var r central.EvidenceRequest
	if err := json.Unmarshal(b, &r); err != nil {
		g.t.Fatal(err)
	}
	return r
}

// waitStatus polls the request until its status is want.
func (g *evidenceRig) waitStatus(id, want string, within time.Duration) central.EvidenceRequest {
	g.t.Helper()
	return waitEvidence(g.t, g.police, id, want, within)
}

// download fetches an item's MP4 from central and returns it.
func (g *evidenceRig) download(id string, item int) []byte {
	g.t.Helper()
	resp, b := g.police.Do(http.MethodGet, "/api/v1/evidence/requests/"+id+"/items/"+strconv.Itoa(item)+"/video.mp4", nil)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("download: %d %s", resp.StatusCode, b)
	}
	return b
}

// bundle downloads the request's signed bundle and verifies it with
// central's evidence key, as `vigil evidence verify` does.
func (g *evidenceRig) bundle(id string) ([]byte, *evidence.Result) {
	g.t.Helper()
	resp, zb := g.police.Do(http.MethodGet, "/api/v1/evidence/requests/"+id+"/bundle.zip", nil)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("bundle.zip: %d %s", resp.StatusCode, zb)
	}
	res, err := evidence.Verify(context.Background(), bytes.NewReader(zb), int64(len(zb)), g.c.EvidencePublicKey())
	if err != nil {
		g.t.Fatalf("the bundle does not verify: %v", err)
	}
	return zb, res
}

// edgeExport is the MP4 the edge's own API exports for the range.
func (g *evidenceRig) edgeExport(from, to time.Time) []byte {
	g.t.Helper()
	u := "http://" + g.node.Addr() + "/api/v1/recordings/gate-cam/mp4?start=" + url.QueryEscape(from.Format(time.RFC3339Nano)) +
		"&duration=" + to.Sub(from).String()
	resp, err := g.c.EdgeGet(retrievalEdge, u)
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

// search runs an evidence search as user b and returns the evidence
// edge's camera.
func (g *evidenceRig) search(b *rig.Browser, query, cam string) central.CameraTimeline {
	g.t.Helper()
	resp, body := b.Do(http.MethodGet, query, nil)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("search %s: %d %s", query, resp.StatusCode, body)
	}
	var res central.SearchResult
	if err := json.Unmarshal(body, &res); err != nil {
		g.t.Fatal(err)
	}
	for _, e := range res.Edges {
		for _, c := range e.Cameras {
			if e.ID == retrievalEdge && c.ID == cam {
				return c
			}
		}
	}
	g.t.Fatalf("search: no camera %s in %+v", cam, res)
	return central.CameraTimeline{}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkItem compares the retrieved video with the edge's own export and
// the stated hash.
func (g *evidenceRig) checkItem(r central.EvidenceRequest) []byte {
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

// waitHeld waits until the fault hook holds a chunk (stopping is closed).
func waitHeld(t *testing.T, stopping <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-stopping:
	case <-time.After(60 * time.Second):
		t.Fatalf("the fetch never reached %s", what)
	}
}

// restartHeld stops central while the fault hook holds a chunk, lets the
// hook go (closing proceed) once Close has cancelled the workers, and
// starts central again on the same addresses and data.
func restartHeld(c *rig.Central, proceed chan<- struct{}) {
	stopped := make(chan struct{})
	go func() { defer close(stopped); c.Stop() }()
	time.Sleep(200 * time.Millisecond) // Close has cancelled the workers' context
	close(proceed)
	<-stopped
	c.Resume() // the edge redials the hub it knows
}

func TestEvidenceRetrievalEndToEnd(t *testing.T) {
	g := startEvidenceRig(t)
	c := g.c

	// An alert: the first crossing, 5 s into the clip.
	var alert central.Record
	rig.Until(t, "a motion alert at central", 30*time.Second, func() bool {
		for _, r := range c.Alerts(100) {
			if r.Kind == "motion" && r.Source == "gate-cam" {
				alert = r
				return true
			}
		}
		return false
	})
	from, to := alert.Time.Add(-3*time.Second), alert.Time.Add(5*time.Second)
	rig.Until(t, "the range to be in the past", 15*time.Second, func() bool { return time.Now().After(to.Add(2 * time.Second)) })

	// 1. Search: the camera's recorded spans and the alert, with its workflow.
	sup := c.SignIn("sup", central.RoleSupervisor)
	q := "/api/v1/evidence/search?entrance=" + retrievalSite + "&from=" + url.QueryEscape(from.Add(-time.Minute).Format(time.RFC3339Nano)) +
		"&to=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	cam := g.search(sup, q, "gate-cam")
	if cam.RecordingsStatus != "ok" || len(cam.Recordings.Spans) == 0 {
		t.Fatalf("search: recordings %s %s %+v", cam.RecordingsStatus, cam.RecordingsError, cam.Recordings)
	}
	if sp := cam.Recordings.Spans[0]; sp.Start.After(from) || sp.End.Before(to) {
		t.Errorf("search: span %v..%v does not cover %v..%v", sp.Start, sp.End, from, to)
	}
	if !slices.ContainsFunc(cam.Alerts, func(r central.Record) bool { return r.ID == alert.ID && r.State != "" }) {
		t.Errorf("search: alert %s not on the camera's timeline: %+v", alert.ID, cam.Alerts)
	}
	t.Logf("search: %d span(s), %d gap(s), %d alert(s); clock offset %d ms (%s)", len(cam.Recordings.Spans), len(cam.Recordings.Gaps),
		len(cam.Alerts), cam.Recordings.ClockOffsetMS, cam.Recordings.ClockOffsetSource)
	// By alert: the window is found from the alert.
	if resp, b := sup.Do(http.MethodGet, "/api/v1/evidence/search?alert="+url.QueryEscape(alert.ID), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("search by alert: %d %s", resp.StatusCode, b)
	}

	// 2. A request completes: the MP4 is the edge's export, byte for byte,
	// and ffprobe agrees with the manifest; the pins are released.
	r := g.request("CASE-1", from, to)
	r = g.waitStatus(r.ID, central.RetrievalReady, 60*time.Second)
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
	rig.Until(t, "pins released", 10*time.Second, func() bool { return g.get(r.ID).Items[0].PinsReleased })
	r = g.get(r.ID)
	rel := r.Items[0].ReleasedPins
	if !slices.Contains(rel, wire.EvidencePinPrefix+r.ID+"-0") || !slices.Contains(rel, alert.ID) {
		t.Errorf("released pins %v, want the retrieval's and the alert's (%s)", rel, alert.ID)
	}

	// The signed bundle of the request verifies offline and holds the
	// verified file, the edge's facts and the alert with its workflow; a
	// flipped byte is named.
	g.checkBundle(r, alert.ID)

	// 3. A chunk corrupted in transit is detected and fetched again.
	g.faults.set(g.faults.corrupt, "CASE-CORRUPT", 1)
	rc := g.request("CASE-CORRUPT", from, to)
	rc = g.waitStatus(rc.ID, central.RetrievalReady, 60*time.Second)
	g.checkItem(rc)
	if n := g.faults.counts(rc.ID); rc.Items[0].ChunksRejected != 1 || n[1] != 2 || n[0] != 1 {
		t.Errorf("corrupted chunk: %d rejected, received %v", rc.Items[0].ChunksRejected, n)
	}

	// 4. The link is cut mid-fetch: the fetch resumes where it stopped,
	// never fetching a verified chunk again.
	g.faults.set(g.faults.cut, "CASE-CUT", 1)
	rx := g.request("CASE-CUT", from, to)
	rx = g.waitStatus(rx.ID, central.RetrievalReady, 60*time.Second)
	g.checkItem(rx)
	n := g.faults.counts(rx.ID)
	for i := range rx.Items[0].ChunksTotal {
		if n[i] != 1 {
			t.Errorf("link cut: chunk %d received %d times (%v)", i, n[i], n)
		}
	}
	g.faults.mu.Lock()
	cuts := g.faults.cuts
	g.faults.mu.Unlock()
	if cuts != 1 {
		t.Errorf("the link was cut %d times", cuts)
	}
	t.Logf("link cut: %d chunks, %d fetch attempts", rx.Items[0].ChunksTotal, rx.Items[0].ChunksFetched)

	// 5. The edge is offline when the request is made: it waits, and
	// completes when the edge is back.
	g.node.Close()
	rig.Until(t, "edge gone", 10*time.Second, func() bool { return !c.Online(retrievalEdge) })
	ro := g.request("CASE-OFFLINE", from, to)
	if ro.Status != central.RetrievalWaiting {
		t.Errorf("offline edge: status %s, want %s", ro.Status, central.RetrievalWaiting)
	}
	// Search says the edge is offline and still shows the alert and the copies central holds.
	cam = g.search(sup, q, "gate-cam")
	if cam.RecordingsStatus != "edge_offline" || len(cam.Alerts) == 0 || len(cam.Retrieved) < 3 {
		t.Errorf("search (offline): %s, %d alerts, %d retrieved", cam.RecordingsStatus, len(cam.Alerts), len(cam.Retrieved))
	}
	time.Sleep(time.Second)
	if st := g.get(ro.ID).Status; st != central.RetrievalWaiting {
		t.Errorf("offline edge: status %s after a second, want %s", st, central.RetrievalWaiting)
	}
	g.node = startEvidenceEdge(t, c, g.cfg)
	ro = g.waitStatus(ro.ID, central.RetrievalReady, 60*time.Second)
	g.checkItem(ro)

	// 6. Central stops mid-fetch and starts again on the same data: the
	// fetch resumes from the last verified chunk.
	g.faults.set(g.faults.stop, "CASE-RESTART", 2)
	rs := g.request("CASE-RESTART", from, to)
	waitHeld(t, g.faults.stopping, "chunk 2")
	restartHeld(c, g.faults.proceed)
	g.police = c.SignIn("liaison", central.RolePolice) // the requester: only they (and supervisors, admins) see the request
	rs = g.waitStatus(rs.ID, central.RetrievalReady, 60*time.Second)
	g.checkItem(rs)
	n = g.faults.counts(rs.ID)
	for i := range rs.Items[0].ChunksTotal {
		if n[i] != 1 {
			t.Errorf("central restart: chunk %d received %d times (%v)", i, n[i], n)
		}
	}
	t.Logf("central restart: %d chunks, %d fetch attempts", rs.Items[0].ChunksTotal, rs.Items[0].ChunksFetched)
}

// checkBundle downloads the request's bundle and verifies it: the video
// is the file central verified, as h264, with the alert and the contact
// sheet the edge made; one flipped byte in the video fails it, naming
// the MP4.
func (g *evidenceRig) checkBundle(r central.EvidenceRequest, alertID string) {
	t := g.t
	t.Helper()
	zb, res := g.bundle(r.ID)
	m := res.Manifest
	if len(m.Cameras) != 1 {
		t.Fatalf("bundle: %d cameras, want 1: %+v", len(m.Cameras), m.Cameras)
	}
	sums := map[string]string{} // member → SHA-256
	for _, f := range m.Files {
		sums[f.Name] = f.SHA256
	}
	c := m.Cameras[0]
	if sums[c.Video] != r.Items[0].SHA256 || c.Codec != "h264" ||
		!slices.ContainsFunc(c.Alerts, func(a json.RawMessage) bool { return strings.Contains(string(a), alertID) }) {
		t.Errorf("bundle camera: video %s (sha256 %s, central verified %s), codec %s, alerts %s", c.Video, sums[c.Video], r.Items[0].SHA256,
			c.Codec, c.Alerts)
	}
	// Every camera has the contact sheet its edge made (central decodes
	// nothing): the stored file, byte for byte, as the manifest lists it.
	sheets := map[string]string{}
	for _, it := range r.Items {
		sheets[it.ContactSheetSHA256] = it.ContactSheet
	}
	for _, c := range m.Cameras {
		if sum := sums[c.ContactSheet]; c.ContactSheet == "" || sheets[sum] == "" {
			t.Errorf("%s: contact sheet %q (sha256 %s, note %q) is not one the edge sent (%v)", c.CameraID, c.ContactSheet, sum, c.ContactSheetNote, sheets)
		}
	}
	t.Logf("bundle: %d bytes, %d files, camera %s %s %dx%d %d frames %.3f s, clock %s, offset %.0f ms, %d alert(s)",
		len(zb), len(m.Files), c.CameraID, c.Codec, c.Width, c.Height, c.Frames, c.DurationSeconds, c.ClockSource, c.ClockOffsetMS, len(c.Alerts))
	// One flipped byte inside the video.
	b := slices.Clone(zb)
	i := bytes.Index(b, []byte("mdat"))
	if i < 0 {
		t.Fatal("no mdat in the bundle")
	}
	b[i+1000] ^= 1
	if _, err := evidence.Verify(context.Background(), bytes.NewReader(b), int64(len(b)), g.c.EvidencePublicKey()); err == nil || !strings.Contains(err.Error(), ".mp4") {
		t.Errorf("a flipped byte in the video: %v, want a failure naming the MP4", err)
	}
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

// changeFaults counts every chunk central receives, by item, and holds
// central at chunk 1 of the added part (item 1) until proceed is closed.
type changeFaults struct {
	mu       sync.Mutex
	seen     map[[2]int]int
	stopped  bool
	stopping chan struct{}
	proceed  chan struct{}
}

func (f *changeFaults) hook(_ string, item, chunk int, data []byte) []byte {
	f.mu.Lock()
	stop := !f.stopped && item == 1 && chunk == 1
	f.stopped = f.stopped || stop
	f.mu.Unlock()
	if stop {
		close(f.stopping)
		<-f.proceed
	}
	f.mu.Lock()
	f.seen[[2]int{item, chunk}]++
	f.mu.Unlock()
	return data
}

// feedChange delivers the camera's video to the edge as it would record
// it from base on: clips one after another, 10 s each.
func feedChange(node *edge.Node, base time.Time, clips ...*sim.Clip) {
	for i, c := range clips {
		pts0 := time.Duration(i) * 10 * time.Second
		for _, p := range c.Packets {
			size := 0
			for _, nalu := range p.AU {
				size += 4 + len(nalu)
			}
			node.OnAccessUnit("gate-cam", streams.AccessUnit{Codec: c.Info.Codec, NALUs: p.AU, PTS: pts0 + p.PTS, Time: base.Add(pts0 + p.PTS),
				TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: size})
			time.Sleep(time.Millisecond) // as a camera would, never faster than the store writes
		}
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
	// The link: every chunk received, by item; central is stopped when
	// chunk 1 of the added part (item 1) arrives.
	faults := &changeFaults{seen: map[[2]int]int{}, stopping: make(chan struct{}), proceed: make(chan struct{})}
	clip := func(w, h int, h265 bool) *sim.Clip {
		return testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: w, Height: h, Bursts: []footage.Burst{{Start: 2, End: 6}}, H265: h265})
	}
	first, second := clip(640, 360, false), clip(320, 240, true)

	c := rig.StartCentral(t, retrievalConfig(8<<10, faults.hook))
	g := &evidenceRig{t: t, c: c}
	g.cfg = edge.Config{
		EdgeID: retrievalEdge, SiteID: retrievalSite, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: c.Uplink(500 * time.Millisecond),
		// Nothing answers there: the test delivers the camera's video itself.
		Cameras: []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: "rtsp://127.0.0.1:1/gate"}},
	}
	g.node = startEvidenceEdge(t, c, g.cfg)
	g.police = c.SignIn("liaison", central.RolePolice)
	edgePins := func() int {
		var st struct {
			Pins int `json:"pins"`
		}
		c.EdgeJSON(retrievalEdge, "http://"+g.node.Addr()+"/api/v1/recordings", &st)
		return st.Pins
	}

	// The camera as the edge records it, 40 s ago: the change at 10 s.
	base := time.Now().Add(-40 * time.Second).UTC().Truncate(time.Second)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	feedChange(g.node, base, first, second)
	from, to := at(5*time.Second), at(15*time.Second)
	r := g.request("CASE-CHANGE", from, to)

	// Mid-way through the second part: the first is at central, its pins
	// kept; the second is an item of its own, stored; the edge pins both.
	waitHeld(t, faults.stopping, "chunk 1 of the second part")
	mid := g.get(r.ID)
	if len(mid.Items) != 2 || mid.Items[0].Status != central.RetrievalReady || mid.Items[0].PinsReleased || mid.Items[1].Part != 1 ||
		!mid.Items[1].From.Equal(at(10*time.Second)) || !mid.Items[1].To.Equal(to) || mid.Items[1].Export == nil {
		t.Fatalf("mid-way: %+v", mid.Items)
	}
	if n := edgePins(); n != 2 {
		t.Errorf("mid-way the edge holds %d pins, want 2 (one per part)", n)
	}

	// Central stops and starts again on the same data.
	restartHeld(c, faults.proceed)
	g.police = c.SignIn("liaison", central.RolePolice) // the requester: only they (and supervisors, admins) see the request
	r = g.waitStatus(r.ID, central.RetrievalReady, 60*time.Second)
	rig.Until(t, "pins released", 10*time.Second, func() bool {
		its := g.get(r.ID).Items
		return len(its) == 2 && its[0].PinsReleased && its[1].PinsReleased
	})
	r = g.get(r.ID)

	want := []changePart{
		{codec: "H264", probe: "h264", w: 640, h: 360, frames: 60, start: 4 * time.Second, end: 10 * time.Second, next: 10 * time.Second,
			file: retrievalEdge + "--gate-cam.mp4", fromT: from},
		{codec: "H265", probe: "hevc", w: 320, h: 240, frames: 50, start: 10 * time.Second, end: 15 * time.Second,
			file: retrievalEdge + "--gate-cam+part2.mp4", fromT: at(10 * time.Second)},
	}
	videos := g.checkParts(r, base, to, want)
	// The second part resumed after the restart where it stopped: no
	// verified chunk fetched again.
	faults.mu.Lock()
	for k := range r.Items[1].ChunksTotal {
		if n := faults.seen[[2]int{1, k}]; n != 1 {
			t.Errorf("central restart: chunk %d of the second part received %d times", k, n)
		}
	}
	faults.mu.Unlock()
	if r.Items[1].ChunksTotal < 3 {
		t.Errorf("the second part is %d chunks: the restart needs it to be several", r.Items[1].ChunksTotal)
	}
	if n := edgePins(); n != 0 {
		t.Errorf("the edge holds %d pins after both parts were released", n)
	}
	g.checkPartsBundle(r, base, from, to, want, videos)
}

// changePart is what one part of TestEvidenceRetrievalAcrossChange
// should be.
type changePart struct {
	codec, probe     string
	w, h, frames     int
	start, end, next time.Duration // from base
	file             string
	fromT            time.Time // the range asked of the edge starts here
}

// checkParts compares each part with what it should be and with the
// edge's own export of it, and checks every part's pin was released; it
// returns the parts' videos by SHA-256.
func (g *evidenceRig) checkParts(r central.EvidenceRequest, base, to time.Time, want []changePart) map[string][]byte {
	t := g.t
	t.Helper()
	at := func(d time.Duration) time.Time { return base.Add(d) }
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
	for i := range want {
		if pin := wire.EvidencePinPrefix + r.ID + "-" + strconv.Itoa(i); !slices.Contains(released, pin) {
			t.Errorf("pin %s not released (released %v)", pin, released)
		}
	}
	return videos
}

// checkPartsBundle: the bundle holds two MP4s, each a retrieved part,
// judged by ffprobe and ffmpeg, and verifies as `vigil evidence verify`
// does; its README describes both parts.
func (g *evidenceRig) checkPartsBundle(r central.EvidenceRequest, base, from, to time.Time, want []changePart, videos map[string][]byte) {
	t := g.t
	t.Helper()
	at := func(d time.Duration) time.Time { return base.Add(d) }
	zb, res := g.bundle(r.ID)
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
	dir := t.TempDir()
	for i, w := range want {
		c := cams[i]
		if c.CameraID != "gate-cam" || c.Video != mp4s[i] || c.Codec != strings.ToLower(w.codec) || c.Width != w.w || c.Height != w.h ||
			c.Frames != w.frames || !c.Actual.Start.Equal(at(w.start)) || !c.Actual.End.Equal(at(w.end)) ||
			!c.Requested.Start.Equal(from) || !c.Requested.End.Equal(to) {
			t.Errorf("bundle entry %d: %+v, want %+v", i, c, w)
		}
		b := zipMember(t, zr, c.Video)
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
	readme := zipMember(t, zr, evidence.ReadmeName)
	for _, s := range []string{"part 1 of 2", "part 2 of 2", "640×360", "320×240", "H265"} {
		if !bytes.Contains(readme, []byte(s)) {
			t.Errorf("README.txt lacks %q", s)
		}
	}
}

// zipMember is the content of the member called name.
func zipMember(t *testing.T, zr *zip.Reader, name string) []byte {
	t.Helper()
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
