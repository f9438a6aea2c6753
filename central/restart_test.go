package central

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"github.com/gorilla/websocket"
)

// Close releases the port and the Badger lock; a new Server on the same
// address and directory has every alert and continues the sequence.
func TestRestartSameAddressAndDataDir(t *testing.T) {
	cfg := testConfig(t.TempDir())
	first, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	edge := connectEdge(t, first, northID, northToken)
	for i := 1; i <= 3; i++ {
		edge.sendAlert(testAlert(northID, fmt.Sprintf("k-%d", i)))
	}
	console := dialConsole(t, first, 0)
	console.backlog()

	// Close with an edge and a console still connected: both are told why.
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if ce := edge.expectClosed(); ce == nil || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("edge saw %v, want 1001 going away", ce)
	}
	if _, err := console.tryNext(waitFor); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("console saw %v, want 1001 going away", err)
	}
	if err := first.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}

	cfg.Listen = first.Addr()
	second := newServer(t, cfg)
	if err := second.Start(); err != nil {
		t.Fatalf("restart on %s: %v", cfg.Listen, err)
	}
	if second.Addr() != cfg.Listen {
		t.Fatalf("restarted on %s, want %s", second.Addr(), cfg.Listen)
	}

	var page alertsPage
	getJSON(t, second, "/api/v1/alerts", &page)
	if len(page.Alerts) != 3 || page.Next != 3 {
		t.Fatalf("after restart: %d alerts, next %d", len(page.Alerts), page.Next)
	}
	edge = connectEdge(t, second, northID, northToken)
	edge.sendAlert(testAlert(northID, "k-2")) // unacked before the restart, re-sent
	edge.sendAlert(testAlert(northID, "k-4"))
	console = dialConsole(t, second, 2)
	recs, ready := console.backlog()
	if len(recs) != 2 || recs[0].ID != "k-3" || recs[1].ID != "k-4" || recs[1].Seq != 4 || ready != 4 {
		t.Fatalf("backlog after restart: %+v ready %d", recs, ready)
	}
}

// Every goroutine the server starts ends by Close, even with an edge and a
// console connected and an HTTP keep-alive connection open.
func TestCloseEndsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := New(testConfig(t.TempDir()), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	edge := connectEdge(t, s, northID, northToken)
	edge.sendAlert(testAlert(northID, "g-1"))
	console := dialConsole(t, s, 0)
	console.backlog()
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get("http://" + s.Addr() + "/api/v1/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Clients answer the close handshake, as real ones do.
	closed := make(chan struct{}, 2)
	go func() { edge.ws.ReadMessage(); closed <- struct{}{} }()
	go func() { console.ws.ReadMessage(); closed <- struct{}{} }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-closed
	<-closed
	edge.ws.Close()
	console.ws.Close()
	client.CloseIdleConnections()
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
