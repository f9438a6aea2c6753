package central

import (
	"context"
	"time"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// AlertStore is what central keeps of alerts: each alert's record and
// snapshots, the change log the consoles replay, and the edges' events.
// Store (store.go, Badger) is the implementation; the components hold
// this interface, and testAlertStoreContract (alertstore_contract_test.go)
// is what any implementation must pass.
//
// The contract:
//
//   - Sequence numbers. Every change (a new alert, an update, a workflow
//     step) takes the next sequence number, 1 first, with no gaps; an
//     alert's Seq is the number of its creation. Numbering continues
//     after a restart. LastSeq is the newest number taken (0: none).
//   - Idempotent by ID. An alert whose ID is stored already changes
//     nothing and takes no number: Put returns the stored record with
//     inserted false (an edge re-sends what it was not acked for).
//   - One writer. apply runs ops in order and returns their changes in
//     sequence order once they are durable; each op carries its own
//     result (rec, changed, err: ErrNotFound, ErrConflict) and a failed
//     op does not fail the batch. Only one goroutine (the writer) calls
//     apply or Put at a time.
//   - Reads. Get, Snapshot and UpdateSnapshot answer ErrNotFound for what
//     is not stored. Query pages in creation order (Since: after that
//     seq) and returns the cursor to go on from; Events lists edge events
//     in time order.
//   - The disk. Admit says whether a write may go ahead: below the
//     store's free-space floor a non-essential write (a person's, which
//     can be retried) is refused with an error wrapping kv.ErrDiskFull,
//     an essential one (an edge's, whose outbox is bounded) only when
//     even the reserve is spent. Disk reports the free space now.
type AlertStore interface {
	// apply stores ops as one or more durable transactions (see above).
	apply(ops []*op, now time.Time) ([]Change, error)
	// Put stores one alert outside the writer (tools and tests).
	Put(a wire.Alert) (rec Record, inserted bool, err error)

	LastSeq() uint64
	Get(id string) (Record, error)
	Since(seq uint64, limit int) ([]Record, error)
	Query(q AlertQuery) ([]Record, uint64, error)
	Events(q EventQuery) ([]StoredEvent, time.Time, error)
	Snapshot(id string) ([]byte, error)
	UpdateSnapshot(alertID, updateID string) ([]byte, error)

	// openIndex calls f for every open alert's creation seq, site and
	// rank (the writer's site colours at startup).
	openIndex(f func(seq uint64, site string, rank int)) error
	// tamperState calls clear for every camera's all-clear mark (the
	// seq of its last green tamper alert) and then open for every open
	// alert in sequence order (the tamper set at startup, tamper.go).
	tamperState(clear func(edge, camera string, seq uint64), open func(Record)) error
	// selfTests lists each edge's latest self-test alert, by edge ID.
	selfTests() ([]Record, error)
	// setRules sets the alert priorities new alerts take (nil: the
	// default order); called before the writer starts.
	setRules(r *priorityRules)
	// readView is a consistent read at this moment: the writer takes it
	// between batches, so a console's view and its feed meet at LastSeq.
	readView() alertView

	Admit(essential bool) error
	Disk() (kv.FloorState, error)
	Close() error
}

// alertView is a consistent read of the alert store (a console's
// starting view). Discard releases it.
type alertView interface {
	// newestOpen lists up to limit open alerts, newest first.
	newestOpen(limit int) ([]Record, error)
	// changes lists up to limit changes in (after, upto] as the console
	// messages they were stored as.
	changes(after, upto uint64, limit int) ([]consoleFrame, error)
	// last is the newest change the view sees (LastSeq at that moment).
	last() uint64
	Discard()
}

// sharedAlertStore is an AlertStore that other centrals write as well
// (PGStore): the writer also publishes their changes to its consoles,
// in sequence order with its own (writer.catchUp).
type sharedAlertStore interface {
	AlertStore
	// changesIn reads the committed changes in (after, upto], oldest
	// first, at most limit.
	changesIn(after, upto uint64, limit int) ([]Change, error)
	// watch calls f with the newest change's seq whenever any central
	// commits changes, and once whenever it (re)connects, until ctx ends.
	watch(ctx context.Context, f func(last uint64))
}

var _ AlertStore = (*Store)(nil)
