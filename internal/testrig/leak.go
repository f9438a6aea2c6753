package testrig

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Goroutine leak check. A test that starts something and closes it takes a
// snapshot first and checks after Close:
//
//	leaks := testrig.CheckGoroutines(t)
//	n := start(...)
//	...
//	n.Close()
//	leaks.Check()
//
// Check waits (up to LeakWait) for every goroutine started since the
// snapshot to end, and fails the test with the stacks of those still
// running. Only goroutines that run this module's code count: the runtime,
// testing, and libraries' own background goroutines (Badger's, ristretto's,
// net/http's idle client connections) are left alone — a library goroutine
// that runs one of our callbacks or handlers does count. Tests that use it
// must not run in parallel with others (t.Parallel), whose goroutines would
// look like leaks.

// LeakWait is how long Check waits for goroutines to end after Close: an
// owner's Close waits for its goroutines, so they are gone at once, but a
// goroutine that has signalled its end (wg.Done, close(done)) may take a
// moment to exit.
const LeakWait = 2 * time.Second

// leakModule is the code whose goroutines are checked.
const leakModule = "github.com/vigil-perimeter/vigil/"

// leakIgnored are frames of goroutines that are never leaks.
var leakIgnored = []string{
	"testing.(*T).Run",
	"testing.tRunner",
	"testing.runTests",
	"testing.(*M).",
	"runtime.goexit0",
	"os/signal.signal_recv",
}

// GoroutineSnapshot is the set of goroutines running when it was taken.
type GoroutineSnapshot struct {
	t      testing.TB
	before map[uint64]bool
}

// CheckGoroutines takes a snapshot of the goroutines running now.
func CheckGoroutines(t testing.TB) *GoroutineSnapshot {
	t.Helper()
	before := map[uint64]bool{}
	for _, g := range goroutines() {
		before[g.id] = true
	}
	return &GoroutineSnapshot{t: t, before: before}
}

// Check fails the test if goroutines of this module started since the
// snapshot are still running after LeakWait.
func (s *GoroutineSnapshot) Check() {
	s.t.Helper()
	if left := s.Leftover(LeakWait); len(left) > 0 {
		s.t.Errorf("%d goroutine(s) started by the code under test still run after it closed:\n\n%s",
			len(left), strings.Join(left, "\n\n"))
	}
}

// Leftover waits up to wait for the goroutines of this module started
// since the snapshot to end and returns the stacks of those still running.
func (s *GoroutineSnapshot) Leftover(wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		var left []string
		for _, g := range goroutines() {
			if !s.before[g.id] && leaked(g.stack) {
				left = append(left, g.stack)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaked reports whether a goroutine's stack runs this module's code and
// is not one that is always there.
func leaked(stack string) bool {
	if !strings.Contains(stack, leakModule) {
		return false
	}
	for _, ig := range leakIgnored {
		if strings.Contains(stack, ig) {
			return false
		}
	}
	return true
}

type goroutine struct {
	id    uint64
	stack string
}

// goroutines lists every goroutine but the caller's, with its stack.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for i, block := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the caller's own goroutine comes first
		}
		head, _, _ := bytes.Cut(block, []byte("\n"))
		// "goroutine 42 [chan receive]:"
		f := strings.Fields(string(head))
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, goroutine{id: id, stack: string(block)})
	}
	return out
}
