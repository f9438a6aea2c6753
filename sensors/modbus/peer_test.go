package modbus

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"
)

var quietStd = log.New(io.Discard, "", 0)

// pymodbus is testdata/server.py — Debian's python3-pymodbus, an
// implementation nobody here wrote — run by one test on 127.0.0.1.
type pymodbus struct {
	t      *testing.T
	port   int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *strings.Builder
}

// python finds Debian's interpreter first: python3-pymodbus is installed
// for it, and a python3 earlier on PATH (pyenv, a venv) may lack it.
func python(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	bin, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed (apt-get install python3-pymodbus): the Modbus peer tests cannot run")
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPymodbus runs the server on a free port for the rest of the test.
func startPymodbus(t *testing.T) *pymodbus {
	t.Helper()
	p := &pymodbus{t: t, port: freePort(t)}
	p.start()
	t.Cleanup(p.kill)
	return p
}

// start runs the server on p.port and waits until it listens.
func (p *pymodbus) start() {
	p.t.Helper()
	p.cmd = exec.Command(python(p.t), "testdata/server.py", fmt.Sprint(p.port))
	p.stderr = &strings.Builder{}
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		p.t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start pymodbus: %v", err)
	}
	p.lines = bufio.NewScanner(out)
	if line := p.line(); !strings.HasPrefix(line, "LISTENING") {
		p.t.Fatalf("pymodbus did not start (apt-get install python3-pymodbus): %q\n%s", line, p.stderr)
	}
}

// line reads the server's next answer, failing the test after 10 s.
func (p *pymodbus) line() string {
	p.t.Helper()
	got := make(chan string, 1)
	go func() {
		if p.lines.Scan() {
			got <- p.lines.Text()
		}
		close(got)
	}()
	select {
	case l := <-got:
		return l
	case <-time.After(10 * time.Second):
		p.t.Fatalf("pymodbus: no answer within 10s\n%s", p.stderr)
		return ""
	}
}

// set changes values in a table (hr, ir, co, di) through stdin.
func (p *pymodbus) set(table string, address int, values ...int) {
	p.t.Helper()
	cmd := fmt.Sprintf("set %s %d", table, address)
	for _, v := range values {
		cmd += fmt.Sprintf(" %d", v)
	}
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		p.t.Fatal(err)
	}
	if l := p.line(); l != "OK" {
		p.t.Fatalf("pymodbus %q: %s", cmd, l)
	}
}

func (p *pymodbus) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// kill ends the server for good (its connections die with it).
func (p *pymodbus) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

// client is the test's own Modbus client, for writing holding registers and coils.
func (p *pymodbus) client() *mb.ModbusClient {
	p.t.Helper()
	c, err := mb.NewClient(&mb.ClientConfiguration{URL: fmt.Sprintf("tcp://127.0.0.1:%d", p.port), Timeout: 2 * time.Second,
		Logger: quietStd})
	if err != nil {
		p.t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c
}

func (p *pymodbus) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }
