package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/internal/kv"
)

// maxBatch bounds the entries the writer commits in one transaction.
const maxBatch = 256

// commitTimeout bounds one commit (PostgreSQL: a server that stopped
// answering fails the batch instead of holding every Append).
const commitTimeout = 30 * time.Second

// appender is a log's one writer goroutine (run) and what it owns: it
// numbers, chains and commits entries in the order they arrive, several
// per transaction under load, and alone moves the head.
type appender struct {
	be    backend
	floor *kv.Floor
	log   *slog.Logger
	now   func() time.Time
	key   []byte

	reqs chan *request
	quit chan struct{}
	done chan struct{}

	// head is the newest entry this writer committed (or found at
	// open). With a shared backend it is only what Head falls back to
	// when the database cannot be read: commits read the stored head.
	mu   sync.Mutex // guards head for readers; the writer alone changes it
	head head
}

type request struct {
	e    Entry
	once string // AppendOnce's key, or ""
	done chan result
}

type result struct {
	e        Entry
	appended bool
	err      error
}

// current returns the head's sequence number and hash.
func (a *appender) current() (uint64, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.head.Seq, a.head.Hash
}

// submit hands one entry to the writer and waits for its result.
func (a *appender) submit(ctx context.Context, e Entry, once string) result {
	if err := normalize(&e); err != nil {
		return result{err: err}
	}
	r := &request{e: e, once: once, done: make(chan result, 1)}
	select {
	case <-a.quit:
		return result{err: ErrClosed}
	default:
	}
	select {
	case a.reqs <- r:
	case <-a.quit:
		return result{err: ErrClosed}
	case <-ctx.Done():
		return result{err: ctx.Err()}
	}
	select {
	case res := <-r.done:
		return res
	case <-a.done:
		select {
		case res := <-r.done:
			return res
		default:
			return result{err: ErrClosed}
		}
	case <-ctx.Done():
		return result{err: ctx.Err()}
	}
}

// run is the writer goroutine: it takes what requests are waiting, up
// to maxBatch, and commits them together.
func (a *appender) run() {
	defer close(a.done)
	batch := make([]*request, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-a.reqs:
			batch = append(batch, r)
		case <-a.quit:
			a.failPending()
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-a.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		a.commit(batch)
	}
}

// failPending fails the requests still queued when the log closes.
func (a *appender) failPending() {
	for {
		select {
		case r := <-a.reqs:
			r.done <- result{err: ErrClosed}
		default:
			return
		}
	}
}

// commit chains and writes one batch in one transaction; on failure
// nothing of it is kept and the head stays where it was.
func (a *appender) commit(batch []*request) {
	if a.floor != nil {
		if err := a.floor.Admit(false); err != nil {
			failBatch(batch, err)
			return
		}
		defer func() {
			if err := a.floor.Written(); err != nil {
				a.log.Warn("audit: preallocating database files", "err", err)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	out := make([]result, len(batch))
	var h head
	err := a.be.update(ctx, func(tx writeTx) error {
		h = a.head
		if a.be.shared() {
			// Other processes append too: continue from the head as
			// stored, locked until this transaction ends.
			rec, ok, err := tx.lockHead()
			if err != nil {
				return err
			}
			if h, err = continueHead(tx, rec, ok); err != nil {
				return err
			}
		}
		for i, r := range batch {
			var err error
			if out[i], h, err = a.chain(tx, r, h); err != nil {
				return err
			}
		}
		if a.key != nil {
			h.MAC = headMAC(a.key, h.Seq, h.Hash)
		}
		hv, _ := json.Marshal(h)
		return tx.putHead(hv)
	})
	if err != nil {
		failBatch(batch, err)
		return
	}
	a.mu.Lock()
	a.head = h
	a.mu.Unlock()
	for i, r := range batch {
		r.done <- out[i]
	}
}

// chain numbers and chains r's entry after h and writes it in tx,
// returning its result and the new head. For an AppendOnce key already
// recorded it writes nothing: the result is the recorded entry, not
// appended, and h stays the head.
func (a *appender) chain(tx writeTx, r *request, h head) (result, head, error) {
	if r.once != "" {
		// The transaction sees its own writes: a key recorded earlier
		// in this batch counts too.
		e, seen, err := recorded(tx, r.once)
		if err != nil {
			return result{}, h, err
		}
		if seen {
			return result{e: e}, h, nil
		}
	}
	e := r.e
	t := a.now().UTC().Round(0)
	if t.Before(h.Time) {
		t = h.Time
	}
	e.Seq, e.Time, e.Prev = h.Seq+1, t, h.Hash
	e.Hash = ComputeHash(e)
	if a.key != nil {
		e.MAC = ComputeMAC(a.key, e.Hash)
	}
	v, err := marshal(e)
	if err != nil {
		return result{}, h, err
	}
	if err := tx.putEntry(e.Seq, e.Time, v); err != nil {
		return result{}, h, err
	}
	if r.once != "" {
		if err := tx.putOnce(r.once, e.Seq); err != nil {
			return result{}, h, err
		}
	}
	return result{e: e, appended: true}, head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}, nil
}

// failBatch fails every request of a batch that was not written.
func failBatch(batch []*request, err error) {
	err = fmt.Errorf("audit: append: %w", err)
	for _, r := range batch {
		r.done <- result{err: err}
	}
}
