// Package sipp runs SIPp (Debian's sip-tester) scenarios for tests: an
// independent SIP peer whose XML scenario plays the other side (here a
// GB/T 28181 platform) and whose exit status says whether every call went
// as the scenario demands (regexp checks with check_it included).
//
// A test fails (never skips) when sipp is not installed (apt-get install
// sip-tester; deploy/install-deps.sh does it).
//
//	p := sipp.Start(t, sipp.Options{Scenario: "testdata/platform.xml", Remote: dev, Calls: 5})
//	res := p.Wait()          // exit status, screen, errors, messages, log actions
package sipp

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/daemon"
)

// Options for one SIPp run.
type Options struct {
	// Scenario is the XML scenario file.
	Scenario string
	// Remote is the peer's host:port; SIPp sends a client scenario's
	// first request there. A server scenario may leave it empty.
	Remote string
	// Port is SIPp's local port on 127.0.0.1; 0 picks a free one.
	Port int
	// TCP selects one TCP connection (-t t1) instead of UDP (-t u1).
	TCP bool
	// Calls is -m: SIPp exits after this many calls ended.
	Calls int
	// Timeout is -timeout: SIPp gives up (and fails) after it.
	Timeout time.Duration
	// Keys are the scenario's [key] substitutions (-key name value).
	Keys map[string]string
	// Args are more SIPp arguments, e.g. "-l", "16" (calls at once),
	// "-r", "10" (calls a second), "-d", "20000" (a <pause/>'s length),
	// "-inf", "calls.csv" (a [fieldN] per call).
	Args []string
}

// Result is what a finished run left.
type Result struct {
	// ExitCode: 0 every call succeeded, 1 some failed, 99 no call
	// processed, negative or other values a fatal error (see sipp(1)).
	ExitCode int
	// Output is SIPp's screen output (statistics) and stderr.
	Output string
	// Errors holds the unexpected messages and failed checks (-trace_err).
	Errors string
	// Messages is the full message trace (-trace_msg).
	Messages string
	// Logs holds the scenario's <log> actions (-trace_logs).
	Logs string
}

// Run is a SIPp process owned by one test.
type Run struct {
	dir  string
	port int
	d    *daemon.Daemon
	once sync.Once
	res  Result
}

// Start runs SIPp in the background; Wait collects its result. The test's
// cleanup kills a run the test did not wait for.
func Start(t testing.TB, o Options) *Run {
	t.Helper()
	bin, err := daemon.Binary("sipp", "sip-tester", "SIP scenario tests need it")
	if err != nil {
		t.Fatal(err)
	}
	scenario, err := filepath.Abs(o.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(scenario); err != nil {
		t.Fatalf("sipp scenario: %v", err)
	}
	port := o.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	r := &Run{dir: dir, port: port}
	transport := "u1"
	if o.TCP {
		transport = "t1"
	}
	args := []string{
		"-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-t", transport,
		"-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-trace_logs", "-log_file", filepath.Join(dir, "logs.log"),
	}
	if o.Calls > 0 {
		args = append(args, "-m", strconv.Itoa(o.Calls))
	}
	if o.Timeout > 0 {
		args = append(args, "-timeout", fmt.Sprintf("%ds", int(o.Timeout.Round(time.Second)/time.Second)), "-timeout_error")
	}
	keys := make([]string, 0, len(o.Keys))
	for k := range o.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-key", k, o.Keys[k])
	}
	args = append(args, o.Args...)
	if o.Remote != "" {
		args = append(args, o.Remote)
	}
	// SIPp binds its port at once; Start waits for that (5 s at most) so
	// that a peer started next does not send into nothing.
	r.d = daemon.New(t, daemon.Spec{Name: "sipp", Addr: r.Addr(), Path: bin, Args: args, Dir: dir,
		StartWait: 5 * time.Second, KeepSlowStart: true, Quiet: true,
		Ready: func() error {
			if portBound(port, o.TCP) {
				return nil
			}
			return fmt.Errorf("port %d not bound", port)
		}})
	r.d.Start()
	return r
}

// Addr is SIPp's 127.0.0.1:PORT.
func (r *Run) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// Wait waits for SIPp to exit (its -timeout bounds this) and returns what
// it left.
func (r *Run) Wait() Result {
	r.once.Do(func() {
		r.res.ExitCode = r.d.Wait()
		r.res.Output = r.d.Log()
		r.res.Errors = readFile(filepath.Join(r.dir, "errors.log"))
		r.res.Messages = readFile(filepath.Join(r.dir, "messages.log"))
		r.res.Logs = readFile(filepath.Join(r.dir, "logs.log"))
	})
	return r.res
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// FreePort finds a port free on 127.0.0.1 for both UDP and TCP.
func FreePort() (int, error) { return daemon.FreePort() }

// portBound reports whether someone holds the port (a bind fails).
func portBound(port int, tcp bool) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if tcp {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return true
		}
		ln.Close()
		return false
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return true
	}
	pc.Close()
	return false
}
