package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates/journal"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// journalNode starts an edge with one gate and a webhook controller over
// dataDir (central unreachable: alerts stay in the outbox); raised gets
// every alert the node queues.
func journalNode(t *testing.T, dataDir, secret string, raised func(wire.Alert), change ...func(*conf.Config)) *edge.Node {
	t.Helper()
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: dataDir,
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: token},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", URL: "rtsp://127.0.0.1:1/none"}},
		Gates:   []conf.GateConfig{{ID: "side-gate", Name: "Side gate", Cameras: []string{"gate-cam"}}},
		GateInputs: conf.GateInputsConfig{
			Webhook: conf.WebhookInputConfig{Enabled: true, Controllers: []conf.WebhookControllerConfig{{ID: "ctrl", Secret: secret, Gates: []string{"side-gate"}}}},
		},
	}
	for _, c := range change {
		c(&cfg)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), OnAlert: raised})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// captured is a signed webhook request as a controller (or an attacker
// on the wire) would send it again: same timestamp, body and signature.
type captured struct {
	header http.Header
	body   []byte
}

func capture(t *testing.T, secret string, body []byte) captured {
	t.Helper()
	req, err := webhook.NewRequest(context.Background(), "http://x/", "ctrl", secret, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return captured{header: req.Header, body: body}
}

func (c captured) send(addr string) (int, webhook.Response, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/gates/events", bytes.NewReader(c.body))
	if err != nil {
		return 0, webhook.Response{}, err
	}
	req.Header = c.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, webhook.Response{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r webhook.Response
	if err := json.Unmarshal(b, &r); err != nil {
		return resp.StatusCode, r, fmt.Errorf("%d %s: %w", resp.StatusCode, b, err)
	}
	return resp.StatusCode, r, nil
}

// eventsBody is a batch of n events of kind typ from devices prefix-0…
func eventsBody(prefix, typ string, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%s-%d","gate":"side-gate","device":"%s-%d","type":"%s","time":"%s"}`, prefix, i, prefix, i, typ, now)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestGateJournalReplayAfterRestart: a captured signed SOS delivered once,
// then sent again after the edge restarted over the same data dir, is a
// duplicate (409 replayed) and raises no second alert.
func TestGateJournalReplayAfterRestart(t *testing.T) {
	dir, secret := t.TempDir(), randomSecret(t)
	var mu sync.Mutex
	var sos []string
	raised := func(a wire.Alert) {
		if a.Kind == "gate.sos" {
			mu.Lock()
			sos = append(sos, a.ID)
			mu.Unlock()
		}
	}
	req := capture(t, secret, []byte(`{"id":"sos-1","gate":"side-gate","device":"booth","type":"button"}`))

	node := journalNode(t, dir, secret, raised)
	if code, res, err := req.send(node.Addr()); err != nil || code != http.StatusOK || res.Accepted != 1 {
		t.Fatalf("first delivery: %d %+v %v", code, res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(sos)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no SOS alert")
		}
		time.Sleep(10 * time.Millisecond)
	}
	node.Close()

	node = journalNode(t, dir, secret, raised)
	defer node.Close()
	code, res, err := req.send(node.Addr())
	if err != nil || code != http.StatusConflict || res.Accepted != 0 || res.Duplicates != 1 || res.Code != webhook.CodeReplayed {
		t.Fatalf("replay after restart: %d %+v %v; want 409 replayed, 1 duplicate", code, res, err)
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(sos) != 1 {
		t.Fatalf("%d SOS alerts (%v), want 1", len(sos), sos)
	}
}

// burst sends 10 concurrent signed requests of 100 battery_low events
// (each from its own device, so each raises its own alert) and returns
// the devices answered 200 and how long the slowest answer took.
func burst(t *testing.T, addr, secret, tag string) (accepted []string, took time.Duration) {
	t.Helper()
	reqs := make([]captured, 10)
	for c := range reqs {
		reqs[c] = capture(t, secret, eventsBody(fmt.Sprintf("%s%d", tag, c), "battery_low", 100))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for c, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, res, err := r.send(addr)
			if err != nil || code != http.StatusOK || res.Accepted != 100 {
				t.Errorf("request %d: %d %+v %v", c, code, res, err)
				return
			}
			mu.Lock()
			for i := range 100 {
				accepted = append(accepted, fmt.Sprintf("%s%d-%d", tag, c, i))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return accepted, time.Since(start)
}

// TestGateJournalBurstCrash: a 1,000-event burst is answered once durable
// (the figure is logged); the edge "crashes" right after the last 200 (its
// journal directory is copied as it is on disk at that instant, torn tail
// and all, the way kill -9 leaves it). The copy holds every accepted event:
// those done (their alerts were in the outbox) and the rest, which a new
// edge over the copy steps exactly once each and then marks done.
func TestGateJournalBurstCrash(t *testing.T) {
	dir, secret := t.TempDir(), randomSecret(t)
	node := journalNode(t, dir, secret, nil)
	accepted, took := burst(t, node.Addr(), secret, "b")
	// kill -9 now: what is on disk is what the next start sees.
	crash := t.TempDir()
	jdir := filepath.Join(crash, "gates", "journal")
	copyDir(t, filepath.Join(dir, "gates", "journal"), jdir)
	node.Close()

	j, err := journal.Open(jdir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done, pending := j.DoneUpTo(), j.Pending()
	j.Close()
	t.Logf("burst: %d events in 10 concurrent signed requests durable (all answered 200) in %v; at the crash %d were done, %d to replay",
		len(accepted), took.Round(time.Millisecond), done, len(pending))
	if int(done)+len(pending) != len(accepted) {
		t.Fatalf("journal after the crash: %d done + %d pending, want all %d accepted", done, len(pending), len(accepted))
	}
	for i, r := range pending {
		if r.Seq != done+1+uint64(i) {
			t.Fatalf("pending[%d] has seq %d, want %d", i, r.Seq, done+1+uint64(i))
		}
	}

	node = journalNode(t, crash, secret, nil)
	metric := fmt.Sprintf(`vigil_gate_events_total{gate="side-gate",type="battery_low"} %d`+"\n", len(pending))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(getText(t, "http://"+node.Addr()+"/metrics"), metric) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s", metric)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The same captured burst again: all duplicates.
	if code, res, err := capture(t, secret, eventsBody("b0", "battery_low", 100)).send(node.Addr()); err != nil || code != http.StatusConflict || res.Duplicates != 100 {
		t.Errorf("burst resent after restart: %d %+v %v; want 409 with 100 duplicates", code, res, err)
	}
	time.Sleep(200 * time.Millisecond)
	if !strings.Contains(getText(t, "http://"+node.Addr()+"/metrics"), metric) {
		t.Errorf("events stepped again after the replay: want %s", metric)
	}
	node.Close()
	j, err = journal.Open(jdir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if p := j.Pending(); len(p) != 0 || j.DoneUpTo() != uint64(len(accepted)) {
		t.Fatalf("after the replay: %d pending, done up to %d; want 0 and %d", len(p), j.DoneUpTo(), len(accepted))
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGateGrantReplayAfterRestartCannotCoverForcing: security finding 8.
// A captured signed "granted" replayed after the edge restarted (over the
// same data dir, within the webhook's accepted window) is refused as
// replayed, so the door opened right after it is still a forced opening:
// one red alert, not a passage. (A grant admits an opening for its
// grant window, 1 s here; the replay comes after it, well within the
// webhook's 5-minute window.)
func TestGateGrantReplayAfterRestartCannotCoverForcing(t *testing.T) {
	dir, secret := t.TempDir(), randomSecret(t)
	var mu sync.Mutex
	var forced []wire.Alert
	raised := func(a wire.Alert) {
		if a.Kind == "gate.forced" {
			mu.Lock()
			forced = append(forced, a)
			mu.Unlock()
		}
	}
	grant := capture(t, secret, []byte(`{"id":"grant-1","gate":"side-gate","device":"reader","type":"granted","credential":"card-17"}`))
	short := func(c *conf.Config) {
		c.Gates[0].GrantWindow, c.Gates[0].Arming = config.Duration(time.Second), conf.ArmingConfig{Always: true}
	}
	node := journalNode(t, dir, secret, raised, short)
	if code, res, err := grant.send(node.Addr()); err != nil || code != http.StatusOK || res.Accepted != 1 {
		t.Fatalf("first delivery of the grant: %d %+v %v", code, res, err)
	}
	time.Sleep(1500 * time.Millisecond) // the grant's window ends: nobody walked through
	node.Close()

	node = journalNode(t, dir, secret, raised, short)
	defer node.Close()
	code, res, err := grant.send(node.Addr())
	if err != nil || code != http.StatusConflict || res.Code != webhook.CodeReplayed {
		t.Fatalf("grant replayed after a restart: %d %+v %v; want 409 replayed", code, res, err)
	}
	open := capture(t, secret, []byte(`{"id":"open-1","gate":"side-gate","device":"door","type":"opened"}`))
	if code, res, err := open.send(node.Addr()); err != nil || code != http.StatusOK {
		t.Fatalf("door opened: %d %+v %v", code, res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(forced)
		mu.Unlock()
		if n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the door opened after a replayed grant raised no forced alert: the replay passed for a passage")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if forced[0].Severity != wire.Red {
		t.Errorf("forced opening is %s", forced[0].Severity)
	}
}
