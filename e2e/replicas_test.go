package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/internal/testrig/tcplb"
	"github.com/vigil-perimeter/vigil/wire"
)

// replicaProc is one `vigil-central` process of a replicated central.
type replicaProc struct {
	name         string
	dir          string
	console, hub string
	cmd          *exec.Cmd
	out          *testrig.LogBuffer
	exited       chan error
}

// startReplicaProc writes a central.yaml for a replica on url and runs
// vigil-central with it until the test ends (or kill).
func startReplicaProc(t *testing.T, bin, name, url, keys, hubCert string, edges []string) *replicaProc {
	t.Helper()
	dir := t.TempDir()
	p := &replicaProc{name: name, dir: dir, console: freePort(t), hub: freePort(t), out: &testrig.LogBuffer{}, exited: make(chan error, 1)}
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %s\ndata_dir: %s\nstore: %s\nreplica_url: http://%s\n", p.console, filepath.Join(dir, "data"), url, p.console)
	fmt.Fprintf(&y, "admin_token_sha256: %s\naudit_key_file: %s\nevidence_key_file: %s\n", central.HashToken(rig.AdminToken),
		filepath.Join(keys, "audit.key"), filepath.Join(keys, "evidence.key"))
	fmt.Fprintf(&y, "edge_hub:\n  listen: %s\n", p.hub)
	if hubCert == "" {
		fmt.Fprintf(&y, "  self_signed_hosts: [127.0.0.1]\n")
	} else {
		fmt.Fprintf(&y, "  cert_file: %s.crt\n  key_file: %s.key\n", hubCert, hubCert)
	}
	y.WriteString("edges:\n")
	for _, e := range edges {
		fmt.Fprintf(&y, "  - {id: %s, site_id: village/%s, token_sha256: %s}\n", e, e, central.HashToken("token-"+e))
	}
	conf := filepath.Join(dir, "central.yaml")
	if err := os.WriteFile(conf, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "--config", conf)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, tail(p.out.String(), 4000))
		}
	})
	rig.Until(t, name+" to answer", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + p.console + "/api/v1/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return p
}

// TestReplicaKilledUnderLoad: two vigil-central processes on one
// PostgreSQL behind a load balancer (edges and consoles each through
// one), five edges with real outboxes and uplinks raising alerts, a
// console on each replica. One replica is killed with SIGKILL half way:
// every edge and console is back within 5 s (measured), every alert an
// edge got an ack for reaches every console, none twice.
func TestReplicaKilledUnderLoad(t *testing.T) {
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "vigil-central")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vigil-central")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build vigil-central: %v\n%s", err, out)
	}
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "failover")
	keys := t.TempDir()
	edgeIDs := []string{"e1", "e2", "e3", "e4", "e5"}
	a := startReplicaProc(t, bin, "A", url, keys, "", edgeIDs)
	aTLS := filepath.Join(a.dir, "data", "tls", "edge-hub")
	b := startReplicaProc(t, bin, "B", url, keys, aTLS, edgeIDs)

	hubLB, err := tcplb.New(a.hub, b.hub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hubLB.Close() })
	consoleLB, err := tcplb.New(a.console, b.console)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { consoleLB.Close() })
	pair, err := tls.LoadX509KeyPair(aTLS+".crt", aTLS+".key")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pin := wire.CertPin(leaf)

	// Two consoles through the balancer (one lands on each replica).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type seen struct {
		mu         sync.Mutex
		count      map[string]int
		firstAfter time.Time // the first alert after the kill
	}
	var killedAt atomic.Int64 // unix ns
	consoles := []*seen{{count: map[string]int{}}, {count: map[string]int{}}}
	var cwg sync.WaitGroup
	for _, c := range consoles {
		msgs := make(chan rig.ConsoleMsg, 256)
		cwg.Add(2)
		go func() { defer cwg.Done(); rig.WatchConsole(ctx, consoleLB.Addr(), msgs, "alert") }()
		go func() {
			defer cwg.Done()
			for {
				select {
				case m := <-msgs:
					var al struct{ ID string }
					if json.Unmarshal(m.Alert, &al) == nil {
						c.mu.Lock()
						c.count[al.ID]++
						if k := killedAt.Load(); k > 0 && c.firstAfter.IsZero() && m.Arrived.UnixNano() > k {
							c.firstAfter = m.Arrived
						}
						c.mu.Unlock()
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	defer func() { cancel(); cwg.Wait() }()

	// Five edges: a real outbox and uplink each, through the balancer.
	var ackMu sync.Mutex
	acked := map[string]bool{}
	ackedAfter := map[string]time.Time{} // per edge: its first ack after the kill
	type simEdge struct {
		id  string
		box *outbox.Outbox
		up  *uplink.Uplink
	}
	var sims []*simEdge
	var ewg sync.WaitGroup
	for _, id := range edgeIDs {
		box, err := outbox.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { box.Close() })
		up := uplink.New(uplink.Config{URL: "wss://" + hubLB.Addr() + wire.EdgePath, Token: "token-" + id, EdgeID: id, SiteID: "village/" + id,
			Software: "test", Pin: pin, OnAck: func(ids []string) {
				now := time.Now()
				ackMu.Lock()
				for _, x := range ids {
					acked[x] = true
				}
				if k := killedAt.Load(); k > 0 && ackedAfter[id].IsZero() && now.UnixNano() > k {
					ackedAfter[id] = now
				}
				ackMu.Unlock()
			}}, box, nil, nil, slog.New(slog.DiscardHandler))
		sims = append(sims, &simEdge{id: id, box: box, up: up})
		ewg.Add(1)
		go func() { defer ewg.Done(); _ = up.Run(ctx) }()
	}
	defer func() { cancel(); ewg.Wait() }() // before the consoles' wait (deferred earlier)
	connected := func() int {
		n := 0
		for _, s := range sims {
			if s.up.Connected() {
				n++
			}
		}
		return n
	}
	rig.Until(t, "every edge connected", 15*time.Second, func() bool { return connected() == len(sims) })

	// Raise 20 alerts a second in all for 6 s; kill A after 3 s.
	raised := 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 120; i++ {
		<-tick.C
		s := sims[i%len(sims)]
		al := wire.Alert{ID: fmt.Sprintf("%s-%03d", s.id, i), EdgeID: s.id, SiteID: "village/" + s.id, Source: "cam-1", Kind: "motion",
			Severity: wire.Red, Time: time.Now().UTC(), TimeSource: "arrival", Summary: "failover"}
		if err := s.box.Append(al); err != nil {
			t.Fatal(err)
		}
		raised++
		if i == 60 {
			if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt.Store(time.Now().UnixNano())
		}
	}
	killed := time.Unix(0, killedAt.Load())
	rig.Until(t, "every alert acknowledged", 20*time.Second, func() bool {
		ackMu.Lock()
		defer ackMu.Unlock()
		return len(acked) == raised
	})
	// Every console has every alert, once.
	rig.Until(t, "every alert on every console", 20*time.Second, func() bool {
		for _, c := range consoles {
			c.mu.Lock()
			n := len(c.count)
			c.mu.Unlock()
			if n < raised {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would come now
	for i, c := range consoles {
		c.mu.Lock()
		for id, n := range c.count {
			if n != 1 {
				t.Errorf("console %d got %s %d times", i, id, n)
			}
		}
		for id := range acked {
			if c.count[id] == 0 {
				t.Errorf("console %d never got %s (acknowledged to its edge)", i, id)
			}
		}
		c.mu.Unlock()
	}
	// Back: an edge's alerts are acknowledged again (by B), a console
	// receives again (from B), measured from the kill.
	var edgesBack, consolesBack time.Duration
	ackMu.Lock()
	for _, id := range edgeIDs {
		edgesBack = max(edgesBack, ackedAfter[id].Sub(killed))
	}
	ackMu.Unlock()
	for _, c := range consoles {
		c.mu.Lock()
		consolesBack = max(consolesBack, c.firstAfter.Sub(killed))
		c.mu.Unlock()
	}
	t.Logf("A killed: every edge back within %v, every console receiving again within %v; %d alerts raised, all acknowledged and on both consoles once",
		edgesBack.Round(time.Millisecond), consolesBack.Round(time.Millisecond), raised)
	if edgesBack > 5*time.Second || consolesBack > 5*time.Second {
		t.Errorf("back after the kill: edges %v, consoles %v; want within 5 s", edgesBack, consolesBack)
	}
}
