package edge

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestSetupChangesReachAuditOutbox: a change made on the node's setup page
// is queued for central's audit log (outbox) as the installer's, with
// the client's address; a wrong code is not.
func TestSetupChangesReachAuditOutbox(t *testing.T) {
	path := writeConfig(t, strings.Replace(goodConfig, "rtsp://10.0.0.5:554/stream1", "rtsp://127.0.0.1:1/gate", 1))
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := OpenRevisions(cfg.DataDir).Adopt(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(cfg, Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	code, err := os.ReadFile(filepath.Join(cfg.DataDir, setup.CodeFile))
	if err != nil {
		t.Fatal(err)
	}
	post := func(p, code string, body any) int {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", "http://"+n.Addr()+p, bytes.NewReader(b))
		req.Header.Set("X-Setup-Code", strings.TrimSpace(code))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	zones := map[string]any{"camera": "cam-1", "zones": []setup.Zone{{Name: "path", Points: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 0.5}}}}}
	if c := post("/setup/api/zones/save", "0000-0000-0000", zones); c != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d", c)
	}
	if c := post("/setup/api/zones/save", string(code), zones); c != http.StatusOK {
		t.Fatalf("zones: %d", c)
	}
	if c := post("/setup/api/finish", string(code), nil); c != http.StatusOK {
		t.Fatalf("finish: %d", c)
	}
	ents, err := n.box.After(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []wire.AccessRecord
	for _, e := range ents {
		if e.Kind != wire.TypeAccess {
			continue
		}
		var a wire.AccessRecord
		if err := json.Unmarshal(e.Body, &a); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if len(got) != 2 {
		t.Fatalf("access records %+v", got)
	}
	for i, want := range []string{"gate-1/zones/cam-1", "gate-1/setup"} {
		a := got[i]
		if a.Action != "config_change" || a.Target != want || a.User != "setup-code" || !strings.HasPrefix(a.Client, "127.0.0.1:") ||
			strings.Contains(string(a.Details), strings.TrimSpace(string(code))) {
			t.Errorf("record %d: %+v %s", i, a, a.Details)
		}
	}
}
