package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds returns the user+system CPU time a process (all its threads)
// has used so far, from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name (field 2) may contain spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// f[0] is field 3 (state), so field 14 is f[11].
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// systemBusy returns the CPU seconds all cores have spent busy (not idle,
// not waiting for I/O) since boot, from /proc/stat.
func systemBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy uint64
	for i, s := range f[1:9] { // user nice system idle iowait irq softirq steal
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return float64(busy) / clockTicks, nil
}

// memStatus reads the memory lines of /proc/<pid>/status, in KiB.
func memStatus(pid int) (map[string]float64, error) {
	return memStatusFile(fmt.Sprintf("/proc/%d/status", pid))
}

// tail keeps the last bytes written to it: a child's stderr, shown when
// something goes wrong (or streamed with -v).
type tail struct {
	mu     sync.Mutex
	buf    []byte
	max    int
	prefix string
	echo   io.Writer
	// count, if set, is asked about every line; matches are counted.
	count   func(line string) bool
	partial string
	matches int64
}

func newTail(prefix string, echo io.Writer) *tail {
	return &tail{max: 8 << 10, prefix: prefix, echo: echo}
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.echo != nil {
		for _, line := range strings.SplitAfter(string(p), "\n") {
			if line != "" {
				fmt.Fprint(t.echo, t.prefix+line)
			}
		}
	}
	if t.count != nil {
		lines := strings.Split(t.partial+string(p), "\n")
		t.partial = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			if t.count(l) {
				t.matches++
			}
		}
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// counted returns how many lines matched count.
func (t *tail) counted() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.matches
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// child is a process the harness started. It dies with the harness
// (PDEATHSIG) and when the harness's context ends.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line (our children's replies)
	stderr *tail
	done   chan struct{}
	err    error // valid after done
	// ignoresStdin: stop kills at once (ffmpeg runs with -nostdin).
	ignoresStdin bool
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// start runs name with args; stdout is read line by line into c.lines
// unless onStdout takes it.
func start(ctx context.Context, label, name string, args []string, verbose bool, onStdout func(io.Reader)) (*child, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	var echo io.Writer
	if verbose {
		echo = os.Stderr
	}
	c := &child{name: label, cmd: cmd, stderr: newTail("["+label+"] ", echo), done: make(chan struct{}), lines: make(chan string, 16)}
	cmd.Stderr = c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", label, err)
	}
	read := onStdout
	if read == nil {
		read = func(r io.Reader) {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				c.lines <- sc.Text()
			}
			close(c.lines)
		}
	}
	readDone := make(chan struct{})
	go func() { read(stdout); close(readDone) }()
	go func() {
		<-readDone
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// startSelf runs this binary in one of its child modes.
func startSelf(ctx context.Context, label string, verbose bool, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return start(ctx, label, exe, args, verbose, nil)
}

// readLine waits for the child's next stdout line.
func (c *child) readLine(timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.done
			return "", fmt.Errorf("%s exited (%v): %s", c.name, c.err, lastLines(c.stderr.String(), 5))
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("%s: no answer within %v: %s", c.name, timeout, lastLines(c.stderr.String(), 5))
	}
}

// ask sends one command line and returns the reply line.
func (c *child) ask(cmd string, timeout time.Duration) (string, error) {
	if _, err := fmt.Fprintln(c.stdin, cmd); err != nil {
		return "", fmt.Errorf("%s: %w", c.name, err)
	}
	return c.readLine(timeout)
}

// stop closes stdin (our children exit on EOF, writing what they must),
// then kills the process if it is still there after grace.
func (c *child) stop(grace time.Duration) {
	c.stdin.Close()
	if c.ignoresStdin {
		grace = 0
	}
	select {
	case <-c.done:
		return
	case <-time.After(grace):
	}
	c.cmd.Process.Kill()
	<-c.done
}

// alive reports whether the process is still running.
func (c *child) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// ffmpeg is one `ffmpeg -threads 1 -i rtsp://… -f null -` reference
// decoder. It reports decoded frames through -progress every 100 ms, and
// its warnings tell lost RTP packets and damaged pictures, which count
// like Vigil's decode errors.
type ffmpeg struct {
	*child
	mu     sync.Mutex
	frames int64
	at     time.Time // when frames was reported
}

func startFFmpeg(ctx context.Context, label, url string, verbose bool, extra ...string) (*ffmpeg, error) {
	f := &ffmpeg{}
	c, err := start(ctx, label, "ffmpeg", ffmpegArgs(url, extra...), verbose, f.readProgress)
	if err != nil {
		return nil, err
	}
	f.child = c
	c.ignoresStdin = true
	c.stderr.mu.Lock()
	c.stderr.count = ffmpegTrouble
	c.stderr.mu.Unlock()
	return f, nil
}

// ffmpegArgs is the reference: one decoder thread, RTSP over TCP like the
// edge, every frame decoded and thrown away. extra are input options
// (decoder settings) placed before -i.
func ffmpegArgs(url string, extra ...string) []string {
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "warning", "-nostats",
		"-progress", "pipe:1", "-stats_period", "0.1",
		"-rtsp_transport", "tcp", "-threads", "1"}
	args = append(args, extra...)
	return append(args, "-i", url, "-map", "0:v:0", "-f", "null", "-")
}

// ffmpegTrouble recognises FFmpeg's messages about lost or damaged video.
func ffmpegTrouble(line string) bool {
	l := strings.ToLower(line)
	for _, s := range []string{"missed", "error while decoding", "concealing", "corrupt", "invalid", "lost"} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (f *ffmpeg) readProgress(r io.Reader) {
	sc := bufio.NewScanner(r)
	var frames int64 = -1
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("frame=")):
			if n, err := strconv.ParseInt(strings.TrimSpace(string(line[6:])), 10, 64); err == nil {
				frames = n
			}
		case bytes.HasPrefix(line, []byte("progress=")) && frames >= 0:
			f.mu.Lock()
			f.frames, f.at = frames, time.Now()
			f.mu.Unlock()
		}
	}
}

// progress returns the last reported frame count and when it came.
func (f *ffmpeg) progress() (int64, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frames, f.at
}
