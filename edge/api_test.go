package edge_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// consoleRoles are the roles of central's users (central.Roles), whose
// names reach the box in the access tokens central signs.
var consoleRoles = []string{"guard", "supervisor", "police_liaison", "installer", "admin"}

// apiNode starts a node with a camera (not there), a gate on the webhook
// and its setup page: every route of the local API is registered.
func apiNode(t *testing.T) *edge.Node {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "ctrl.secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := `gates:
  - id: north-gate
    cameras: [gate-cam]
gate_inputs:
  webhook:
    enabled: true
    controllers:
      - id: ctrl
        secret_file: ` + secret + `
        gates: [north-gate]
`
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(path, []byte(revConfig(filepath.Join(dir, "data"), "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node
}

// routeURL turns a route pattern into a request that reaches it.
func routeURL(addr, pattern string) (method, url string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodGet, pattern
	}
	path = strings.ReplaceAll(path, "{camera}", "gate-cam")
	q := ""
	switch {
	case strings.HasSuffix(path, "/mp4"):
		q = "?start=" + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + "&duration=2s"
	case strings.HasSuffix(path, "/jpeg"):
		q = "?at=" + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	case strings.HasSuffix(path, "/selftest"):
		q = "?window=1s"
	}
	return method, "http://" + addr + path + q
}

func call(t *testing.T, method, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestEdgeRouteTable walks every route of the box's local API as nobody,
// with bad credentials and as each role, from the node's own route table:
// nothing that shows video, pictures, gates or state, or changes anything,
// answers without a credential, and each role gets exactly what the table
// gives it. Routes registered outside the table fail the test.
func TestEdgeRouteTable(t *testing.T) {
	node := apiNode(t)
	routes := node.APIRoutes()
	now := time.Now().UTC()
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	stranger, _ := wire.SignAccessToken(strangerKey, wire.AccessClaims{EdgeID: testEdgeID, User: "x", Role: "admin", Issued: now, Expires: now.Add(time.Minute), Nonce: "n"})
	otherEdge := accessToken(t, "gate-2", "x", "admin")
	expired, _ := wire.SignAccessToken(edge.TestAccessKey, wire.AccessClaims{EdgeID: testEdgeID, User: "x", Role: "admin",
		Issued: now.Add(-time.Hour), Expires: now.Add(-10 * time.Minute), Nonce: "n"})
	bad := map[string]string{"none": "", "garbage": "hello", "another central's key": stranger,
		"another edge's token": otherEdge, "expired": expired, "edited": expired[:len(expired)-4] + "AAAA"}

	sensitive := 0
	for _, rt := range routes {
		method, url := routeURL(node.Addr(), rt.Pattern)
		switch rt.Auth {
		case "open":
			if code, _ := call(t, method, url, ""); code != http.StatusOK {
				t.Errorf("%s (open): %d", rt.Pattern, code)
			}
			continue
		case "signed":
			// The gate webhook: refused unless the controller signed it.
			if code, _ := call(t, method, url, ""); code != http.StatusUnauthorized && code != http.StatusBadRequest && code != http.StatusForbidden {
				t.Errorf("%s unsigned: %d", rt.Pattern, code)
			}
			continue
		case "setup":
			continue // TestSetupRoutesNeedTheCode (edge/setup) walks the setup page's routes
		}
		sensitive++
		for name, tok := range bad {
			if code, body := call(t, method, url, tok); code != http.StatusUnauthorized {
				t.Errorf("%s with %s credential: %d %s, want 401", rt.Pattern, name, code, body)
			}
		}
		for _, role := range consoleRoles {
			code, body := call(t, method, url, accessToken(t, testEdgeID, "u-"+role, role))
			allowed := slices.Contains(rt.Roles, role)
			switch {
			case allowed && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s as %s: %d %s, but the table allows it", rt.Pattern, role, code, body)
			case !allowed && code != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403", rt.Pattern, role, code)
			}
		}
	}
	if sensitive < 8 {
		t.Errorf("only %d credentialed routes in the table", sensitive)
	}
	// The healthz that needs nothing tells nothing about the box.
	_, body := call(t, http.MethodGet, "http://"+node.Addr()+"/api/v1/healthz", "")
	for _, leak := range []string{"edge_id", "recording_conditions", "pending_alerts", testEdgeID} {
		if strings.Contains(body, leak) {
			t.Errorf("open healthz shows %s: %s", leak, body)
		}
	}
	_, body = call(t, http.MethodGet, "http://"+node.Addr()+"/api/v1/healthz", accessToken(t, testEdgeID, "g", "guard"))
	if !strings.Contains(body, `"edge_id":"`+testEdgeID+`"`) {
		t.Errorf("healthz with a credential: %s", body)
	}

	// Every route the package registers is in the table: handlers are
	// registered only by routes() from apiRoutes().
	// An HTTP route: a pattern literal ("GET /x", "/x") or any mux.Handle
	// (the uplink's RPC router registers wire methods, not routes).
	reg := regexp.MustCompile(`\.(Handle|HandleFunc)\("([A-Z]+ )?/|\bmux\.Handle(Func)?\(`)
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(src), "\n") {
			if reg.MatchString(line) && !(f == "api.go" && strings.Contains(line, "mux.Handle(rt.Pattern, rt.handler)")) {
				t.Errorf("%s registers a route outside the table: %s", f, strings.TrimSpace(line))
			}
		}
	}
}

// TestEdgeScrapeToken: the monitoring system's token reads /metrics and
// nothing else; a wrong one reads nothing.
func TestEdgeScrapeToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.yaml")
	sum := sha256.Sum256([]byte("scrape-me"))
	body := revConfig(filepath.Join(dir, "data"), "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", "")
	body += "metrics_token_sha256: " + hex.EncodeToString(sum[:]) + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	base := "http://" + node.Addr()
	if code, body := call(t, http.MethodGet, base+"/metrics", "scrape-me"); code != http.StatusOK || !strings.Contains(body, "vigil_edge_access_records_total") {
		t.Errorf("/metrics with the scrape token: %d %.200s", code, body)
	}
	if code, _ := call(t, http.MethodGet, base+"/metrics", "scrape-me-not"); code != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token: %d", code)
	}
	for _, p := range []string{"/api/v1/cameras", "/api/v1/recordings", "/api/v1/recordings/gate-cam"} {
		if code, _ := call(t, http.MethodGet, base+p, "scrape-me"); code != http.StatusForbidden {
			t.Errorf("%s with the scrape token: %d, want 403", p, code)
		}
	}
	bad := strings.Replace(body, hex.EncodeToString(sum[:]), "abc", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := edge.LoadConfig(path); err == nil || !strings.Contains(err.Error(), "metrics_token_sha256") {
		t.Errorf("a short metrics_token_sha256: %v", err)
	}
}

// TestEdgeSelfTestFlood: security finding 2 — 100 unauthenticated
// POST /api/v1/selftest?window=1ms stored 100 red alerts at central. Now
// each is refused before it runs; with a token a 1 ms window is refused,
// and a second self-test while one runs is refused, so nothing floods.
func TestEdgeSelfTestFlood(t *testing.T) {
	var alerts atomic.Int64
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(path, []byte(revConfig(filepath.Join(dir, "data"), "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), OnAlert: func(a wire.Alert) {
		if a.Kind == "system.selftest" {
			alerts.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	url := "http://" + node.Addr() + "/api/v1/selftest?window=1ms"
	for range 100 {
		if code, _ := call(t, http.MethodPost, url, ""); code != http.StatusUnauthorized {
			t.Fatalf("unauthenticated self-test: %d", code)
		}
	}
	installer := accessToken(t, testEdgeID, "li", "installer")
	if code, _ := call(t, http.MethodPost, url, installer); code != http.StatusBadRequest {
		t.Errorf("1 ms window: %d, want 400", code)
	}
	var wg sync.WaitGroup
	codes := make(chan int, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := call(t, http.MethodPost, "http://"+node.Addr()+"/api/v1/selftest?window=1s", installer)
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	ran := 0
	for c := range codes {
		switch c {
		case http.StatusOK, http.StatusInternalServerError: // ran (500: kept, central unreachable is fine)
			ran++
		case http.StatusConflict:
		default:
			t.Errorf("concurrent self-test: %d", c)
		}
	}
	if ran < 1 || ran > 2 {
		t.Errorf("%d of 5 concurrent self-tests ran", ran)
	}
	time.Sleep(200 * time.Millisecond)
	if n := alerts.Load(); n > int64(ran) {
		t.Errorf("%d self-test alerts for %d self-tests run", n, ran)
	}
}
