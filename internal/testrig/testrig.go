// Package testrig builds the real footage and simulated cameras that tests
// across packages share, so each test states only what it checks.
package testrig

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// BurstsClip builds (once per cache) and loads the default bursts clip:
// a still real scene with an object crossing at known times.
func BurstsClip(t testing.TB) (*sim.Clip, footage.BurstsClip) {
	t.Helper()
	spec := footage.DefaultBursts()
	return Clip(t, spec), spec
}

// Clip builds and loads a bursts clip of the given shape.
func Clip(t testing.TB, spec footage.BurstsClip) *sim.Clip {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, err := spec.Make(ctx, footage.Cache{Dir: footage.DefaultDir()})
	if err != nil {
		t.Fatalf("making footage: %v", err)
	}
	clip, err := sim.LoadClip(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	return clip
}

// StartSim serves clips as cameras on addr ("127.0.0.1:0" for any port)
// and stops them when the test ends.
func StartSim(t testing.TB, addr string, cams ...sim.Camera) *sim.Server {
	t.Helper()
	s, err := sim.Start(sim.Config{Address: addr, Cameras: cams, Log: Logger(t)})
	if err != nil {
		t.Fatalf("starting camera simulator: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// LogBuffer collects log output so tests can assert what an operator
// would read, and mirrors it to the test log when verbose.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a text logger writing to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// CapturingLogger returns a logger that writes to both the test log and a
// buffer the test can search.
func CapturingLogger(t testing.TB) (*slog.Logger, *LogBuffer) {
	b := &LogBuffer{}
	h := slog.NewTextHandler(multi{testWriter{t}, b}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), b
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

type multi []interface{ Write([]byte) (int, error) }

func (m multi) Write(p []byte) (int, error) {
	for _, w := range m {
		w.Write(p)
	}
	return len(p), nil
}

// DamagedBursts returns the bursts clip with FFmpeg's noise bitstream
// filter applied to the Annex B stream, as damage reaches a decoder from
// RTP (damaging the MP4's length prefixes instead would break the file
// rather than the pictures); the MP4 muxer frames the damaged NAL units
// again. amount is the filter's per-packet expression (FFmpeg 5.1), about
// one byte in amount damaged ("2000", or "2000*not(key)" for P-frames
// only). Noise uses a fixed seed, so the clip is the same on every run.
func DamagedBursts(t testing.TB, amount string) (string, footage.BurstsClip) {
	t.Helper()
	clip, spec := BurstsClip(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, "bursts-noise",
		[]string{"-i", clip.Path, "-c", "copy", "-bsf:v", "h264_mp4toannexb,noise=amount=" + amount})
	if err != nil {
		t.Fatal(err)
	}
	return path, spec
}

// Until polls ok every 50 ms until it holds, failing the test after within.
func Until(t testing.TB, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
