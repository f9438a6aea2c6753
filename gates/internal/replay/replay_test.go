package replay

import (
	"fmt"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	s := New(3, 10*time.Minute)
	if !s.Reserve("a", t0) || s.Reserve("a", t0.Add(time.Minute)) {
		t.Fatal("duplicate not recognised")
	}
	s.Release("a")
	if !s.Reserve("a", t0.Add(time.Minute)) {
		t.Fatal("released id refused")
	}
	if s.Reserve("a", t0.Add(10*time.Minute)) {
		t.Fatal("forgotten before its TTL")
	}
	if !s.Reserve("a", t0.Add(11*time.Minute)) {
		t.Fatal("not forgotten after its TTL")
	}
	for _, id := range []string{"b", "c", "d"} {
		s.Reserve(id, t0.Add(12*time.Minute))
	}
	if s.Len() != 3 || s.Evicted() != 1 || !s.Reserve("a", t0.Add(12*time.Minute)) {
		t.Fatalf("bound: len %d evicted %d", s.Len(), s.Evicted())
	}
}

func TestSetStaysBounded(t *testing.T) {
	t0 := time.Now()
	s := New(100, time.Hour)
	for i := 0; i < 10000; i++ {
		id := fmt.Sprint(i)
		s.Reserve(id, t0)
		if i%2 == 0 {
			s.Release(id)
		}
	}
	if s.Len() > 100 || len(s.queue) > 2*100+16 {
		t.Fatalf("len %d queue %d", s.Len(), len(s.queue))
	}
}
