package main

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

func TestSearchFindsCapacity(t *testing.T) {
	for _, tc := range []struct {
		name              string
		capacity, guess   int
		maxN, maxTrials   int
		want              int
		tol               float64
		allowUnderByRatio float64
	}{
		{name: "guess below", capacity: 37, guess: 20, maxN: 128, maxTrials: 20, tol: 0, want: 37},
		{name: "guess above", capacity: 37, guess: 80, maxN: 128, maxTrials: 20, tol: 0, want: 37},
		{name: "exact guess", capacity: 12, guess: 12, maxN: 128, maxTrials: 20, tol: 0, want: 12},
		{name: "none", capacity: 0, guess: 8, maxN: 128, maxTrials: 20, tol: 0, want: 0},
		{name: "ceiling", capacity: 500, guess: 8, maxN: 64, maxTrials: 20, tol: 0, want: 64},
		{name: "one", capacity: 1, guess: 8, maxN: 64, maxTrials: 20, tol: 0, want: 1},
		{name: "tolerance", capacity: 50, guess: 10, maxN: 128, maxTrials: 20, tol: 0.1, allowUnderByRatio: 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSearch(tc.guess, tc.maxN, tc.maxTrials, 1.5, tc.tol)
			for !s.done() {
				s.record(s.next, s.next <= tc.capacity)
			}
			if tc.allowUnderByRatio > 0 {
				if s.lo > tc.capacity || float64(s.lo) < float64(tc.capacity)*(1-tc.allowUnderByRatio) {
					t.Fatalf("found %d, capacity %d", s.lo, tc.capacity)
				}
				return
			}
			if s.lo != tc.want {
				t.Fatalf("found %d after %d trials, want %d", s.lo, s.trials, tc.want)
			}
		})
	}
}

func TestSearchIsBounded(t *testing.T) {
	s := newSearch(4, 1000, 5, 1.25, 0)
	for !s.done() {
		s.record(s.next, true)
	}
	if s.trials != 5 {
		t.Fatalf("%d trials, want 5", s.trials)
	}
}

func TestSearchRetreat(t *testing.T) {
	s := &search{lo: 40, hi: 42, tol: 0.05}
	s.retreat()
	if s.lo != 38 || s.hi != 40 {
		t.Fatalf("lo %d hi %d after retreat", s.lo, s.hi)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, as /proc allows.
	stat := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194304 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.25 {
		t.Fatalf("cpu %v s, want 3.25", got)
	}
}

func TestRotateKeepsOrderAndTiming(t *testing.T) {
	c := testClip(10, 100*time.Millisecond)
	r := rotate(c, 3)
	if len(r.Packets) != 10 || r.Duration != time.Second {
		t.Fatalf("rotated clip: %d packets, %v", len(r.Packets), r.Duration)
	}
	for i, p := range r.Packets {
		if p.PTS != time.Duration(i)*100*time.Millisecond {
			t.Fatalf("packet %d at %v", i, p.PTS)
		}
		if want := byte((i + 3) % 10); p.AU[0][0] != want {
			t.Fatalf("packet %d is frame %d, want %d", i, p.AU[0][0], want)
		}
	}
	if c.Packets[0].PTS != 0 || c.Packets[0].AU[0][0] != 0 {
		t.Fatal("rotate changed its input")
	}
}

func testClip(n int, frame time.Duration) *sim.Clip {
	c := &sim.Clip{Duration: time.Duration(n) * frame}
	for i := range n {
		c.Packets = append(c.Packets, av.Packet{AU: [][]byte{{byte(i)}}, PTS: time.Duration(i) * frame, Key: i == 0})
	}
	return c
}
