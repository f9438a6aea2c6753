package uplink_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

const (
	site    = "lotus/north/wall/gate-a"
	waitMax = 15 * time.Second
	// adminToken reads central's REST API: every /api/v1 route needs a
	// session or the admin bearer token.
	adminToken = "uplink-test-admin-token"
)

// adminGet is GET path on central's API as admin.
func adminGet(t *testing.T, s *central.Server, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// startCentral runs a real central with a TLS edge hub on hubAddr
// ("127.0.0.1:0" for any port) and data in dir.
func startCentral(t *testing.T, dir, hubAddr string) *central.Server {
	t.Helper()
	sum := sha256.Sum256([]byte(adminToken))
	s, err := central.New(central.Config{Listen: "127.0.0.1:0", DataDir: dir, AdminTokenSHA256: hex.EncodeToString(sum[:]),
		EdgeHub: central.EdgeHubConfig{Listen: hubAddr, SelfSignedHosts: []string{"127.0.0.1"}}}, testrig.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// enrolEdge enrols id at s the way `vigil edge enroll` does, optionally
// through a proxy address instead of the hub's own.
func enrolEdge(t *testing.T, s *central.Server, id, via string) uplink.Credential {
	t.Helper()
	tok, _, err := s.CreateEnrolmentToken(id, site, "test-admin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if via == "" {
		via = s.EdgeAddr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitMax)
	defer cancel()
	cred, err := uplink.Enroll(ctx, uplink.EnrolOptions{Central: "https://" + via, Token: tok, Software: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// testEdge is an outbox and an uplink running against central.
type testEdge struct {
	id  string
	box *outbox.Outbox
	up  *uplink.Uplink

	mu    sync.Mutex
	acked []string

	cancel context.CancelFunc
	done   chan struct{}
}

// startEdge runs an uplink for cfg (URL, credential or token set by the
// caller) over a fresh outbox; it stops when the test ends.
func startEdge(t *testing.T, id string, cfg uplink.Config) *testEdge {
	t.Helper()
	box, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"), testrig.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEdge{id: id, box: box, done: make(chan struct{})}
	cfg.EdgeID, cfg.SiteID, cfg.Software = id, site, "test"
	if cfg.BackoffMin == 0 && cfg.BackoffMax == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 50*time.Millisecond, 300*time.Millisecond
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 200 * time.Millisecond
	}
	cfg.OnAck = func(ids []string) {
		e.mu.Lock()
		e.acked = append(e.acked, ids...)
		e.mu.Unlock()
	}
	e.up = uplink.New(cfg, box, nil, nil, testrig.Logger(t))
	var ctx context.Context
	ctx, e.cancel = context.WithCancel(context.Background())
	go func() { defer close(e.done); e.up.Run(ctx) }()
	t.Cleanup(e.stop)
	return e
}

func (e *testEdge) stop() {
	e.cancel()
	<-e.done
	e.box.Close()
}

// raise appends an alert with a predictable ID.
func (e *testEdge) raise(t *testing.T, n int, sev wire.Severity) string {
	t.Helper()
	id := fmt.Sprintf("%s-%05d", e.id, n)
	if err := e.box.Append(wire.Alert{ID: id, EdgeID: e.id, SiteID: site, Source: "cam", Kind: "motion",
		Severity: sev, Time: time.Now().UTC(), Summary: "test"}); err != nil {
		t.Fatal(err)
	}
	return id
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getJSON(t *testing.T, s *central.Server, path string, v any) {
	t.Helper()
	resp := adminGet(t, s, path)
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// allAlerts pages through central's alerts in creation order.
func allAlerts(t *testing.T, s *central.Server) []central.Record {
	t.Helper()
	var out []central.Record
	var since uint64
	for range 1000 {
		var page struct {
			Alerts []central.Record `json:"alerts"`
			Next   uint64           `json:"next"`
		}
		getJSON(t, s, fmt.Sprintf("/api/v1/alerts?since=%d&limit=1000", since), &page)
		out = append(out, page.Alerts...)
		if len(page.Alerts) == 0 {
			return out
		}
		since = page.Next
	}
	t.Fatal("too many pages")
	return nil
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}
