package repeats

import (
	"fmt"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	w := New(10 * time.Minute)
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	if !w.First("a", t0) || w.First("a", t0.Add(9*time.Minute)) {
		t.Fatal("a repeat within the window was let through, or the first was not")
	}
	if !w.First("b", t0.Add(time.Minute)) {
		t.Fatal("another key is a first")
	}
	if !w.First("a", t0.Add(10*time.Minute)) {
		t.Fatal("after the window the key is a first again")
	}
	w.Forget("b")
	if !w.First("b", t0.Add(2*time.Minute)) {
		t.Fatal("a forgotten key is a first")
	}
}

// The memory stays bounded: old keys are swept once past maxKeys.
func TestWindowSweeps(t *testing.T) {
	w := New(time.Minute)
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	for i := 0; i <= maxKeys; i++ {
		w.First(fmt.Sprint(i), t0)
	}
	w.First("late", t0.Add(2*time.Minute))
	if n := len(w.seen); n != 1 {
		t.Fatalf("%d keys kept after the sweep, want 1", n)
	}
}
