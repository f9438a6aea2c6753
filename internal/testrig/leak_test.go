package testrig

import (
	"strings"
	"testing"
	"time"
)

// TestLeakCheckSeesAGoroutineLeftRunning: a goroutine of this module that
// outlives the code under test is reported with its stack; once it ends,
// nothing is.
func TestLeakCheckSeesAGoroutineLeftRunning(t *testing.T) {
	snap := CheckGoroutines(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go leakyWorker(stop, done)
	left := snap.Leftover(100 * time.Millisecond)
	if len(left) != 1 || !strings.Contains(left[0], "leakyWorker") {
		t.Fatalf("leftover: %q", left)
	}
	close(stop)
	<-done
	if left := snap.Leftover(LeakWait); len(left) != 0 {
		t.Fatalf("after the worker ended: %q", left)
	}
	snap.Check()
}

func leakyWorker(stop, done chan struct{}) {
	defer close(done)
	<-stop
}
