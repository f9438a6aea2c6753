package edge_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// fakeCentral accepts one edge connection (a bearer-token edge: no
// signature checked), does the handshake and hands the connection over.
func fakeCentral(t *testing.T) (url string, conns <-chan *websocket.Conn) {
	t.Helper()
	ch := make(chan *websocket.Conn, 4)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		nonce := make([]byte, wire.NonceBytes)
		_, _ = rand.Read(nonce)
		if b, err := wire.Marshal(wire.TypeChallenge, wire.Challenge{Nonce: nonce, Time: time.Now().UTC()}); err == nil {
			_ = c.WriteMessage(websocket.TextMessage, b)
		}
		if _, _, err := c.ReadMessage(); err != nil { // hello
			c.Close()
			return
		}
		if b, err := wire.Marshal(wire.TypeWelcome, wire.Welcome{Time: time.Now().UTC()}); err == nil {
			_ = c.WriteMessage(websocket.TextMessage, b)
		}
		ch <- c
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + wire.EdgePath, ch
}

// Every method of the wire (wire.Methods) is routed on a running node,
// and each reaches its handler over the uplink: camera methods answer
// for a camera the edge lacks with its own not_available, the rest with
// their own answers; a method the edge does not know is bad_request.
func TestRequestRoutesOnNode(t *testing.T) {
	url, conns := fakeCentral(t)
	_, _, cfg := writeRevConfig(t, url)
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	routed := node.Uplink().Routes().Methods()
	if want := slices.Sorted(slices.Values(wire.Methods())); !slices.Equal(routed, want) {
		t.Fatalf("routed methods %v, want every wire method %v", routed, want)
	}

	var conn *websocket.Conn
	select {
	case conn = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("the edge did not connect")
	}
	defer conn.Close()
	answers := make(chan wire.Response, 64)
	go func() {
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				close(answers)
				return
			}
			env, err := wire.Unmarshal(frame)
			var r wire.Response
			if err != nil || env.Type != wire.TypeResponse || wire.DecodeBody(env, &r) != nil {
				continue // alerts, heartbeats
			}
			answers <- r
		}
	}()
	ask := func(req wire.Request) wire.Response {
		t.Helper()
		b, err := wire.Marshal(wire.TypeRequest, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r, ok := <-answers:
				if !ok {
					t.Fatal("connection ended")
				}
				if r.ID == req.ID && r.Final {
					return r
				}
			case <-deadline:
				t.Fatalf("%s: no answer", req.Method)
			}
		}
	}

	from := time.Now().Add(-time.Hour)
	to := from.Add(time.Minute)
	key := &wire.EvidenceParams{Key: "item-1", ChunkSize: 1 << 20, Length: 1 << 20}
	valid := map[string]wire.Request{
		wire.MethodClip:            {Camera: "no-cam", From: from, To: to},
		wire.MethodThumbnail:       {Camera: "no-cam", At: from},
		wire.MethodLiveStart:       {Camera: "no-cam"},
		wire.MethodLiveStop:        {Camera: "no-cam"},
		wire.MethodRecordings:      {Camera: "no-cam", From: from, To: to},
		wire.MethodExportInfo:      {Camera: "no-cam", From: from, To: to, Evidence: key},
		wire.MethodExportRange:     {Camera: "no-cam", From: from, To: to, Evidence: key},
		wire.MethodRelease:         {Camera: "no-cam", From: from, To: to, Evidence: key},
		wire.MethodContactSheet:    {Camera: "no-cam", From: from, To: to, Evidence: key},
		wire.MethodConfig:          {Revision: "r1", Config: []byte(`"edge_id: ["`)},
		wire.MethodSetupReopen:     {},
		wire.MethodAuditCheckpoint: {},
		wire.MethodPlayback:        {Camera: "no-cam", From: from, To: from.Add(time.Second), Playback: &wire.PlaybackParams{Origin: from}},
		wire.MethodOverlay:         {Camera: "no-cam", From: from, To: to},
	}
	want := map[string]string{ // status, where the handler's is known
		wire.MethodConfig:          wire.StatusBadRequest, // the revision is refused
		wire.MethodSetupReopen:     wire.StatusOK,         // {"reopened":true}
		wire.MethodAuditCheckpoint: wire.StatusNotAvailable,
	}
	for i, m := range wire.Methods() {
		req, ok := valid[m]
		if !ok {
			t.Errorf("%s: no request in this test", m)
			continue
		}
		req.ID, req.Method = "q"+string(rune('a'+i)), m
		if err := req.Validate(); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		r := ask(req)
		if strings.Contains(r.Error, "no handler") {
			t.Errorf("%s: not routed: %s", m, r.Error)
			continue
		}
		if req.Camera != "" {
			if r.Status != wire.StatusNotAvailable || !strings.Contains(r.Error, "no camera no-cam") {
				t.Errorf("%s of a camera the edge lacks: %s %q", m, r.Status, r.Error)
			}
		} else if r.Status != want[m] {
			t.Errorf("%s: %s %q, want %s", m, r.Status, r.Error, want[m])
		}
	}
	// A camera the edge has reaches the live hub itself.
	if r := ask(wire.Request{ID: "live-1", Method: wire.MethodLiveStop, Camera: "gate-cam"}); r.Status != wire.StatusOK || !strings.Contains(string(r.Data), `"stopped":false`) {
		t.Errorf("live_stop of gate-cam: %s %q %s", r.Status, r.Error, r.Data)
	}
	if r := ask(wire.Request{ID: "odd-1", Method: "frobnicate", Camera: "gate-cam"}); r.Status != wire.StatusBadRequest {
		t.Errorf("unknown method: %s %q, want bad_request", r.Status, r.Error)
	}
}
