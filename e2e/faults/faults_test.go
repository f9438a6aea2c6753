// Package faults injects faults into a running Vigil made of separate
// processes — `vigil central` and `vigil edge` built from this tree — and
// checks what an operator must be able to rely on: nothing the edge
// acknowledged is lost, nothing arrives twice.
package faults

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/wire"
)

const (
	edgeToken  = "faults-edge-token-0123456789"
	adminToken = "faults-admin-token-0123456789"
	secret     = "faults-controller-secret-0123456789abcdef"
)

func repoRoot(t *testing.T) string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..")
}

// certPin is the pin (wire.FormatPin) of the PEM certificate in path.
func certPin(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return wire.FormatPin(wire.CertPin(c))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one vigil process; its output goes to a file the test prints on
// failure.
type proc struct {
	cmd *exec.Cmd
	log string
}

func start(t *testing.T, bin, logPath string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := &proc{cmd: cmd, log: logPath}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// inNetns re-runs the test named run in a network namespace of its own
// (`unshare -n`; `unshare -r -n` without root), with only loopback up: its
// processes, ports and kills cannot touch anything else on the machine.
func inNetns(t *testing.T, run string, env ...string) {
	t.Helper()
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("no %s (make deps installs util-linux and iproute2)", tool)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `ip link set lo up && exec "$0" -test.run="^$1\$" -test.v -test.count=1`
	ns := []string{"-n"}
	if os.Geteuid() != 0 {
		ns = []string{"-r", "-n"}
	}
	cmd := exec.Command("unshare", append(ns, "--", "sh", "-c", script, exe, run)...)
	cmd.Env = append(append(os.Environ(), "VIGIL_FAULTS_NETNS=1"), env...)
	out, err := cmd.CombinedOutput()
	// Quoted so the runner's count does not see the inner result twice.
	t.Logf("in a network namespace of its own:\n%s", strings.ReplaceAll(string(out), "--- ", "· "))
	if err != nil || !strings.Contains(string(out), "--- PASS: "+run) {
		t.Fatalf("namespaced run failed: %v", err)
	}
}

func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %v: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEdgeKilledNothingAcknowledgedLost sends signed SOS presses (each on a
// gate of its own, so each is one alert) in bursts of concurrent webhook
// requests and kills the edge with SIGKILL at several moments: while
// requests are in flight, right after the last 200, 300 ms later. After a
// restart every event that was answered 200 is an alert at central, and no
// gate has two. (The first version answered 200 before the event was
// durable: 0 of 400 survived a kill 0.3 s later.)
func TestEdgeKilledNothingAcknowledgedLost(t *testing.T) {
	bin := os.Getenv("VIGIL_FAULTS_BIN")
	if os.Getenv("VIGIL_FAULTS_NETNS") != "1" {
		bin = filepath.Join(t.TempDir(), "vigil")
		build := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
		build.Dir = repoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		inNetns(t, "TestEdgeKilledNothingAcknowledgedLost", "VIGIL_FAULTS_BIN="+bin)
		return
	}
	dir := t.TempDir()

	const cycles, requests, perRequest = 4, 5, 10
	gatesN := cycles * requests * perRequest
	var gateIDs []string
	for i := range gatesN {
		gateIDs = append(gateIDs, fmt.Sprintf("g%03d", i))
	}
	centralAddr, hubAddr, edgeAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	os.WriteFile(filepath.Join(dir, "central.yaml"), []byte(fmt.Sprintf(`listen: %s
data_dir: %s
admin_token_sha256: %s
edge_hub:
  listen: %s
  self_signed_hosts: [127.0.0.1]
edges:
  - id: gate-1
    site_id: village-1
    token_sha256: %s
`, centralAddr, filepath.Join(dir, "central"), central.HashToken(adminToken), hubAddr, central.HashToken(edgeToken))), 0o600)
	// The edge connects to the TLS edge hub, trusting central's
	// self-signed certificate (made at central's first start) by its pin.
	start(t, bin, filepath.Join(dir, "central.log"), "central", "--config", filepath.Join(dir, "central.yaml"))
	waitHTTP(t, "http://"+centralAddr+"/api/v1/healthz", 30*time.Second)
	pin := certPin(t, filepath.Join(dir, "central", "tls", "edge-hub.crt"))
	os.WriteFile(filepath.Join(dir, "ctrl.secret"), []byte(secret+"\n"), 0o600)
	var gatesYAML strings.Builder
	for _, g := range gateIDs {
		fmt.Fprintf(&gatesYAML, "  - id: %s\n    arming:\n      always: true\n", g)
	}
	os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(fmt.Sprintf(`edge_id: gate-1
site_id: village-1
listen: %s
data_dir: %s
central:
  url: wss://%s/api/v1/edge/ws
  pin: %s
  token: %s
  backoff_max: 1s
cameras:
  - id: cam
    url: rtsp://127.0.0.1:1/none
gates:
%sgate_inputs:
  webhook:
    enabled: true
    controllers:
      - id: ctrl
        secret_file: %s
        gates: [%s]
`, edgeAddr, filepath.Join(dir, "edge"), hubAddr, pin, edgeToken, gatesYAML.String(), filepath.Join(dir, "ctrl.secret"), strings.Join(gateIDs, ", "))), 0o600)

	startEdge := func() *proc {
		p := start(t, bin, filepath.Join(dir, "edge.log"), "edge", "--config", filepath.Join(dir, "edge.yaml"))
		waitHTTP(t, "http://"+edgeAddr+"/api/v1/healthz", 30*time.Second)
		return p
	}
	defer func() {
		if t.Failed() {
			for _, l := range []string{"edge.log", "central.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, l))
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("---- %s (end) ----\n%s", l, b)
			}
		}
	}()

	var mu sync.Mutex
	acked := map[string]bool{} // gate → its SOS was answered 200
	send := func(ctx context.Context, gates []string) {
		var evs []map[string]any
		for _, g := range gates {
			evs = append(evs, map[string]any{"id": "sos-" + g, "gate": g, "type": "button", "time": time.Now().UTC()})
		}
		body, _ := json.Marshal(map[string]any{"events": evs})
		req, err := webhook.NewRequest(ctx, "http://"+edgeAddr+"/api/v1/gates/events", "ctrl", secret, body, time.Now())
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // killed mid-request: not acknowledged
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			mu.Lock()
			for _, g := range gates {
				acked[g] = true
			}
			mu.Unlock()
		} else if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("webhook: %d %s", resp.StatusCode, bytes.TrimSpace(b))
		}
	}
	// When, in each cycle, the edge is killed.
	kills := []struct {
		name  string
		after func(sent <-chan struct{}) // returns when it is time to kill
	}{
		{"with requests in flight", func(<-chan struct{}) { time.Sleep(3 * time.Millisecond) }},
		{"right after the last 200", func(sent <-chan struct{}) { <-sent }},
		{"300 ms after the last 200", func(sent <-chan struct{}) { <-sent; time.Sleep(300 * time.Millisecond) }},
		{"2 s after the last 200", func(sent <-chan struct{}) { <-sent; time.Sleep(2 * time.Second) }},
	}
	// count gives the SOS alerts at central per gate.
	count := func() (map[string]int, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+centralAddr+"/api/v1/alerts?limit=1000", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var page struct {
			Alerts []struct {
				Source string `json:"source"`
				Kind   string `json:"kind"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			return nil, err
		}
		n := map[string]int{}
		for _, a := range page.Alerts {
			if a.Kind == "gate.sos" {
				n[a.Source]++
			}
		}
		return n, nil
	}
	delivered := func(within time.Duration) (time.Duration, bool) {
		t0 := time.Now()
		for time.Since(t0) < within {
			got, err := count()
			mu.Lock()
			missing := 0
			for g := range acked {
				if got[g] == 0 {
					missing++
				}
			}
			mu.Unlock()
			if err == nil && missing == 0 {
				return time.Since(t0), true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return within, false
	}
	edge := startEdge()
	for c, k := range kills {
		sent := make(chan struct{})
		var wg sync.WaitGroup
		for r := range requests {
			i := (c*requests + r) * perRequest
			wg.Add(1)
			go func() { defer wg.Done(); send(context.Background(), gateIDs[i:i+perRequest]) }()
		}
		go func() { wg.Wait(); close(sent) }()
		k.after(sent)
		edge.kill()
		<-sent
		mu.Lock()
		t.Logf("cycle %d: SIGKILL %s; %d events acknowledged so far", c+1, k.name, len(acked))
		mu.Unlock()
		edge = startEdge()
		if d, ok := delivered(30 * time.Second); ok {
			t.Logf("cycle %d: every acknowledged press at central %v after the restarted edge answered", c+1, d.Round(time.Millisecond))
		}
	}
	restarted := time.Now()

	deadline := time.Now().Add(30 * time.Second)
	var got map[string]int
	for {
		var err error
		got, err = count()
		missing := 0
		for g := range acked {
			if got[g] == 0 {
				missing++
			}
		}
		if err == nil && missing == 0 {
			t.Logf("all acknowledged presses at central %v after the last restart answered", time.Since(restarted).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged SOS presses never reached central (err %v)", missing, len(acked), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // late duplicates would show now
	got, _ = count()
	for g, n := range got {
		if n > 1 {
			t.Errorf("gate %s: %d SOS alerts at central for one press", g, n)
		}
	}
	if len(acked) < gatesN/2 {
		t.Errorf("only %d of %d events were acknowledged: the test did not exercise much", len(acked), gatesN)
	}
	t.Logf("%d events acknowledged, %d SOS alerts at central (every acknowledged one, none twice), %d sent", len(acked), len(got), gatesN)
}
