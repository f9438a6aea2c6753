package notify

import "sync"

// queue is one sink's bounded FIFO of undelivered events. Publish pushes
// from any goroutine; the sink's goroutine is the only one that peeks and
// pops. The head stays in the queue while it is being delivered (and
// counts against the bound) and is removed only once the receiver has
// acknowledged it, so a crash of the attempt loses nothing; the drop
// policy never removes the head while it is in flight.
type queue struct {
	mu       sync.Mutex
	items    []Event
	limit    int
	inFlight bool          // items[0] is being delivered
	ready    chan struct{} // a token when items became non-empty
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends e. If the queue is full it drops one event first: the
// oldest that is not red and not in flight, else the oldest not in
// flight, where e itself counts as the newest candidate. It returns the
// dropped event, if any.
func (q *queue) push(e Event) (dropped Event, didDrop bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.limit {
		start := 0
		if q.inFlight {
			start = 1
		}
		victim := -1 // index into items; len(items) is e itself
		for i := start; i < len(q.items); i++ {
			if q.items[i].Severity != SeverityRed {
				victim = i
				break
			}
		}
		if victim < 0 && e.Severity != SeverityRed {
			victim = len(q.items)
		}
		if victim < 0 {
			victim = start
		}
		if victim >= len(q.items) {
			return e, true
		}
		dropped = q.items[victim]
		q.items = append(q.items[:victim], q.items[victim+1:]...)
		didDrop = true
	}
	q.items = append(q.items, e)
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped, didDrop
}

// peek marks the head in flight and returns it.
func (q *queue) peek() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return Event{}, false
	}
	q.inFlight = true
	return q.items[0], true
}

// pop removes the head that peek returned.
func (q *queue) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.inFlight {
		panic("notify: queue.pop without peek")
	}
	q.items[0] = Event{}
	q.items = q.items[1:]
	q.inFlight = false
}

// release ends a failed delivery of the head, leaving it first in line.
func (q *queue) release() {
	q.mu.Lock()
	q.inFlight = false
	q.mu.Unlock()
}

// drain empties the queue, returning how many events it held.
func (q *queue) drain() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	q.items, q.inFlight = nil, false
	return n
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
