package central

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestEdgeVideoReadsOnCentralRecord: a real edge's local API serves
// recordings only with a token central issued, and every read reaches
// central's audit log with who and what range — also a read made while
// central was down, delivered once after it came back.
func TestEdgeVideoReadsOnCentralRecord(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hub := ln.Addr().String()
	ln.Close()
	cfg := testConfig(dir)
	cfg.EdgeHub.Listen = hub
	start := func() *Server {
		s, err := New(cfg, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	defer func() { s.Close() }()

	ecfg := edge.Config{
		EdgeID: northID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: edge.CentralConfig{URL: "wss://" + hub + wire.EdgePath, Token: northToken, Pin: wire.FormatPin(s.EdgePin()), BackoffMax: config.Duration(300 * time.Millisecond)},
		Cameras: []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: "rtsp://127.0.0.1:1/gate"}},
	}
	node, err := edge.Start(ecfg, edge.Options{Log: testrig.Logger(t), UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	until(t, "edge connected", 10*time.Second, func() bool { return s.edges.connected(northID) })

	police := signIn(t, s, "zhao", RolePolice)
	resp, body := police.do(http.MethodPost, "/api/v1/edges/"+northID+"/access-tokens", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &tok)
	edgeAPI := "http://" + node.Addr()
	get := func(path, bearer string) int {
		req, _ := http.NewRequest(http.MethodGet, edgeAPI+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	jpeg := "/api/v1/recordings/gate-cam/jpeg?at=" + url.QueryEscape(at)
	if code := get(jpeg, ""); code != http.StatusUnauthorized {
		t.Fatalf("picture without a credential: %d", code)
	}
	if code := get(jpeg, tok.Token); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Fatalf("picture with central's token: %d", code)
	}
	target := northID + "/gate-cam"
	var got []string
	defer func() {
		if t.Failed() {
			for _, e := range auditEntries(t, s, "") {
				t.Logf("audit: %s %s/%s %s %s", e.Action, e.Actor.User, e.Actor.Role, e.Target, e.Details)
			}
		}
	}()
	until(t, "the picture read in central's audit log", 30*time.Second, func() bool {
		for _, e := range auditEntries(t, s, "action=view&target="+url.QueryEscape(target)) {
			var d map[string]any
			_ = json.Unmarshal(e.Details, &d)
			req, _ := d["request"].(map[string]any)
			if e.Actor.User == "zhao" && e.Actor.Role == RolePolice && d["via"] == "edge" && req["at"] == at {
				return true
			}
			got = append(got, string(e.Details))
		}
		return false
	})

	// Central goes away; a download on the box waits in its outbox.
	s.Close()
	until(t, "the edge sees central gone", 10*time.Second, func() bool { return !node.Uplink().Connected() })
	from := time.Now().Add(-2 * time.Minute).UTC().Format(time.RFC3339)
	mp4 := "/api/v1/recordings/gate-cam/mp4?start=" + url.QueryEscape(from) + "&duration=30s"
	if code := get(mp4, tok.Token); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Fatalf("download while central is down: %d (the box must check tokens on its own)", code)
	}
	s = start()
	until(t, "the download made offline in central's audit log", 30*time.Second, func() bool {
		n := 0
		for _, e := range auditEntries(t, s, "action=download&target="+url.QueryEscape(target)) {
			var d map[string]any
			_ = json.Unmarshal(e.Details, &d)
			req, _ := d["request"].(map[string]any)
			if e.Actor.User == "zhao" && req["start"] == from && req["duration"] == "30s" {
				n++
			}
		}
		return n == 1
	})
	// Still once after the edge reconnects again.
	s.edges.kick(northID, 1001, "test: reconnect")
	until(t, "edge back", 10*time.Second, func() bool { return s.edges.connected(northID) })
	n := 0
	for _, e := range auditEntries(t, s, "action=download&target="+url.QueryEscape(target)) {
		if e.Actor.User == "zhao" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d download entries for one download", n)
	}
}
