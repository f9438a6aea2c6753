package main

import "math"

// search looks for the largest n for which a trial passes, assuming that
// what passes at n passes below n. It grows (or shrinks) geometrically from
// a first guess until a pass and a fail bracket the answer, then bisects
// until the bracket is within tol of its lower end. Every search ends:
// after maxTrials trials at most.
type search struct {
	lo, hi    int // largest n that passed (0: none yet); smallest that failed (0: none yet)
	next      int // the n to try next
	grow      float64
	tol       float64 // stop when hi-lo <= max(1, tol·lo)
	maxN      int
	trials    int
	maxTrials int
}

func newSearch(guess, maxN, maxTrials int, grow, tol float64) *search {
	return &search{next: max(1, min(guess, maxN)), grow: grow, tol: tol, maxN: maxN, maxTrials: maxTrials}
}

// done reports whether the search has its answer, lo.
func (s *search) done() bool {
	switch {
	case s.trials >= s.maxTrials:
		return true
	case s.lo >= s.maxN: // at the ceiling: capacity ≥ maxN
		return true
	case s.hi == 1: // not even one
		return true
	case s.lo > 0 && s.hi > 0:
		return s.hi-s.lo <= max(1, int(s.tol*float64(s.lo)))
	}
	return false
}

// record files a trial's result and picks the next n.
func (s *search) record(n int, pass bool) {
	s.trials++
	if pass {
		s.lo = max(s.lo, n)
	} else if s.hi == 0 || n < s.hi {
		s.hi = n
	}
	if s.hi > 0 && s.lo >= s.hi { // noise: a larger n passed than one that failed
		s.lo = s.hi - 1
	}
	switch {
	case s.hi == 0:
		s.next = min(s.maxN, max(s.lo+1, int(math.Ceil(float64(s.lo)*s.grow))))
	case s.lo == 0:
		s.next = max(1, min(s.hi-1, int(math.Floor(float64(s.hi)/s.grow))))
	default:
		s.next = (s.lo + s.hi) / 2
	}
}

// retreat lowers the answer after a confirmation trial at lo failed.
func (s *search) retreat() {
	s.hi = s.lo
	s.lo = max(0, s.lo-max(1, int(math.Round(s.tol*float64(s.lo)))))
}
