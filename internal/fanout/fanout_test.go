package fanout

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// drain reads s until its channel closes.
func drain[T any](s *Sub[T]) []T {
	var out []T
	for v := range s.C() {
		out = append(out, v)
	}
	return out
}

func waitDone[T any](t *testing.T, s *Sub[T]) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not end")
	}
}

// Many subscribers that keep up get every value, in order, while several
// goroutines publish (run with -race).
func TestManySubscribersGetEverythingInOrder(t *testing.T) {
	for _, p := range []Policy{DropNewest, DropOldest, CloseSlow} {
		t.Run(p.String(), func(t *testing.T) {
			const subs, publishers, each = 50, 4, 200
			h := New[[2]int](p)
			var got [subs][][2]int
			var wg sync.WaitGroup
			for i := range subs {
				s := h.Subscribe(context.Background(), publishers*each) // room for all: nobody is slow
				wg.Add(1)
				go func() { defer wg.Done(); got[i] = drain(s) }()
			}
			var pub sync.WaitGroup
			for p := range publishers {
				pub.Add(1)
				go func() {
					defer pub.Done()
					for i := range each {
						h.Publish([2]int{p, i})
					}
				}()
			}
			pub.Wait()
			h.Close()
			wg.Wait()
			for i := range subs {
				if len(got[i]) != publishers*each {
					t.Fatalf("subscriber %d got %d values, want %d", i, len(got[i]), publishers*each)
				}
				next := [publishers]int{}
				for _, v := range got[i] {
					if v[1] != next[v[0]] {
						t.Fatalf("subscriber %d: publisher %d's value %d came when %d was due", i, v[0], v[1], next[v[0]])
					}
					next[v[0]]++
				}
				if i > 0 && got[i][0] != got[0][0] { // one global order for all
					for j := range got[i] {
						if got[i][j] != got[0][j] {
							t.Fatalf("subscribers 0 and %d disagree on the order at %d", i, j)
						}
					}
				}
			}
		})
	}
}

// A subscriber that does not read does not slow the others, and the policy
// decides what it keeps.
func TestSlowSubscriberPerPolicy(t *testing.T) {
	for _, tc := range []struct {
		p       Policy
		want    []int // what the slow one reads afterwards
		dropped uint64
		err     error
	}{
		{DropNewest, []int{0, 1, 2}, 7, ErrClosed},
		{DropOldest, []int{7, 8, 9}, 7, ErrClosed},
		{CloseSlow, []int{0, 1, 2}, 1, ErrSlow},
	} {
		t.Run(tc.p.String(), func(t *testing.T) {
			var hooks atomic.Int64
			h := New[int](tc.p, WithDropHook(func() { hooks.Add(1) }))
			slow := h.Subscribe(context.Background(), 3)
			fast := h.Subscribe(context.Background(), 1)
			var fastGot []int
			for i := range 10 {
				h.Publish(i) // never blocks, though slow never reads
				fastGot = append(fastGot, <-fast.C())
			}
			if len(fastGot) != 10 || fast.Dropped() != 0 {
				t.Fatalf("fast subscriber got %v, dropped %d", fastGot, fast.Dropped())
			}
			if tc.p == CloseSlow {
				waitDone(t, slow)
				if h.Len() != 1 {
					t.Fatalf("Len = %d after cutting off the slow one, want 1", h.Len())
				}
			}
			h.Close()
			got := drain(slow)
			if len(got) != len(tc.want) {
				t.Fatalf("slow subscriber read %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("slow subscriber read %v, want %v", got, tc.want)
				}
			}
			if slow.Dropped() != tc.dropped || uint64(hooks.Load()) != tc.dropped {
				t.Fatalf("dropped %d (hook %d), want %d", slow.Dropped(), hooks.Load(), tc.dropped)
			}
			if !errors.Is(slow.Err(), tc.err) {
				t.Fatalf("Err = %v, want %v", slow.Err(), tc.err)
			}
		})
	}
}

// The subscription ends with its context: its channel closes, it leaves
// the hub, and publishing goes on.
func TestUnsubscribeOnContextEnd(t *testing.T) {
	h := New[string](CloseSlow)
	ctx, cancel := context.WithCancel(context.Background())
	s := h.Subscribe(ctx, 4)
	other := h.Subscribe(context.Background(), 4)
	if s.Err() != nil || h.Len() != 2 {
		t.Fatalf("Err %v, Len %d", s.Err(), h.Len())
	}
	h.Publish("a")
	cancel()
	waitDone(t, s)
	if !errors.Is(s.Err(), ErrUnsubscribed) || h.Len() != 1 {
		t.Fatalf("after cancel: Err %v, Len %d", s.Err(), h.Len())
	}
	if got := drain(s); len(got) != 1 || got[0] != "a" {
		t.Fatalf("read %v after cancel, want the queued [a]", got)
	}
	if n := h.Publish("b"); n != 1 {
		t.Fatalf("Publish reached %d subscribers, want 1", n)
	}
	other.Close()
	other.Close() // idempotent
	if h.Len() != 0 || !errors.Is(other.Err(), ErrUnsubscribed) {
		t.Fatalf("after Close: Len %d, Err %v", h.Len(), other.Err())
	}

	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	late := h.Subscribe(done, 1) // context already over
	waitDone(t, late)
}

func TestPublishAndSubscribeAfterClose(t *testing.T) {
	h := New[int](DropOldest)
	s := h.Subscribe(context.Background(), 2)
	h.Close()
	h.Close()
	waitDone(t, s)
	if n := h.Publish(1); n != 0 {
		t.Fatalf("Publish after Close reached %d", n)
	}
	late := h.Subscribe(context.Background(), 2)
	waitDone(t, late)
	if _, ok := <-late.C(); ok || !errors.Is(late.Err(), ErrClosed) {
		t.Fatalf("subscription after Close: open channel or Err %v", late.Err())
	}
	if len(drain(s)) != 0 || !errors.Is(s.Err(), ErrClosed) {
		t.Fatalf("Err %v", s.Err())
	}
}

// Initial values come first; a filter skips values for its subscriber
// only, and skipped values are not drops.
func TestInitialAndFilter(t *testing.T) {
	var h Hub[int] // zero Hub: DropNewest
	evens := h.SubscribeWith(context.Background(), SubOptions[int]{Buffer: 2, Initial: []int{-2, -4, -6},
		Filter: func(v int) bool { return v%2 == 0 }})
	all := h.Subscribe(context.Background(), 10)
	h.Publish(1)
	h.Publish(3)
	if len(evens.C()) != 3 || evens.Dropped() != 0 {
		t.Fatalf("filtered values took room or counted as drops: %d queued, %d dropped", len(evens.C()), evens.Dropped())
	}
	for _, want := range []int{-2, -4, -6} {
		if v := <-evens.C(); v != want {
			t.Fatalf("got %d, want %d", v, want)
		}
	}
	h.Publish(4)
	h.Close()
	if got := drain(evens); len(got) != 1 || got[0] != 4 {
		t.Fatalf("evens read %v", got)
	}
	if got := drain(all); len(got) != 3 {
		t.Fatalf("all read %v", got)
	}
}

// Subscribing, publishing, unsubscribing and closing all at once (-race).
func TestConcurrentChurn(t *testing.T) {
	for _, p := range []Policy{DropNewest, DropOldest, CloseSlow} {
		h := New[int](p)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
						h.Publish(i)
					}
				}
			}()
		}
		for i := range 200 {
			ctx, cancel := context.WithCancel(context.Background())
			s := h.Subscribe(ctx, 1+i%3)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel()
				n := 0
				for range s.C() {
					if n++; n == 5 {
						cancel()
					}
				}
				_ = s.Err()
			}()
			if i%2 == 0 {
				s.Close()
			}
		}
		h.Close()
		close(stop)
		wg.Wait()
		if h.Len() != 0 {
			t.Fatalf("%v: %d subscribers left after Close", p, h.Len())
		}
	}
}
