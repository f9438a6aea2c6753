package postgres

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// StartCluster makes a cluster and starts its server outside a test (a
// benchmark): the same throwaway cluster as Start, owned by the caller,
// who ends it with Close. logf (may be nil) hears what it does.
//
//	pg, err := postgres.StartCluster(nil)
//	defer pg.Close()
//	url, err := pg.NewDB("bench")
func StartCluster(logf func(string, ...any)) (*Server, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s, root, err := initCluster()
	if err != nil {
		if root != "" {
			os.RemoveAll(root)
		}
		return nil, err
	}
	s.c = &clusterProc{root: root}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), s.serverArgs()...)
	cmd.Stdout, cmd.Stderr = &s.c.out, &s.c.out
	// Its own process group, so Close ends the server's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.c.cmd, s.c.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.c.exited) }()
	logf("postgres: cluster in %s, server on %s", root, s.Addr())
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.ready()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.c.exited:
			out := s.c.out.String()
			os.RemoveAll(root)
			return nil, fmt.Errorf("postgres exited before it was ready:\n%s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("postgres not ready in 30 s: %v\n%s", err, s.c.out.String())
		}
	}
}

// NewDB makes a new, empty database on a server of StartCluster and
// returns its connection string (names: lower-case letters, digits, _).
func (s *Server) NewDB(name string) (string, error) {
	if _, err := s.Exec("CREATE DATABASE " + name); err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.port, name), nil
}

// Close stops a server of StartCluster (SIGTERM, SIGKILL after 10 s) and
// removes its cluster.
func (s *Server) Close() error {
	c := s.c
	if c == nil {
		return fmt.Errorf("postgres: Close is for a server of StartCluster")
	}
	c.once.Do(func() {
		pgid := c.cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-c.exited
		}
		syscall.Kill(-pgid, syscall.SIGKILL) // children that outlived it
		os.RemoveAll(c.root)
	})
	return nil
}

// clusterProc is the server process of StartCluster.
type clusterProc struct {
	root   string
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
	out    syncBuffer
}

// syncBuffer collects the server's output from exec's copying goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Pid is the process ID of a StartCluster server's postmaster, which
// leads the process group of all the server's processes (CPU accounting).
func (s *Server) Pid() int {
	if s.c == nil {
		return 0
	}
	return s.c.cmd.Process.Pid
}
