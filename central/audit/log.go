package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/kv"
)

// Options tunes a log. Zero fields take the defaults.
type Options struct {
	// Now is the clock for entry times (default time.Now). Times never
	// run backwards in the log: an entry is stamped no earlier than the
	// one before it.
	Now func() time.Time
	Log *slog.Logger
	// Floor, if set, is the free-space floor of the database's disk
	// (central passes its store's). Below it Append fails with an error
	// wrapping kv.ErrDiskFull, so an action that must be on the record
	// (an export, a download) is refused rather than done off the record
	// or crashing central when Badger cannot back its mmap'd files.
	Floor *kv.Floor
	// Key is the audit key (KeySize bytes, kept outside the database:
	// LoadOrCreateKey). With it every entry gets a MAC and Verify checks
	// them; without it (tests, tools that only read the public chain) the
	// log is the plain hash chain.
	Key []byte
	// NoBackfill keeps Open from adding MACs to a log written before it
	// had a key (a read-only verifier sets it).
	NoBackfill bool
}

// Log is an open audit log. Append is safe for concurrent use: one writer
// goroutine (see appender) numbers, chains and commits entries in the
// order they arrive, several per transaction under load. On PostgreSQL
// (OpenPG) several processes may hold the same log: each commit continues
// the chain from the head it locks in the database.
type Log struct {
	st    store    // the Badger backend (Open, OpenDir)
	pg    *pgStore // the PostgreSQL backend (OpenPG); st is unused then
	log   *slog.Logger
	key   []byte
	ownDB bool
	w     *appender // nil in a Log made only to verify (backfill)
	once  sync.Once
}

// be is the log's backend.
func (l *Log) be() backend {
	if l.pg != nil {
		return l.pg
	}
	return l.st
}

// defaults fills in o's zero fields and checks the key.
func (o *Options) defaults() error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Key != nil && len(o.Key) != KeySize {
		return fmt.Errorf("audit: key of %d bytes, want %d", len(o.Key), KeySize)
	}
	return nil
}

// Open opens the log kept under prefix in db (which stays the caller's:
// Close does not close it). Central passes its store's database and a
// prefix no other record uses, e.g. "audit/". The database should sync
// writes: an entry is durable when Append returns.
func Open(db *badger.DB, prefix string, o Options) (*Log, error) {
	if db == nil || prefix == "" {
		return nil, errors.New("audit: Open needs a database and a key prefix")
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	l := &Log{st: store{db: db, prefix: []byte(prefix)}, log: o.Log, key: o.Key}
	if err := l.start(context.Background(), o); err != nil {
		return nil, err
	}
	return l, nil
}

// start adds the MACs a log written before its key lacks, finds the head
// and starts the writer.
func (l *Log) start(ctx context.Context, o Options) error {
	if l.key != nil && !o.NoBackfill {
		if err := l.backfill(ctx); err != nil {
			return err
		}
	}
	h, err := readHead(ctx, l.be())
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	l.w = &appender{be: l.be(), floor: o.Floor, log: o.Log, now: o.Now, key: o.Key, head: h,
		reqs: make(chan *request, maxBatch), quit: make(chan struct{}), done: make(chan struct{})}
	go l.w.run()
	return nil
}

// OpenDir opens (or creates) a log in its own Badger database in dir, with
// synced writes. Close closes the database too.
func OpenDir(dir string, o Options) (*Log, error) {
	db, err := kv.Open(kv.Options{Dir: dir, SyncWrites: true, Logger: o.Log, Floor: o.Floor})
	if err != nil {
		return nil, err
	}
	l, err := Open(db, "audit/", o)
	if err != nil {
		db.Close()
		return nil, err
	}
	l.ownDB = true
	return l, nil
}

// Close stops the writer (pending Appends fail with ErrClosed) and, for a
// log from OpenDir, closes the database. A PostgreSQL pool stays open:
// it is the caller's.
func (l *Log) Close() error {
	var err error
	l.once.Do(func() {
		close(l.w.quit)
		<-l.w.done
		if l.ownDB {
			err = l.st.db.Close()
		}
	})
	return err
}

// headTimeout bounds Head's and End's reads (PostgreSQL: a server that
// stopped answering).
const headTimeout = 5 * time.Second

// Head returns the sequence number and hash of the newest entry (0 and
// GenesisHash for an empty log). On PostgreSQL it is read from the
// database, so it includes other processes' appends; if the database
// cannot be read it is the newest this process knows of.
func (l *Log) Head() (uint64, string) {
	if l.be().shared() {
		ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
		defer cancel()
		h, err := readHead(ctx, l.be())
		if err == nil {
			return h.Seq, h.Hash
		}
		l.log.Warn("audit: reading the head; answering the last one known", "err", err)
	}
	return l.w.current()
}

// Append records e and returns it as stored, with its seq, time, prev and
// hash. It returns once the entry is committed. If ctx ends first the
// entry may still be written.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	res := l.w.submit(ctx, e, "")
	return res.e, res.err
}

// Report summarises a verified log.
type Report struct {
	Entries uint64 // entries checked
	Last    uint64 // seq of the newest entry
	Head    string // its hash
	MACs    bool   // every entry's MAC (and the head's) was checked with the key
}

// Verify walks the whole log and checks every entry: its key and seq
// agree, no seq is missing (from 1 to the head), each hash matches its
// content, each prev is the previous entry's hash, time never runs
// backwards, and the newest entry is the head. With a key it also checks
// every entry's MAC and the head record's: a chain that holds but whose
// MAC does not is BreakForged, reported only when the hash chain itself
// has no break (which names the damage more precisely). The first
// problem is returned as a *BreakError naming its seq.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	rep := Report{MACs: l.key != nil}
	var forged *BreakError
	var stored head
	var haveHead bool
	err := l.be().view(ctx, func(r reads) error {
		rec, ok, err := r.headRecord()
		if err != nil {
			return err
		}
		if ok {
			haveHead = true
			if err := json.Unmarshal(rec, &stored); err != nil {
				return &BreakError{Seq: 0, Kind: BreakEdited, Detail: "the head record does not parse"}
			}
		}
		prevHash, prevTime, want := GenesisHash, time.Time{}, uint64(1)
		err = r.scan(0, scanAll, func(seq uint64, v []byte) error {
			if want%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if seq != want {
				return &BreakError{Seq: want, Kind: BreakMissing, Detail: fmt.Sprintf("seq %d is absent; the next entry present is seq %d", want, seq)}
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return &BreakError{Seq: seq, Kind: BreakEdited, Detail: "the entry does not parse: " + err.Error()}
			}
			if e.Seq != seq {
				return &BreakError{Seq: seq, Kind: BreakReordered, Detail: fmt.Sprintf("the entry stored as seq %d is seq %d", seq, e.Seq)}
			}
			if b := check(e, prevHash, prevTime); b != nil {
				return b
			}
			if l.key != nil && forged == nil && !macOK(e.MAC, ComputeMAC(l.key, e.Hash)) {
				detail := "the MAC does not match the entry: it was rewritten (and rehashed) without the audit key, or the key file was replaced"
				if e.MAC == "" {
					detail = "the entry has no MAC: it was written or rewritten without the audit key"
				}
				forged = &BreakError{Seq: seq, Kind: BreakForged, Detail: detail}
			}
			prevHash, prevTime = e.Hash, e.Time
			rep.Entries++
			rep.Last, rep.Head = seq, e.Hash
			want++
			return nil
		})
		var stray *strayKeyError
		if errors.As(err, &stray) {
			return &BreakError{Seq: want, Kind: BreakEdited, Detail: stray.Error()}
		}
		if err != nil {
			return err
		}
		switch {
		case !haveHead && rep.Last > 0:
			return &BreakError{Seq: rep.Last, Kind: BreakEdited, Detail: "the head record is missing"}
		case stored.Seq > rep.Last:
			return &BreakError{Seq: rep.Last + 1, Kind: BreakMissing, Detail: fmt.Sprintf("the log ends at seq %d but its head is seq %d", rep.Last, stored.Seq)}
		case stored.Seq < rep.Last:
			return &BreakError{Seq: stored.Seq + 1, Kind: BreakEdited, Detail: fmt.Sprintf("entries after the head (seq %d) were added behind the log's back", stored.Seq)}
		case haveHead && stored.Hash != rep.Head:
			return &BreakError{Seq: rep.Last, Kind: BreakEdited, Detail: "the newest entry's hash is not the head's"}
		case forged != nil:
			return forged
		case l.key != nil && haveHead && !macOK(stored.MAC, headMAC(l.key, stored.Seq, stored.Hash)):
			return &BreakError{Seq: rep.Last, Kind: BreakForged, Detail: fmt.Sprintf("the head record (seq %d) has no valid MAC: the end of the log was moved without the audit key", stored.Seq)}
		}
		return nil
	})
	if rep.Last == 0 {
		rep.Head = GenesisHash
	}
	return rep, err
}

// Filter selects entries for List. Zero fields do not filter.
type Filter struct {
	From, To time.Time // entry time in [From, To)
	User     string
	Role     string
	Action   string
	Target   string
	After    uint64 // only seq > After (a cursor: the last seq of the previous page)
	Limit    int    // default 100, at most 1000
}

// List returns the entries that match f in seq order, at most f.Limit.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var out []Entry
	err := l.be().view(ctx, func(r reads) error {
		start := f.After + 1
		if !f.From.IsZero() {
			last, _, err := r.last()
			if err != nil {
				return err
			}
			start = max(start, r.firstAtOrAfter(f.From, last))
		}
		n := 0
		return r.scan(start, scanAll, func(_ uint64, v []byte) error {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return nil // damaged: Verify reports it
			}
			if !f.To.IsZero() && !e.Time.Before(f.To) {
				return errStop // times never run backwards
			}
			if (!f.From.IsZero() && e.Time.Before(f.From)) || (f.User != "" && e.Actor.User != f.User) ||
				(f.Role != "" && e.Actor.Role != f.Role) || (f.Action != "" && e.Action != f.Action) ||
				(f.Target != "" && e.Target != f.Target) {
				return nil
			}
			out = append(out, e)
			if len(out) == limit {
				return errStop
			}
			return nil
		})
	})
	return out, err
}

// Get returns the entry seq.
func (l *Log) Get(ctx context.Context, seq uint64) (Entry, error) {
	var e Entry
	err := l.be().view(ctx, func(r reads) error {
		var err error
		e, err = getEntry(r, seq)
		return err
	})
	if errors.Is(err, errNoEntry) {
		return e, fmt.Errorf("audit: no entry %d", seq)
	}
	return e, err
}
