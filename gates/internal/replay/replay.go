// Package replay remembers recently seen event IDs in bounded memory, so a
// webhook request or an MQTT message delivered twice (a replay, a retry,
// QoS 1 redelivery) is recognised. IDs are forgotten after a TTL, which
// callers set to outlive the window in which a request is accepted at
// all, and the oldest are dropped early when the set is full.
package replay

import (
	"sync"
	"time"
)

// Set is a bounded set of IDs with expiry, safe for concurrent use.
type Set struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	seq     uint64
	live    map[string]uint64 // id → sequence of its entry in queue
	queue   []entry           // oldest first
	evicted uint64
}

type entry struct {
	id  string
	seq uint64
	at  time.Time
}

// New returns a set holding at most max IDs, each for ttl.
func New(max int, ttl time.Duration) *Set {
	if max < 1 {
		max = 1
	}
	return &Set{max: max, ttl: ttl, live: map[string]uint64{}}
}

// Reserve records id as seen at now. It returns false if id is already
// there: the caller has a duplicate.
func (s *Set) Reserve(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trim(now)
	if _, ok := s.live[id]; ok {
		return false
	}
	for len(s.live) >= s.max { // full: forget the oldest before its time
		s.pop()
		s.evicted++
	}
	s.seq++
	s.live[id] = s.seq
	s.queue = append(s.queue, entry{id: id, seq: s.seq, at: now})
	return true
}

// Release forgets id: its event was not delivered, so a resend must pass.
func (s *Set) Release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, id)
	if len(s.queue) > 2*s.max+16 { // released entries pile up: compact
		q := s.queue[:0]
		for _, e := range s.queue {
			if s.live[e.id] == e.seq {
				q = append(q, e)
			}
		}
		s.queue = q
	}
}

// Len is the number of IDs remembered.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// Evicted counts IDs dropped before their TTL because the set was full.
func (s *Set) Evicted() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// trim drops expired entries and released ones at the head.
func (s *Set) trim(now time.Time) {
	for len(s.queue) > 0 {
		e := s.queue[0]
		if s.live[e.id] == e.seq && now.Sub(e.at) < s.ttl {
			return
		}
		s.pop()
	}
}

// pop removes the head entry (and its ID if the entry is still current).
func (s *Set) pop() {
	e := s.queue[0]
	s.queue[0] = entry{}
	s.queue = s.queue[1:]
	if s.live[e.id] == e.seq {
		delete(s.live, e.id)
	}
}
