package gpio

import (
	"sync"
	"time"
)

// Edge is one change of a line's logical level.
type Edge struct {
	Active bool
	Time   time.Time
}

// Line is one digital input: a dry contact, a button, a relay output of a
// card reader. Hardware lines come from OpenLine; tests and the simulator
// use SimLine.
type Line interface {
	// Level reads the current logical level (true = active).
	Level() (bool, error)
	// Edges delivers level changes as they are detected. It may drop
	// edges when the reader falls behind (the adapter re-reads Level
	// once the line settles) and is closed by Close.
	Edges() <-chan Edge
	Close() error
}

// SimLine is a Line driven by code: the simulator and tests set its level,
// contact bounce included.
type SimLine struct {
	mu     sync.Mutex
	level  bool
	closed bool
	edges  chan Edge
}

// NewSimLine returns a line at the given level.
func NewSimLine(active bool) *SimLine {
	return &SimLine{level: active, edges: make(chan Edge, 1024)}
}

// Set changes the level; like hardware, only a change makes an edge.
func (s *SimLine) Set(active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.level == active {
		return
	}
	s.level = active
	select {
	case s.edges <- Edge{Active: active, Time: time.Now()}:
	default: // the kernel's event buffer overflows the same way
	}
}

// Level implements Line.
func (s *SimLine) Level() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level, nil
}

// Edges implements Line.
func (s *SimLine) Edges() <-chan Edge { return s.edges }

// Close implements Line.
func (s *SimLine) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.edges)
	}
	return nil
}
