package clips

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test runs its writer in a child process: this test binary,
// started again with these variables set.
const (
	crashDirEnv   = "VIGIL_CLIPS_CRASH_DIR"
	crashStartEnv = "VIGIL_CLIPS_CRASH_START"
)

var crashCams = []string{"north", "south"}

func crashConfig(t testing.TB, dir string) Config {
	cfg := testConfig(t, dir)
	cfg.Default.MaxBytes = 3 << 19 // about 30 s: evictions run while it is killed
	return cfg
}

// TestCrashKill9 kills a process that records two cameras as fast as it
// can, in the middle of writing (and evicting), three times over. After
// each kill the store must open, hold every access unit up to the last
// durable point the child reported, export it intact, and show nothing
// half-written: every chunk's parts add up to its metadata.
func TestCrashKill9(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	dir := t.TempDir()
	start := epoch
	for round := range 3 {
		durable := runCrashChild(t, dir, start, 160+60*round)
		s := openStore(t, crashConfig(t, dir))
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: after kill -9: %v", round, err)
		}
		for _, cam := range crashCams {
			last := durable[cam]
			tl, err := s.Timeline(cam, start, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(tl.Spans) != 1 || tl.Spans[0].End.Before(last) {
				t.Fatalf("round %d: %s since %v: %+v, want one span through the last durable frame at %v", round, cam, start, tl.Spans, last)
			}
			// The last 10 s before the durable point: every frame, intact.
			path, info := exportFile(t, s, cam, last.Add(-10*time.Second), last.Add(time.Millisecond))
			p := ffprobe(t, path)
			first := time.Duration(last.Sub(info.Start)/(100*time.Millisecond)) + 1
			if p.Frames != int(first) || !p.FirstKey {
				t.Errorf("round %d: %s: %d frames from %v to %v, want %d starting with a keyframe", round, cam, p.Frames, info.Start, last, first)
			}
			t.Logf("round %d: %s: durable through %v, recorded through %v", round, cam, last.Sub(start), tl.Spans[0].End.Sub(start))
		}
		s.Close()
		start = start.Add(time.Hour) // the next child records later
	}
}

// runCrashChild starts a child recording from start, reads its durable
// points, and kills it with SIGKILL after n of them.
func runCrashChild(t *testing.T, dir string, start time.Time, n int) map[string]time.Time {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.FormatInt(start.UnixNano(), 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	durable := map[string]time.Time{}
	sc := bufio.NewScanner(out)
	seen := 0
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for seen < n && sc.Scan() {
		var cam string
		var ns int64
		if _, err := fmt.Sscanf(sc.Text(), "durable %s %d", &cam, &ns); err != nil {
			continue
		}
		durable[cam] = time.Unix(0, ns).UTC()
		seen++
	}
	// Mid-write: the child never stops writing between durable points.
	time.Sleep(7 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	if seen < n {
		t.Fatalf("child reported %d durable points, then: %v\n%s", seen, err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by %v, not by kill -9\n%s", err, stderr.String())
	}
	return durable
}

// crashChild records both cameras until killed, printing after every
// Flush the time of the last access unit that Flush made durable.
func crashChild(t *testing.T, dir string) {
	ns, _ := strconv.ParseInt(os.Getenv(crashStartEnv), 10, 64)
	start := time.Unix(0, ns).UTC()
	s, err := Open(crashConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	clip := bursts(t)
	var feeds []*feed
	var recs []*Recorder
	for _, cam := range crashCams {
		feeds = append(feeds, newFeed(clip, start))
		recs = append(recs, recorder(t, s, cam))
	}
	last := make([]time.Time, len(recs))
	for range 1_000_000 { // bounded; killed long before
		for i, r := range recs {
			// Half a second of video per camera, then a durable point.
			until := feeds[i].peek().Add(500 * time.Millisecond)
			for feeds[i].peek().Before(until) {
				au := feeds[i].next()
				for r.Pending() > s.cfg.MaxPendingBytes/2 {
					time.Sleep(time.Millisecond)
				}
				r.Write(au)
				last[i] = au.Time
			}
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i, cam := range crashCams {
			fmt.Printf("durable %s %d\n", cam, last[i].UnixNano())
		}
	}
	t.Fatal("child was not killed")
}
