package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/vigil-perimeter/vigil/central"
)

// runCentralChild is the child process: central alone, so its CPU and
// memory are its own.
func runCentralChild(configPath, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg, err := central.LoadConfig(configPath)
	if err != nil {
		return err
	}
	// Warnings only: central's info lines at hundreds of alerts a second
	// would cost the shared machine. BENCH_CENTRAL_LOG=debug|info for a
	// closer look (central.log in the run's directory, with -dir).
	level := slog.LevelWarn
	if v := os.Getenv("BENCH_CENTRAL_LOG"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("BENCH_CENTRAL_LOG: %w", err)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := central.New(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}

// centralProc is central running as a child process on fixed ports, so it
// can be killed and started again where the edges expect it.
type centralProc struct {
	dir        string
	config     string
	api, hub   string
	adminToken string
	guard      string // password of the benchGuard user
	profile    string // central's CPU profile, if wanted

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newCentralProc(dir string) (*centralProc, error) {
	ps, err := newCentralProcs(dir, 1, "")
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// newCentralProcs configures n centrals on one store ("" : Badger, each
// in its own data directory; a postgres:// URL: replicas sharing it).
// Replicas share what makes them interchangeable: the admin token, the
// users (the same password hash: a different one would end the others'
// sessions), the evidence and audit keys, and the edge hub certificate,
// which the first replica makes and the others load from its files, so
// the first must be started first.
func newCentralProcs(dir string, n int, store string) ([]*centralProc, error) {
	tok := make([]byte, 16)
	rand.Read(tok)
	adminToken, guard := hex.EncodeToString(tok), central.RandomPassword()
	users := []central.UserConfig{{Name: benchGuard, Role: central.RoleGuard, PasswordHash: central.HashPassword(guard)}}
	var out []*centralProc
	for i := range n {
		sub := dir
		if n > 1 {
			sub = filepath.Join(dir, fmt.Sprintf("replica-%c", 'a'+i))
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return nil, err
			}
		}
		p := &centralProc{dir: sub, config: filepath.Join(sub, "central.yaml"), api: freePort(), hub: freePort(), adminToken: adminToken, guard: guard}
		cfg := central.Config{Listen: p.api, DataDir: filepath.Join(sub, "central"), Store: store,
			EdgeHub:          central.EdgeHubConfig{Listen: p.hub, SelfSignedHosts: []string{"127.0.0.1"}},
			AdminTokenSHA256: central.HashToken(adminToken),
			// The consoles sign in as a guard, as the watch room does.
			Users: users}
		if n > 1 {
			cfg.EvidenceKeyFile = filepath.Join(dir, "evidence.key")
			cfg.AuditKeyFile = filepath.Join(dir, "audit.key")
			if i > 0 {
				first := out[0].config[:len(out[0].config)-len("central.yaml")] + "central/tls/"
				cfg.EdgeHub.SelfSignedHosts = nil
				cfg.EdgeHub.CertFile, cfg.EdgeHub.KeyFile = first+"edge-hub.crt", first+"edge-hub.key"
			}
		}
		b, err := yaml.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(p.config, b, 0o600); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// start launches central and waits until its API answers.
func (p *centralProc) start() error {
	logf, err := os.OpenFile(filepath.Join(p.dir, "central.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"-role", "central", "-config", p.config}
	if p.profile != "" {
		args = append(args, "-cpuprofile", p.profile)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", p.api, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("central exited at start; see %s", filepath.Join(p.dir, "central.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("central did not come up")
}

// kill9 ends central the hard way.
func (p *centralProc) kill9() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop ends central gracefully.
func (p *centralProc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done: // killed, or exited by itself
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// running reports whether central was started and has not exited.
func (p *centralProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *centralProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// usage is a process's CPU time and memory from /proc.
type usage struct {
	cpu        time.Duration // user + system
	rss, peak  int64         // bytes
	anon, file int64         // RSS split: heap and stacks, and mapped files (Badger's logs and tables)
}

func readUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces) start at ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.rss = kb << 10
		case "VmHWM":
			u.peak = kb << 10
		case "RssAnon":
			u.anon = kb << 10
		case "RssFile":
			u.file = kb << 10
		}
	}
	return u, nil
}
