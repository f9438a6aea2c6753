package edge_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

func randomSecret(t *testing.T) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestGateGPIOAndWebhookRefusals: a door contact on a (simulated) GPIO line
// opens the gate, seen on the edge API; a bad signature is refused.
func TestGateGPIOAndWebhookRefusals(t *testing.T) {
	line := gpio.NewSimLine(false)
	secret := randomSecret(t)
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: token},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", URL: "rtsp://127.0.0.1:1/none"}},
		Gates:   []conf.GateConfig{{ID: "side-gate", Name: "Side gate", Cameras: []string{"gate-cam"}}},
		GateInputs: conf.GateInputsConfig{
			Webhook: conf.WebhookInputConfig{Enabled: true, Controllers: []conf.WebhookControllerConfig{{ID: "ctrl", Secret: secret, Gates: []string{"side-gate"}}}},
			GPIO:    &conf.GPIOInputConfig{Lines: []conf.GPIOLineConfig{{Offset: 4, Gate: "side-gate", Input: "door-contact", Role: "door"}}},
		},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	var mu sync.Mutex
	var raised []wire.Alert
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t),
		OpenGPIOLine: func(chip string, offset int, o gpio.LineOptions) (gpio.Line, error) {
			if chip != "gpiochip0" || offset != 4 {
				return nil, fmt.Errorf("unexpected line %s/%d", chip, offset)
			}
			return line, nil
		},
		OnAlert: func(a wire.Alert) { mu.Lock(); raised = append(raised, a); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	// Every gate, camera and controller series is on /metrics from
	// start-up, at 0, before its first event.
	metrics := getText(t, "http://"+node.Addr()+"/metrics")
	for _, want := range []string{
		`vigil_gate_events_total{gate="side-gate",type="button"} 0`,
		`vigil_gate_events_total{gate="side-gate",type="arm"} 0`,
		`vigil_gate_alerts_total{cause="forced",gate="side-gate",severity="red"} 0`,
		`vigil_gate_alerts_total{cause="arming",gate="side-gate",severity="green"} 0`,
		`vigil_gate_snapshot_failures_total{camera="gate-cam"} 0`,
		`vigil_gate_webhook_events_total{controller="ctrl"} 0`,
		`vigil_gate_webhook_requests_total{result="forbidden_gate"} 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	door := func() string {
		var st struct {
			Gates []struct {
				Door string `json:"door"`
			} `json:"gates"`
		}
		getJSON(t, "http://"+node.Addr()+"/api/v1/gates", &st)
		return st.Gates[0].Door
	}
	waitFor := func(want string) {
		deadline := time.Now().Add(5 * time.Second)
		for door() != want {
			if time.Now().After(deadline) {
				t.Fatalf("door did not become %s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("closed") // the level read at start
	line.Set(true)
	waitFor("open")

	// A request signed with the wrong secret is refused and counted.
	body := []byte(`{"id":"e1","gate":"side-gate","type":"opened"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, "http://"+node.Addr()+"/api/v1/gates/events", bytes.NewReader(body))
	req.Header.Set("X-Vigil-Controller", "ctrl")
	req.Header.Set("X-Vigil-Timestamp", ts)
	req.Header.Set("X-Vigil-Signature", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad signature: %s, want 401", resp.Status)
	}
	if m := getText(t, "http://"+node.Addr()+"/metrics"); !strings.Contains(m, `vigil_gate_webhook_requests_total{result="bad_signature"} 1`) {
		t.Error("refusal not counted")
	}
	// Disarmed and never granted: the opening is a passage (an event, not an alert).
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, a := range raised {
		if strings.HasPrefix(a.Kind, "gate.") {
			t.Errorf("unexpected gate alert %s %s", a.Kind, a.Summary)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := apiGet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := apiGet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
