package central

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// Two enrolled edges shared by the tests.
const (
	northID    = "gate-north"
	northToken = "north-secret-token"
	southID    = "gate-south"
	southToken = "south-secret-token"
	siteID     = "village-7"
	adminToken = "admin-secret-token"
	waitFor    = 5 * time.Second // upper bound for anything a test waits on
)

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func testConfig(dir string) Config {
	return Config{
		Listen:           "127.0.0.1:0",
		DataDir:          dir,
		EdgeHub:          EdgeHubConfig{Listen: "127.0.0.1:0", SelfSignedHosts: []string{"127.0.0.1"}},
		AdminTokenSHA256: HashToken(adminToken),
		Edges: []EdgeConfig{
			{ID: northID, SiteID: siteID, TokenSHA256: HashToken(northToken)},
			{ID: southID, SiteID: siteID, TokenSHA256: HashToken(southToken)},
		},
	}
}

// newServer creates a server without starting it, so a test can adjust
// unexported knobs first; it is closed when the test ends.
func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg, testLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func startServer(t *testing.T) *Server {
	t.Helper()
	s := newServer(t, testConfig(t.TempDir()))
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func testJPEG(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 16, 9))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testAlert(edgeID, id string) wire.Alert {
	return wire.Alert{
		ID:         id,
		EdgeID:     edgeID,
		SiteID:     siteID,
		Source:     "cam-gate",
		Kind:       "motion",
		Severity:   wire.Red,
		Time:       time.Date(2025, 3, 1, 22, 15, 4, 500_000_000, time.FixedZone("CST", 8*3600)),
		TimeSource: "rtcp",
		Summary:    "person in zone road",
		Boxes:      []wire.Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}},
		Zones:      []string{"road"},
	}
}

// edgeClient is a real websocket client speaking the wire protocol.
type edgeClient struct {
	t     *testing.T
	ws    *websocket.Conn
	acked map[string]bool // acknowledged IDs not yet expected by the test
	// checkpoints are the audit checkpoints central pushed; read sets
	// them aside (central sends one after every welcome).
	checkpoints []wire.AuditCheckpoint
	// closed are the alert_closed frames read sets aside.
	closed []wire.AlertClosed
}

func dialEdge(s *Server, token string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	d := websocket.Dialer{HandshakeTimeout: waitFor, TLSClientConfig: hubTLS(s)}
	return d.Dial("wss://"+s.EdgeAddr()+wire.EdgePath, h)
}

// hubTLS trusts s's edge hub by its certificate's pin, as an edge does.
func hubTLS(s *Server) *tls.Config {
	c := uplink.Credential{CentralPin: wire.FormatPin(s.EdgePin())}
	return c.TLSConfig()
}

// connectEdge dials, says hello as id and waits for welcome.
func connectEdge(t *testing.T, s *Server, id, token string) *edgeClient {
	t.Helper()
	ws, _, err := dialEdge(s, token)
	if err != nil {
		t.Fatalf("dial edge %s: %v", id, err)
	}
	e := &edgeClient{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	e.readChallenge()
	e.send(wire.TypeHello, wire.Hello{EdgeID: id, SiteID: siteID, Software: "test", Time: time.Now().UTC()})
	return e.welcome(id)
}

// readChallenge reads central's first frame and returns its nonce.
func (e *edgeClient) readChallenge() []byte {
	e.t.Helper()
	env := e.read()
	var ch wire.Challenge
	if env.Type != wire.TypeChallenge || wire.DecodeBody(env, &ch) != nil || len(ch.Nonce) != wire.NonceBytes {
		e.t.Fatalf("want a challenge first, got %s %s", env.Type, env.Body)
	}
	return ch.Nonce
}

// welcome reads and checks central's welcome.
func (e *edgeClient) welcome(id string) *edgeClient {
	t := e.t
	t.Helper()
	env := e.read()
	if env.Type != wire.TypeWelcome {
		t.Fatalf("edge %s: got %q, want welcome", id, env.Type)
	}
	var w wire.Welcome
	if err := wire.DecodeBody(env, &w); err != nil || w.Time.IsZero() || w.Time.Location() != time.UTC {
		t.Fatalf("edge %s: bad welcome %+v: %v", id, w, err)
	}
	return e
}

func (e *edgeClient) send(typ string, body any) {
	e.t.Helper()
	frame, err := wire.Marshal(typ, body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sendRaw(frame)
}

func (e *edgeClient) sendRaw(frame []byte) {
	e.t.Helper()
	_ = e.ws.SetWriteDeadline(time.Now().Add(waitFor))
	if err := e.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		e.t.Fatalf("edge write: %v", err)
	}
}

func (e *edgeClient) read() wire.Envelope {
	e.t.Helper()
	return e.readFrame(false)
}

// readFrame reads the next frame; alert_closed frames (sent when a guard
// resolves an alert) are set aside in e.closed unless wantClosed.
func (e *edgeClient) readFrame(wantClosed bool) wire.Envelope {
	e.t.Helper()
	for {
		_ = e.ws.SetReadDeadline(time.Now().Add(waitFor))
		_, frame, err := e.ws.ReadMessage()
		if err != nil {
			e.t.Fatalf("edge read: %v", err)
		}
		env, err := wire.Unmarshal(frame)
		if err != nil {
			e.t.Fatalf("edge read: %v", err)
		}
		if env.Type == wire.TypeAuditCheckpoint {
			var cp wire.AuditCheckpoint
			if err := wire.DecodeBody(env, &cp); err != nil {
				e.t.Fatalf("edge read: %v", err)
			}
			e.checkpoints = append(e.checkpoints, cp)
			continue
		}
		if env.Type == wire.TypeAlertClosed && !wantClosed {
			var c wire.AlertClosed
			if err := wire.DecodeBody(env, &c); err != nil {
				e.t.Fatalf("edge read: %v", err)
			}
			e.closed = append(e.closed, c)
			continue
		}
		return env
	}
}

// sendAlert sends a and waits for its ack.
func (e *edgeClient) sendAlert(a wire.Alert) {
	e.t.Helper()
	e.send(wire.TypeAlert, a)
	e.expectAck(a.ID)
}

// expectAck waits for id's acknowledgement. Central coalesces acks, so
// one frame may acknowledge several IDs; they must come in sending order.
func (e *edgeClient) expectAck(id string) {
	e.t.Helper()
	if e.acked == nil {
		e.acked = map[string]bool{}
	}
	for !e.acked[id] {
		env := e.read()
		var ack wire.Ack
		if env.Type != wire.TypeAck || wire.DecodeBody(env, &ack) != nil || len(ack.IDs) == 0 {
			e.t.Fatalf("want ack for %s, got %s %s", id, env.Type, env.Body)
		}
		for _, a := range ack.IDs {
			e.acked[a] = true
		}
	}
	delete(e.acked, id)
}

// expectClosed reads until the server ends the connection and returns the
// close frame's error, or nil if the connection ended without one.
func (e *edgeClient) expectClosed() *websocket.CloseError {
	e.t.Helper()
	_ = e.ws.SetReadDeadline(time.Now().Add(waitFor))
	for range 100 {
		_, frame, err := e.ws.ReadMessage()
		if err == nil {
			e.t.Logf("frame before close: %.200s", frame)
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			e.t.Fatalf("connection still open after %v", waitFor)
		}
		return nil
	}
	e.t.Fatal("server kept sending frames instead of closing")
	return nil
}

// consoleMsgIn is a console message as a client decodes it.
type consoleMsgIn struct {
	Type      string        `json:"type"`
	Seq       uint64        `json:"seq"`
	Alert     *Record       `json:"alert"`
	Site      *SiteColour   `json:"site"`
	Sites     []SiteColour  `json:"sites"`
	Open      []Record      `json:"open"`
	OpenTotal *int          `json:"open_total"`
	Edge      *EdgePresence `json:"edge"`
}

type consoleClient struct {
	t  *testing.T
	ws *websocket.Conn
	// raw keeps "site" and "edge" messages; by default tests that count
	// alerts skip them.
	raw bool
	// pending holds messages of a batched frame not yet returned.
	pending [][]byte
	frames  int // frames read
}

func dialConsole(t *testing.T, s *Server, since uint64) *consoleClient {
	t.Helper()
	return dialConsoleURL(t, fmt.Sprintf("ws://%s/api/v1/console/ws?since=%d", s.Addr(), since))
}

func dialConsoleURL(t *testing.T, u string) *consoleClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	ws, _, err := d.Dial(u, http.Header{"Authorization": {"Bearer " + adminToken}})
	if err != nil {
		t.Fatalf("dial console: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return &consoleClient{t: t, ws: ws}
}

// next reads one message; it fails the test on error or after waitFor.
func (c *consoleClient) next() consoleMsgIn {
	c.t.Helper()
	m, err := c.tryNext(waitFor)
	if err != nil {
		c.t.Fatalf("console read: %v", err)
	}
	return m
}

func (c *consoleClient) tryNext(timeout time.Duration) (consoleMsgIn, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		var m consoleMsgIn
		if len(c.pending) == 0 {
			_, b, err := c.ws.ReadMessage()
			if err != nil {
				return m, err
			}
			c.frames++
			c.pending = bytes.Split(b, []byte("\n"))
		}
		b := c.pending[0]
		c.pending = c.pending[1:]
		if err := json.Unmarshal(b, &m); err != nil {
			return m, fmt.Errorf("bad console message %s: %w", b, err)
		}
		if c.raw || (m.Type != consoleSite && m.Type != consoleEdge) {
			return m, nil
		}
	}
}

// backlog reads changes (alerts and updates) until ready and returns
// them with ready's seq.
func (c *consoleClient) backlog() ([]Record, uint64) {
	c.t.Helper()
	var out []Record
	for range 10_000 {
		m := c.next()
		switch m.Type {
		case "alert", "update":
			if m.Alert == nil || m.Alert.Rev != m.Seq || (m.Type == "alert" && m.Alert.Seq != m.Seq) {
				c.t.Fatalf("alert message without matching record: %+v", m)
			}
			out = append(out, *m.Alert)
		case "ready":
			return out, m.Seq
		default:
			c.t.Fatalf("unexpected console message %+v", m)
		}
	}
	c.t.Fatal("no ready message")
	return nil, 0
}

// expectAlert reads the next message and checks it is the given alert.
func (c *consoleClient) expectAlert(id string, seq uint64) {
	c.t.Helper()
	m := c.next()
	if m.Type != "alert" || m.Alert == nil || m.Alert.ID != id || m.Seq != seq {
		c.t.Fatalf("want alert %s seq %d, got %+v", id, seq, m)
	}
}

// metricValue reads one counter or gauge from the server's own registry.
func metricValue(t *testing.T, s *Server, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := s.met.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m.GetLabel(), labels) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func labelsMatch[L interface {
	GetName() string
	GetValue() string
}](got []L, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range got {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getJSON fetches path from s and decodes a JSON body into v.
func getJSON(t *testing.T, s *Server, path string, v any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("GET %s: content-type %q, body %s", path, ct, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp
}

func marshalAlert(a wire.Alert) ([]byte, error) { return wire.Marshal(wire.TypeAlert, a) }
