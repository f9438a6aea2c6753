package testrig

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GstCamera is an RTSP camera served by GStreamer's RTSP server
// (gst-rtsp-server from Debian, started as a subprocess): a peer nobody at
// Vigil wrote, so a bug we share with our own simulator cannot cancel out.
type GstCamera struct {
	Port    int
	Version string // GStreamer's version string
	user    string
	pass    string

	mu     sync.Mutex
	frames map[string][]ServedFrame
	cond   *sync.Cond
}

// ServedFrame is one frame as GStreamer's payloader sent it.
type ServedFrame struct {
	Wall time.Time     // this machine's clock when the frame's first RTP packet left the payloader
	PTS  time.Duration // the frame's presentation time in GStreamer's pipeline
	RTP  uint32        // its RTP timestamp
}

// GstOptions configure StartGstCamera.
type GstOptions struct {
	// Streams maps a path name to a file: an MP4 (H.264 or H.265, looped
	// for Minutes) or an MPEG-TS (served once as it is).
	Streams  map[string]string
	User     string
	Password string
	Digest   bool    // digest authentication instead of basic
	Minutes  float64 // default 2
	// Trace names streams whose every frame is reported (ServedFrames);
	// for the others only the first frame is.
	Trace []string
}

// StartGstCamera starts GStreamer's RTSP server on 127.0.0.1 serving opts'
// streams, and stops it when the test ends. It fails the test if the
// Debian packages are missing (make deps installs them).
func StartGstCamera(t testing.TB, opts GstOptions) *GstCamera {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, debianPython, gstArgs(opts)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	stderr := &lockedWriter{w: &strings.Builder{}}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting GStreamer's RTSP server: %v", err)
	}
	g := &GstCamera{user: opts.User, pass: opts.Password, frames: map[string][]ServedFrame{}}
	g.cond = sync.NewCond(&g.mu)
	listening := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.read(out, listening)
		listening <- fmt.Errorf("GStreamer's RTSP server exited: %s", stderr.String())
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		<-done
	})
	select {
	case err := <-listening:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("GStreamer's RTSP server did not start in 60 s: %s", stderr.String())
	}
	return g
}

// gstArgs is the command line of the camera script for opts.
func gstArgs(opts GstOptions) []string {
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "gstcamera", "gst-rtsp-camera.py")
	minutes := "2"
	if opts.Minutes != 0 {
		minutes = fmt.Sprint(max(opts.Minutes, 0))
	}
	args := []string{script, "--minutes", minutes}
	if opts.User != "" {
		args = append(args, "--user", opts.User, "--password", opts.Password)
		if opts.Digest {
			args = append(args, "--digest")
		}
	}
	for _, n := range opts.Trace {
		args = append(args, "--trace", n)
	}
	for name, file := range opts.Streams {
		args = append(args, name+"="+file)
	}
	return args
}

// read takes in the script's JSON lines until its stdout ends: the port
// it listens on (sent to listening) and the frames it serves.
func (g *GstCamera) read(out io.Reader, listening chan<- error) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var m struct {
			Listening int     `json:"listening"`
			Version   string  `json:"gstreamer"`
			Served    string  `json:"served"`
			Wall      float64 `json:"wall"`
			PTS       float64 `json:"pts"`
			RTP       uint32  `json:"rtp"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.Listening != 0:
			g.Port, g.Version = m.Listening, m.Version
			listening <- nil
		case m.Served != "":
			sec := int64(m.Wall)
			f := ServedFrame{Wall: time.Unix(sec, int64((m.Wall-float64(sec))*1e9)).UTC(),
				PTS: time.Duration(m.PTS * float64(time.Second)), RTP: m.RTP}
			g.mu.Lock()
			g.frames[m.Served] = append(g.frames[m.Served], f)
			g.cond.Broadcast()
			g.mu.Unlock()
		}
	}
}

// URL is the RTSP URL of a path, with the configured credentials.
func (g *GstCamera) URL(name string) string {
	cred := ""
	if g.user != "" {
		cred = g.user + ":" + g.pass + "@"
	}
	return fmt.Sprintf("rtsp://%s127.0.0.1:%d/%s", cred, g.Port, name)
}

// ServedFrames returns the frames of a stream reported so far.
func (g *GstCamera) ServedFrames(name string) []ServedFrame {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]ServedFrame(nil), g.frames[name]...)
}

// FirstServed waits up to d for a stream's first frame and returns it.
func (g *GstCamera) FirstServed(t testing.TB, name string, d time.Duration) ServedFrame {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if f := g.ServedFrames(name); len(f) > 0 {
			return f[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("GStreamer served no frame of %s in %v", name, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GstAvailable reports an error naming the missing Debian packages when
// GStreamer's RTSP server cannot run here.
func GstAvailable() error {
	cmd := exec.Command(debianPython, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GStreamer's RTSP server is missing (run make deps: python3-gi gir1.2-gst-rtsp-server-1.0): %v: %s", err, out)
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

// String is what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 64<<10 {
		return len(p), nil
	}
	return l.w.Write(p)
}

// debianPython is Debian's interpreter, which sees the python3-gi package
// (a python3 earlier on PATH, such as pyenv's, does not).
const debianPython = "/usr/bin/python3"
