package central

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// get fetches path with the admin token.
func get(t *testing.T, s *Server, path string) (*http.Response, []byte) {
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
	return resp, body
}

func TestHTTPAlertsListAndPaging(t *testing.T) {
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	for i := 1; i <= 5; i++ {
		edge.sendAlert(testAlert(northID, fmt.Sprintf("h-%d", i)))
	}

	var page alertsPage
	getJSON(t, s, "/api/v1/alerts", &page)
	if len(page.Alerts) != 5 || page.Next != 5 || page.Alerts[0].Seq != 1 {
		t.Fatalf("default page: %d alerts, next %d", len(page.Alerts), page.Next)
	}
	a := page.Alerts[0]
	if a.Time.Location() != time.UTC || a.ReceivedAt.IsZero() || a.EdgeID != northID || a.TimeSource != "rtcp" {
		t.Fatalf("record = %+v", a)
	}
	getJSON(t, s, "/api/v1/alerts?since=2&limit=2", &page)
	if len(page.Alerts) != 2 || page.Alerts[0].Seq != 3 || page.Next != 4 {
		t.Fatalf("since=2 limit=2: %+v", page)
	}
	getJSON(t, s, "/api/v1/alerts?since=5", &page)
	if page.Alerts == nil || len(page.Alerts) != 0 || page.Next != 5 {
		t.Fatalf("past the end: %+v", page)
	}

	// The JSON field names are the console's and the edge team's contract.
	_, body := get(t, s, "/api/v1/alerts?limit=1")
	for _, field := range []string{`"id":`, `"edge_id":`, `"site_id":`, `"source":`, `"kind":`, `"severity":"red"`,
		`"time":"2025-03-01T14:15:04.5Z"`, `"time_source":`, `"summary":`, `"boxes":`, `"zones":`, `"seq":1`, `"received_at":`, `"next":1`} {
		if !bytes.Contains(body, []byte(field)) {
			t.Errorf("alerts JSON lacks %s: %s", field, body)
		}
	}

	for _, bad := range []struct{ query, param string }{
		{"since=-1", "since"},
		{"since=abc", "since"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
	} {
		var e apiError
		resp := getJSON(t, s, "/api/v1/alerts?"+bad.query, &e)
		if resp.StatusCode != http.StatusBadRequest || e.Param != bad.param || !strings.Contains(e.Error, bad.param) {
			t.Errorf("%s: %d %+v, want 400 naming %s", bad.query, resp.StatusCode, e, bad.param)
		}
	}
}

func TestHTTPAlertAndSnapshot(t *testing.T) {
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	jpg := testJPEG(t)
	withPic := testAlert(northID, "gate/north 1") // IDs are opaque; URLs escape them
	withPic.Snapshot = jpg
	withPic.SnapshotTime = withPic.Time
	edge.sendAlert(withPic)
	edge.sendAlert(testAlert(northID, "no-pic"))

	var rec Record
	resp := getJSON(t, s, "/api/v1/alerts/gate%2Fnorth%201", &rec)
	if resp.StatusCode != http.StatusOK || rec.ID != "gate/north 1" || rec.SnapshotURL == "" {
		t.Fatalf("GET alert: %d %+v", resp.StatusCode, rec)
	}
	resp, body := get(t, s, rec.SnapshotURL)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(body, jpg) {
		t.Fatalf("GET %s: %d %q %d bytes", rec.SnapshotURL, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}

	for _, path := range []string{"/api/v1/alerts/missing", "/api/v1/alerts/missing/snapshot.jpg", "/api/v1/alerts/no-pic/snapshot.jpg"} {
		var e apiError
		if resp := getJSON(t, s, path, &e); resp.StatusCode != http.StatusNotFound || e.Error == "" {
			t.Errorf("GET %s: %d %+v, want 404", path, resp.StatusCode, e)
		}
	}
}

func TestHTTPEdgesAndHealthz(t *testing.T) {
	s := startServer(t)
	var health struct {
		Status            string `json:"status"`
		EdgesOnline       int    `json:"edges_online"`
		EdgesConfigured   int    `json:"edges_configured"`
		ConsolesConnected int    `json:"consoles_connected"`
		LastSeq           uint64 `json:"last_seq"`
	}
	if resp := getJSON(t, s, "/api/v1/healthz", &health); resp.StatusCode != http.StatusOK || health.Status != "ok" ||
		health.EdgesOnline != 0 || health.EdgesConfigured != 2 {
		t.Fatalf("healthz before: %d %+v", resp.StatusCode, health)
	}

	edge := connectEdge(t, s, northID, northToken)
	lastFrame := time.Date(2025, 3, 1, 14, 0, 0, 0, time.UTC)
	edge.send(wire.TypeHeartbeat, wire.Heartbeat{Time: time.Now().UTC(), Outbox: 2, Cameras: []wire.CameraStatus{
		{ID: "cam-gate", Online: true, LastFrame: lastFrame},
		{ID: "cam-wall", Online: false, Error: "no route to host"},
	}})
	edge.sendAlert(testAlert(northID, "z-1")) // its ack orders it after the heartbeat

	var body struct{ Edges []EdgeStatus }
	getJSON(t, s, "/api/v1/edges", &body)
	if len(body.Edges) != 2 {
		t.Fatalf("edges: %+v", body.Edges)
	}
	north, south := body.Edges[0], body.Edges[1]
	if north.ID != northID || !north.Online || north.LastSeen.IsZero() || north.Outbox != 2 || north.Software != "test" ||
		len(north.Cameras) != 2 || !north.Cameras[0].LastFrame.Equal(lastFrame) || north.Cameras[1].Error == "" {
		t.Fatalf("north = %+v", north)
	}
	if south.ID != southID || south.Online || south.Cameras == nil {
		t.Fatalf("south = %+v", south)
	}
	getJSON(t, s, "/api/v1/healthz", &health)
	if health.EdgesOnline != 1 || health.LastSeq != 1 {
		t.Fatalf("healthz after: %+v", health)
	}

	edge.ws.Close()
	eventually(t, "north offline", func() bool {
		getJSON(t, s, "/api/v1/edges", &body)
		return !body.Edges[0].Online && len(body.Edges[0].Cameras) == 2 // last report kept
	})
}

func TestHTTPMetrics(t *testing.T) {
	s := startServer(t)
	resp, body := get(t, s, "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	for _, name := range []string{
		"vigil_central_alerts_received_total", "vigil_central_alerts_duplicate_total",
		"vigil_central_edges_connected", "vigil_central_consoles_connected",
		"vigil_central_console_dropped_total", `vigil_central_edge_rejected_total{reason="unauthorized"}`,
		"go_goroutines", "process_",
	} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestHTTPConsolePage(t *testing.T) {
	s := startServer(t)
	resp, body := get(t, s, "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy || !strings.HasPrefix(got, "default-src 'self';") || !strings.Contains(got, "frame-ancestors 'none'") {
		t.Fatalf("CSP = %q", got)
	}
	for _, want := range []string{`src="app.js"`, `type="module"`, `data-testid="alert-card"`, `href="style.css"`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("index.html lacks %s", want)
		}
	}

	resp, body = get(t, s, "/app.js")
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("GET /app.js: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"/api/v1/console/ws", "?since=", "'snapshot'", "'update'", "./localtime.js", "textContent"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	// Times are shown in the watch room's zone, by the module every page uses.
	if resp, lt := get(t, s, "/localtime.js"); resp.StatusCode != http.StatusOK || !bytes.Contains(lt, []byte("timeZone: 'Asia/Shanghai'")) {
		t.Errorf("GET /localtime.js: %d, Asia/Shanghai in it: %v", resp.StatusCode, bytes.Contains(lt, []byte("Asia/Shanghai")))
	}
	if bytes.Contains(body, []byte("innerHTML")) {
		t.Error("app.js uses innerHTML")
	}
	if resp, _ := get(t, s, "/style.css"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("GET /style.css: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, s, "/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /nope.js: %d", resp.StatusCode)
	}
}
