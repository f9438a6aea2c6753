// Package postgres starts a throwaway PostgreSQL server for a test, from
// Debian's packages: a temporary cluster (initdb) on 127.0.0.1 at a free
// port, fsync off (commits still synchronous: a killed server keeps what
// it acknowledged), stopped and removed when the test ends. PostgreSQL
// refuses to run as root, so as root (CI) the cluster belongs to, and the
// server runs as, the postgres user Debian's package creates.
//
//	db := postgres.Start(t)
//	pool, err := pgxpool.New(ctx, db.URL())
package postgres

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/daemon"
)

const why = "the tests of central's PostgreSQL store run against a real PostgreSQL server"

// Superuser is the cluster's superuser (trust authentication on
// 127.0.0.1: a test cluster only).
const Superuser = "vigil"

// Server is a running test cluster.
type Server struct {
	t    testing.TB
	bin  string // PostgreSQL's bin directory
	port int
	data string
	sock string
	cred *syscall.Credential
	d    *daemon.Daemon
	c    *clusterProc // the server of StartCluster (no test)
}

// Start makes a cluster and starts its server; the test fails when
// PostgreSQL is not installed (make deps installs it).
func Start(t testing.TB) *Server {
	t.Helper()
	s, root, err := initCluster()
	if root != "" {
		t.Cleanup(func() { os.RemoveAll(root) })
	}
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	s.d = daemon.New(t, daemon.Spec{Name: "postgres", Addr: s.Addr(), Path: filepath.Join(s.bin, "postgres"), Credential: s.cred,
		Args: s.serverArgs(), StartWait: 30 * time.Second, StopWait: 10 * time.Second, Poll: 50 * time.Millisecond,
		Ready: s.ready})
	s.d.Start()
	return s
}

// initCluster makes a cluster (initdb) in a new temporary directory,
// returned for removal even with an error, at a free port.
func initCluster() (*Server, string, error) {
	bin, err := binDir()
	if err != nil {
		return nil, "", err
	}
	port, err := daemon.FreePort()
	if err != nil {
		return nil, "", fmt.Errorf("postgres: no free port: %v", err)
	}
	s := &Server{bin: bin, port: port}
	root, err := os.MkdirTemp("", "vigil-pg-")
	if err != nil {
		return nil, "", err
	}
	s.data = filepath.Join(root, "data")
	s.sock = filepath.Join(root, "sock")
	if os.Geteuid() == 0 {
		if s.cred, err = postgresUser(); err != nil {
			return nil, root, err
		}
		// The postgres user must reach the cluster's directories.
		if err := os.Chmod(root, 0o711); err != nil {
			return nil, root, err
		}
	}
	for _, dir := range []string{s.data, s.sock} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, root, err
		}
		if s.cred != nil {
			if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return nil, root, err
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", Superuser, "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, root, fmt.Errorf("postgres: initdb: %v\n%s", err, out)
	}
	return s, root, nil
}

// serverArgs are the postgres server's arguments.
func (s *Server) serverArgs() []string {
	return []string{"-D", s.data, "-p", strconv.Itoa(s.port), "-k", s.sock, "-c", "listen_addresses=127.0.0.1",
		// fsync off only loses data when the machine crashes; commits
		// stay synchronous, so a killed server (a crash test) keeps every
		// commit it acknowledged.
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"}
}

// ready reports whether the server accepts queries: accepting TCP is not
// enough, the server answers "starting up" until recovery is done.
func (s *Server) ready() error {
	out, err := exec.Command(filepath.Join(s.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", Superuser).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_isready: %v %s", err, out)
	}
	return nil
}

// binDir is the newest PostgreSQL's bin directory.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL is not installed (apt-get install postgresql): %s", why)
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// postgresUser is Debian's postgres account.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres: no postgres user to run the server as (apt-get install postgresql): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// URL is the connection string of the cluster's postgres database as
// its superuser.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", Superuser, s.port)
}

// CreateDB makes a new, empty database and returns its connection string
// (names: lower-case letters, digits and _).
func (s *Server) CreateDB(t testing.TB, name string) string {
	t.Helper()
	s.SQL("CREATE DATABASE " + name)
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.port, name)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// SQL runs statements with psql and returns what they print (unaligned,
// tuples only); the test fails on an error.
func (s *Server) SQL(statements string) string {
	s.t.Helper()
	out, err := s.Exec(statements)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// Exec runs statements with psql and returns what they print (unaligned,
// tuples only), or an error with psql's output.
func (s *Server) Exec(statements string) (string, error) {
	out, err := exec.Command(filepath.Join(s.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-d", s.URL(), "-c", statements).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %v\n%s", statements, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Stop shuts the server down cleanly; Kill as a crash would (SIGKILL);
// Start brings it back on the same port with the same data. Only for a
// server of Start(t).
func (s *Server) Stop()  { s.d.Stop() }
func (s *Server) Kill()  { s.d.Kill() }
func (s *Server) Start() { s.t.Helper(); s.d.Start() }

// Log is what the server logged so far.
func (s *Server) Log() string {
	if s.c != nil {
		return s.c.out.String()
	}
	return s.d.Log()
}
