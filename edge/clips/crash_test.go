package clips

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// crashPaceEnv, when set, makes the child record at that many seconds of
// video per second of wall time and never call Flush: what it loses to
// kill -9 is then only what the store's own flushing had not written.
const crashPaceEnv = "VIGIL_CLIPS_CRASH_PACE"

// crashReportEvery is how often the child reports the newest access unit
// it has handed to Write.
const crashReportEvery = 50 * time.Millisecond

// crashLoss is the most wall time of video a kill -9 may lose: every
// access unit handed to Write this long before the kill must be there.
const crashLoss = time.Second

// TestCrashKill9 kills a process that records two cameras as fast as it
// can, in the middle of writing (and evicting), at a random moment, three
// times over, and then once more recording at twice real time
// without ever calling Flush. After each kill the store must open, hold
// every access unit up to the last durable point the child reported, and
// every access unit the child had handed to Write at least crashLoss of
// wall time before the kill, export them intact, and show nothing
// half-written: every chunk's parts add up to its metadata.
func TestCrashKill9(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	dir := t.TempDir()
	start := epoch
	for round := range 4 {
		pace := 0
		if round == 3 {
			pace = 2
		}
		run := runCrashChild(t, dir, start, 160+60*round, pace)
		s := openStore(t, crashConfig(t, dir))
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: after kill -9: %v", round, err)
		}
		for _, cam := range crashCams {
			tl, err := s.Timeline(cam, start, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(tl.Spans) != 1 {
				t.Fatalf("round %d: %s since %v: %+v, want one span", round, cam, start, tl.Spans)
			}
			span := tl.Spans[0]
			if last, ok := run.durable[cam]; ok {
				if span.End.Before(last) {
					t.Fatalf("round %d: %s since %v: %+v, want one span through the last durable frame at %v", round, cam, start, tl.Spans, last)
				}
				// The last 10 s before the durable point: every frame, intact.
				checkCrashFrames(t, s, round, cam, "durable", last.Add(-10*time.Second), last)
			} else if pace == 0 {
				t.Fatalf("round %d: %s: no durable point", round, cam)
			}
			// Handed to Write crashLoss before the kill: there, intact.
			handed, ok := run.handedBefore(cam, run.killed.Add(-crashLoss))
			if !ok {
				if pace > 0 {
					t.Fatalf("round %d: %s: nothing reported handed in %v before the kill", round, cam, crashLoss)
				}
				continue
			}
			if span.End.Before(handed) {
				t.Errorf("round %d: %s: recorded through %v, but the access unit at %v was handed in %v before the kill",
					round, cam, span.End.Sub(start), handed.Sub(start), crashLoss)
			}
			window := 10 * time.Second
			if pace > 0 {
				window = 3 * time.Second
			}
			from := handed.Add(-window)
			if pace > 0 && from.Before(start) {
				t.Fatalf("round %d: %s: handed in through %v only", round, cam, handed.Sub(start))
			}
			if !from.Before(span.Start) { // not evicted since
				checkCrashFrames(t, s, round, cam, "handed in", from, handed)
			} else if pace > 0 {
				t.Errorf("round %d: %s: %v..%v was evicted, recorded %+v", round, cam, from, handed, span)
			}
			// Paced, a camera's clock runs with the wall clock (pace
			// times faster): the access units within 1 s of camera time
			// of the newest reported are the only ones that may be lost.
			newest, _ := run.handedBefore(cam, run.killed)
			if pace > 0 && span.End.Before(newest.Add(-time.Second)) {
				t.Errorf("round %d: %s: recorded through %v, the child had handed in through %v: more than 1 s lost",
					round, cam, span.End.Sub(start), newest.Sub(start))
			}
			t.Logf("round %d: %s: durable through %v, handed in through %v %v before the kill (%v at the last report), recorded through %v",
				round, cam, durableOr(run.durable, cam, start), handed.Sub(start), crashLoss, newest.Sub(start), span.End.Sub(start))
		}
		s.Close()
		start = start.Add(time.Hour) // the next child records later
	}
}

func durableOr(durable map[string]time.Time, cam string, start time.Time) any {
	if d, ok := durable[cam]; ok {
		return d.Sub(start)
	}
	return "(none)"
}

// checkCrashFrames exports from..last (last included) and checks that
// every frame is there from the keyframe at or before from.
func checkCrashFrames(t *testing.T, s *Store, round int, cam, what string, from, last time.Time) {
	t.Helper()
	path, info := exportFile(t, s, cam, from, last.Add(time.Millisecond))
	p := ffprobe(t, path)
	want := int(last.Sub(info.Start)/(100*time.Millisecond)) + 1
	if p.Frames != want || !p.FirstKey || info.Start.After(from) {
		t.Errorf("round %d: %s: %d frames from %v to %v (%s), want %d starting with a keyframe", round, cam, p.Frames, info.Start, last, what, want)
	}
}

// crashRun is what a killed child reported.
type crashRun struct {
	durable map[string]time.Time // the last durable point per camera
	handed  []crashHanded
	killed  time.Time // just before SIGKILL
}

// crashHanded: at wall time wall, the newest access unit handed to
// Write for cam was at au.
type crashHanded struct {
	wall time.Time
	cam  string
	au   time.Time
}

// handedBefore is the newest access unit of cam reported handed in at
// or before wall time by.
func (r crashRun) handedBefore(cam string, by time.Time) (time.Time, bool) {
	var au time.Time
	ok := false
	for _, h := range r.handed {
		if h.cam == cam && !h.wall.After(by) && (!ok || h.au.After(au)) {
			au, ok = h.au, true
		}
	}
	return au, ok
}

// runCrashChild starts a child recording from start and kills it with
// SIGKILL at a random moment: a random time after n durable points, or
// with pace set (no durable points), 3 to 4 s after its first report.
func runCrashChild(t *testing.T, dir string, start time.Time, n, pace int) crashRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.FormatInt(start.UnixNano(), 10),
		crashPaceEnv+"="+strconv.Itoa(pace))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	run := crashRun{durable: map[string]time.Time{}}
	var mu sync.Mutex
	seen, reports := 0, 0
	ready := make(chan struct{}) // n durable points, or the first report when paced
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			var cam string
			var ns, wall int64
			mu.Lock()
			if _, err := fmt.Sscanf(sc.Text(), "durable %s %d", &cam, &ns); err == nil {
				run.durable[cam] = time.Unix(0, ns).UTC()
				seen++
			} else if _, err := fmt.Sscanf(sc.Text(), "handed %d %s %d", &wall, &cam, &ns); err == nil {
				run.handed = append(run.handed, crashHanded{wall: time.Unix(0, wall), cam: cam, au: time.Unix(0, ns).UTC()})
				reports++
			}
			if !signalled && ((pace == 0 && seen >= n) || (pace > 0 && reports > 0)) {
				signalled = true
				close(ready)
			}
			mu.Unlock()
		}
	}()
	// Mid-write: the child never stops writing between reports.
	delay := time.Duration(rand.Int64N(int64(150 * time.Millisecond)))
	if pace > 0 {
		delay = 3*time.Second + time.Duration(rand.Int64N(int64(time.Second)))
	}
	select {
	case <-ready:
		time.Sleep(delay)
	case <-done:
	case <-time.After(60 * time.Second):
	}
	mu.Lock()
	run.killed = time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	mu.Unlock()
	<-done
	err = cmd.Wait()
	if (pace == 0 && seen < n) || (pace > 0 && reports == 0) {
		t.Fatalf("child reported %d durable points and %d handed-in points, then: %v\n%s", seen, reports, err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by %v, not by kill -9\n%s", err, stderr.String())
	}
	t.Logf("killed %v after the %s", delay, map[bool]string{false: "last durable point it waited for", true: "first report"}[pace > 0])
	return run
}

// crashChild records both cameras until killed. As fast as it can, it
// prints after every Flush the time of the last access unit that Flush
// made durable; paced (crashPaceEnv), it never calls Flush. Either way,
// every crashReportEvery of wall time it prints the newest access unit
// handed to Write for each camera.
func crashChild(t *testing.T, dir string) {
	ns, _ := strconv.ParseInt(os.Getenv(crashStartEnv), 10, 64)
	start := time.Unix(0, ns).UTC()
	pace, _ := strconv.Atoi(os.Getenv(crashPaceEnv))
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
	var printMu sync.Mutex // one line per write
	handed := make([]atomic.Int64, len(recs))
	go func() {
		for range time.Tick(crashReportEvery) {
			now := time.Now().UnixNano()
			for i, cam := range crashCams {
				if au := handed[i].Load(); au != 0 {
					printMu.Lock()
					fmt.Printf("handed %d %s %d\n", now, cam, au)
					printMu.Unlock()
				}
			}
		}
	}()
	last := make([]time.Time, len(recs))
	t0 := time.Now()
	for range 1_000_000 { // bounded; killed long before
		for i, r := range recs {
			// Half a second of video per camera, then a durable point;
			// paced: up to the wall clock's pace.
			until := feeds[i].peek().Add(500 * time.Millisecond)
			if pace > 0 {
				until = start.Add(time.Since(t0) * time.Duration(pace))
			}
			for feeds[i].peek().Before(until) {
				au := feeds[i].next()
				for r.Pending() > s.cfg.MaxPendingBytes/2 {
					time.Sleep(time.Millisecond)
				}
				r.Write(au)
				last[i] = au.Time
				handed[i].Store(au.Time.UnixNano())
			}
		}
		if pace > 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		printMu.Lock()
		for i, cam := range crashCams {
			fmt.Printf("durable %s %d\n", cam, last[i].UnixNano())
		}
		printMu.Unlock()
	}
	t.Fatal("child was not killed")
}
