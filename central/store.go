package central

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// Key layout. Records are keyed by big-endian creation sequence so a prefix
// scan returns them in arrival order; the id index makes re-sent alerts
// cheap to recognise; snapshots live apart so listing alerts never reads
// JPEG bytes. Every change (a new alert, an edge's update, a guard's
// action) takes the next sequence number and is kept in the change log,
// from which consoles resume without gaps or duplicates.
const (
	prefixSeq       = "s/" // s/<creation seq>       → Record JSON (current state)
	prefixID        = "i/" // i/<alert id>           → creation seq
	prefixSnapshot  = "p/" // p/<alert id>           → JPEG bytes
	prefixUpdSnap   = "q/" // q/<alert id>\0<upd id> → JPEG bytes of an update
	prefixChange    = "l/" // l/<change seq>         → the console message of the change (see Change)
	prefixOpen      = "o/" // o/<creation seq>       → severity rank byte + site ID, alerts not resolved
	prefixUpdateID  = "u/" // u/<update id>          → change seq (0: for an unknown alert)
	prefixBatchID   = "b/" // b/<batch id>           → nothing
	prefixEvent     = "e/" // e/<time ns><edge>\0<batch>\0<idx> → Event JSON
	prefixRedirect  = "r/" // r/<alert id>           → ID of the alert its later updates go to (its successor)
	prefixSelfTest  = "t/" // t/<edge id>            → ID of the edge's latest self-test alert
	keySchema       = "m/schema"
	schemaVersion   = 2
	maxUpdatesKept  = 20  // per alert; older updates leave the record
	maxTxnOps       = 512 // ops per Badger transaction; larger batches are split
	changeTypeAlert = "alert"
	changeTypeUpd   = "update"
)

// ErrNotFound is returned by Get and Snapshot for an unknown alert ID.
var ErrNotFound = errors.New("central: alert not found")

// Record is a stored alert as the API and consoles see it: the edge's alert
// without its snapshot bytes, central's sequence number and arrival time,
// the URL of the snapshot if there is one, and the workflow so far.
type Record struct {
	ID           string        `json:"id"`
	EdgeID       string        `json:"edge_id"`
	SiteID       string        `json:"site_id"`
	Source       string        `json:"source"`
	Kind         string        `json:"kind"`
	Severity     wire.Severity `json:"severity"`
	Time         time.Time     `json:"time"`
	TimeSource   string        `json:"time_source"`
	Summary      string        `json:"summary"`
	Boxes        []wire.Box    `json:"boxes"`
	Zones        []string      `json:"zones"`
	SnapshotTime time.Time     `json:"snapshot_time,omitzero"`
	SnapshotURL  string        `json:"snapshot_url,omitempty"`
	// Links are the cameras whose video explains the alert, with the
	// clip range the edge pinned; Gate the watched gate's state.
	Links      []wire.Link     `json:"links,omitempty"`
	Gate       *wire.GateState `json:"gate,omitempty"`
	Seq        uint64          `json:"seq"` // creation order
	ReceivedAt time.Time       `json:"received_at"`
	// Line and Direction (a perimeter.crossing), Dwell and Since (a
	// perimeter.loiter) and Path (either: the object's way, drawn over
	// the snapshot) are the edge's, as sent (wire.Alert).
	Line      string       `json:"line,omitempty"`
	Direction string       `json:"direction,omitempty"`
	Dwell     string       `json:"dwell,omitempty"`
	Since     time.Time    `json:"since,omitzero"`
	Path      []wire.Point `json:"path,omitempty"`
	// Sensor is a sensor alert's reading, threshold and the readings
	// before it (wire.SensorAlert; sensor.* kinds only).
	Sensor *wire.SensorAlert `json:"sensor,omitempty"`
	// Priority orders alerts within a colour, 1 most urgent, from the
	// kind and the site (alarms.go); recomputed by default for records
	// stored before it existed.
	Priority int `json:"priority"`
	// Count is how often the source has reported the cause in this
	// alert (1 at first; an edge's recurrence raises it), LastTime when
	// it last did (zero until a recurrence).
	Count    int       `json:"count"`
	LastTime time.Time `json:"last_time,omitzero"`
	// Follows is the resolved alert this one continues: its cause came
	// back after a guard resolved it, so it is a new alert (apply.go).
	Follows string `json:"follows,omitempty"`
	// EdgeAlertID is the ID the edge knows a successor by (the alert
	// its updates name); empty when it is ID.
	EdgeAlertID string `json:"edge_alert_id,omitempty"`
	// EscalatedAt is when central escalated the alert: red and still
	// raised alarms.escalate_after after it arrived (escalate.go).
	EscalatedAt time.Time `json:"escalated_at,omitzero"`

	State     string         `json:"state"`
	History   []Step         `json:"history"`
	Ended     time.Time      `json:"ended,omitzero"`
	Updates   []UpdateRecord `json:"updates"`
	Rev       uint64         `json:"rev"` // sequence number of the latest change
	UpdatedAt time.Time      `json:"updated_at"`
}

// UpdateRecord is an edge's update as kept in its alert.
type UpdateRecord struct {
	ID           string        `json:"id"`
	Time         time.Time     `json:"time"`
	Severity     wire.Severity `json:"severity,omitempty"`
	Summary      string        `json:"summary,omitempty"`
	Ended        time.Time     `json:"ended,omitzero"`
	SnapshotURL  string        `json:"snapshot_url,omitempty"`
	SnapshotTime time.Time     `json:"snapshot_time,omitzero"`
	Camera       string        `json:"camera,omitempty"` // whose snapshot, when not the source's
	Boxes        []wire.Box    `json:"boxes,omitempty"`  // motion boxes of its snapshot
	Count        int           `json:"count,omitempty"`  // occurrences so far, for a recurrence
}

// Change is one entry of the change log: the record as it was right after
// the change. Type is "alert" for a new alert and "update" otherwise.
// Frame is how it is stored and sent: the console message itself,
// {"type":…,"seq":…,"alert":{record}}, encoded once for the store, the
// live feed and every replay.
type Change struct {
	Seq    uint64
	Type   string
	Record Record
	Frame  []byte
	cause  changeCause // what made it, for the outlets (outlets.go)
}

// encodeChange builds a change's console message around the record's JSON.
func encodeChange(typ string, seq uint64, record []byte) []byte {
	b := make([]byte, 0, len(record)+48)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"alert":`...)
	b = append(b, record...)
	return append(b, '}')
}

// The store's free-space floor (ARCHITECTURE.md, reliability: no store
// dies of a full disk). Below DefaultMinFree free bytes on the data
// directory's disk central refuses what a person can retry (workflow
// steps in apply; other writers to the database ask Store.Admit or pass
// Store.Floor on) and keeps taking what edges send from a reserve of
// DefaultReserve bytes, a file deleted when the floor is hit. Edge items
// are essential because an edge's outbox is bounded: refusing them would
// only move the loss to the edge.
const (
	DefaultMinFree = 256 << 20
	DefaultReserve = 64 << 20
)

// Store keeps alerts, their changes and edge events in Badger. All writes
// go through apply, which one goroutine (the writer) calls at a time.
// It is central's AlertStore (alertstore.go).
type Store struct {
	db *badger.DB
	*diskGuard
	log     *slog.Logger
	lastSeq uint64         // written by apply only; read through LastSeq by others after publication
	rules   *priorityRules // alert priorities (nil: the default order); set before the writer starts
	seqMu   seqLock        // serialises writers (the writer goroutine, and tests that call Put directly)
}

// StoreOptions chooses where a store lives and its free-space floor.
type StoreOptions struct {
	Dir string
	Log *slog.Logger
	// MinFree and Reserve set the floor (0: DefaultMinFree,
	// DefaultReserve; MinFree < 0: no floor).
	MinFree, Reserve int64
}

// OpenStore opens (or creates) the store in dir with the default floor.
// Writes are synced: an ack to an edge promises the alert survives a power
// cut.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	return OpenStoreWith(StoreOptions{Dir: dir, Log: log})
}

// OpenStoreWith opens (or creates) the store o describes. On a full disk
// it releases the floor's reserve to start; it fails with an error
// wrapping a *kv.DiskFullError (rather than dying of SIGBUS in Badger's
// mmap'd files) only when even that leaves no room.
func OpenStoreWith(o StoreOptions) (*Store, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	if o.Reserve == 0 {
		o.Reserve = DefaultReserve
	}
	var floor *kv.Floor
	if o.MinFree > 0 {
		f, err := kv.NewFloor(o.Dir, o.MinFree, max(o.Reserve, 0))
		if err != nil {
			return nil, err
		}
		floor = f
	}
	db, err := kv.Open(kv.Options{Dir: o.Dir, SyncWrites: true, Logger: o.Log, Floor: floor})
	if errors.Is(err, kv.ErrDiskFull) {
		return nil, fmt.Errorf("central: cannot open the store: %w; free space on that disk and start central again", err)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, diskGuard: &diskGuard{floor: floor, dir: db.Opts().Dir, log: o.Log}, log: o.Log, seqMu: make(seqLock, 1)}
	if st, err := s.Disk(); err == nil && st.Full {
		o.Log.Warn("store opened below its free-space floor: console changes are refused, edge alerts use the reserve",
			"dir", o.Dir, "free_mib", st.Free>>20, "floor_mib", st.Min>>20)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, err
	}
	if s.lastSeq, err = maxSeq(db); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// seqLock serialises the store's writers; a channel, not a mutex, only
// for history's sake: lock and unlock read the same.
type seqLock chan struct{}

func (l seqLock) lock()   { l <- struct{}{} }
func (l seqLock) unlock() { <-l }

// maxSeq finds the highest change sequence number, so numbering continues
// after a restart.
func maxSeq(db *badger.DB) (uint64, error) {
	var last uint64
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixChange)})
		defer it.Close()
		it.Seek(seqKey(prefixChange, math.MaxUint64))
		if it.Valid() {
			last = binary.BigEndian.Uint64(it.Item().Key()[len(prefixChange):])
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("central: read last sequence: %w", err)
	}
	return last, nil
}

func (s *Store) setRules(r *priorityRules) { s.rules = r }

// LastSeq returns the sequence number of the newest change (0 if none).
func (s *Store) LastSeq() uint64 {
	s.seqMu.lock()
	defer s.seqMu.unlock()
	return s.lastSeq
}

// Put stores one alert outside the writer (tests and tools). It returns
// the existing record and inserted=false for an ID already stored.
func (s *Store) Put(a wire.Alert) (Record, bool, error) {
	o := &op{alert: &a}
	if _, err := s.apply([]*op{o}, time.Now()); err != nil {
		return Record{}, false, err
	}
	return o.rec, o.changed, o.err
}

// Since returns up to limit records with a creation sequence number above
// seq, oldest first.
func (s *Store) Since(seq uint64, limit int) ([]Record, error) {
	recs, _, err := s.Query(AlertQuery{Since: seq, Limit: limit})
	return recs, err
}

// Get returns the record of one alert, or ErrNotFound.
func (s *Store) Get(id string) (Record, error) {
	var rec Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = getRecordByID(txn, id)
		return err
	})
	return rec, err
}

// Snapshot returns an alert's JPEG, or ErrNotFound if the alert or its
// snapshot does not exist.
func (s *Store) Snapshot(id string) ([]byte, error) {
	return readBlob(s.db, []byte(prefixSnapshot+id))
}

// UpdateSnapshot returns the JPEG an edge sent with an alert update.
func (s *Store) UpdateSnapshot(alertID, updateID string) ([]byte, error) {
	return readBlob(s.db, updSnapKey(alertID, updateID))
}

// readBlob reads one value (a snapshot's JPEG), or ErrNotFound.
func readBlob(db *badger.DB, key []byte) ([]byte, error) {
	var b []byte
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		b, err = item.ValueCopy(nil)
		return err
	})
	return b, err
}

// diskGuard is the store's free-space floor (nil: none, MinFree < 0) on
// the disk of dir.
type diskGuard struct {
	floor *kv.Floor
	dir   string
	log   *slog.Logger
}

// Floor is the store's free-space floor (nil without one), for other
// writers to the store's database: they call Admit before and Written
// after a write.
func (g *diskGuard) Floor() *kv.Floor { return g.floor }

// Admit says whether a write to the store's database may go ahead now: an
// essential one (from an edge) is refused only when even the reserve is
// spent. A refusal wraps kv.ErrDiskFull and names the disk.
func (g *diskGuard) Admit(essential bool) error {
	if g.floor == nil {
		return nil
	}
	if err := g.floor.Admit(essential); err != nil {
		return fmt.Errorf("central: refused, the store's disk is full: %w", err)
	}
	return nil
}

// Disk re-reads the free space of the store's disk (zero state without a
// floor).
func (g *diskGuard) Disk() (kv.FloorState, error) {
	if g.floor == nil {
		free, err := kv.FreeBytes(g.dir)
		return kv.FloorState{Free: free}, err
	}
	return g.floor.Check()
}

// written preallocates the files Badger made for the last write.
func (g *diskGuard) written() {
	if g.floor == nil {
		return
	}
	if err := g.floor.Written(); err != nil {
		g.log.Warn("preallocating store files", "err", err)
	}
}

// Close closes the database and releases its directory lock.
func (s *Store) Close() error {
	return s.db.Close()
}

func getRecordByID(txn *badger.Txn, id string) (Record, error) {
	var rec Record
	item, err := txn.Get([]byte(prefixID + id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, err
	}
	seqBytes, err := item.ValueCopy(nil)
	if err != nil {
		return rec, err
	}
	if len(seqBytes) != 8 {
		return rec, fmt.Errorf("central: corrupt id index for %q", id)
	}
	return getRecordBySeq(txn, binary.BigEndian.Uint64(seqBytes))
}

func getRecordBySeq(txn *badger.Txn, seq uint64) (Record, error) {
	var rec Record
	item, err := txn.Get(seqKey(prefixSeq, seq))
	if err != nil {
		return rec, fmt.Errorf("central: record %d: %w", seq, err)
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) })
	return rec, err
}

func seqKey(prefix string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefix), seq)
}

func updSnapKey(alertID, updateID string) []byte {
	return []byte(prefixUpdSnap + alertID + "\x00" + updateID)
}

// newRecord turns a received alert into its stored form. Times are kept in
// UTC; empty lists become [] so consoles need no null checks.
func newRecord(a wire.Alert, seq uint64, now time.Time) Record {
	r := Record{
		ID:         a.ID,
		EdgeID:     a.EdgeID,
		SiteID:     a.SiteID,
		Source:     a.Source,
		Kind:       a.Kind,
		Severity:   a.Severity,
		Time:       a.Time.UTC(),
		TimeSource: a.TimeSource,
		Summary:    a.Summary,
		Boxes:      a.Boxes,
		Zones:      a.Zones,
		Links:      a.Links,
		Gate:       a.Gate,
		Seq:        seq,
		ReceivedAt: now.UTC(),
		State:      StateRaised,
		History:    []Step{{State: StateRaised, Actor: "edge:" + a.EdgeID, At: a.Time.UTC()}},
		Updates:    []UpdateRecord{},
		Rev:        seq,
		UpdatedAt:  now.UTC(),
		Count:      max(a.Count, 1),
		Line:       a.Line,
		Direction:  a.Direction,
		Dwell:      a.Dwell,
		Path:       a.Path,
		Sensor:     a.Sensor,
	}
	if !a.Since.IsZero() {
		r.Since = a.Since.UTC()
	}
	if r.Boxes == nil {
		r.Boxes = []wire.Box{}
	}
	if r.Zones == nil {
		r.Zones = []string{}
	}
	if !a.SnapshotTime.IsZero() {
		r.SnapshotTime = a.SnapshotTime.UTC()
	}
	if len(a.Snapshot) > 0 {
		r.SnapshotURL = snapshotURL(a.ID)
	}
	return r
}

// normalise fills what records written by an older central lack.
func (r *Record) normalise() {
	if r.State == "" {
		r.State = StateRaised
	}
	if r.History == nil {
		r.History = []Step{{State: StateRaised, Actor: "edge:" + r.EdgeID, At: r.Time}}
	}
	if r.Updates == nil {
		r.Updates = []UpdateRecord{}
	}
	if r.Rev == 0 {
		r.Rev = r.Seq
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.ReceivedAt
	}
	if r.Count == 0 {
		r.Count = 1
	}
	if r.Priority == 0 {
		r.Priority = defaultPriority(r.Kind)
	}
}

func snapshotURL(id string) string {
	return "/api/v1/alerts/" + url.PathEscape(id) + "/snapshot.jpg"
}

func updateSnapshotURL(alertID, updateID string) string {
	return "/api/v1/alerts/" + url.PathEscape(alertID) + "/updates/" + url.PathEscape(updateID) + "/snapshot.jpg"
}

// openValue is the o/ index value: what colours need without the record.
func openValue(rank int, site string) []byte { return append([]byte{byte(rank)}, site...) }

// migrate brings a store written by the first central (records and id
// index only) to the current layout: a change log entry and an open index
// entry for every alert.
func migrate(db *badger.DB) error {
	var have bool
	err := db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(keySchema))
		have = err == nil
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil || have {
		return err
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixSeq), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r Record
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			r.normalise()
			rb, _ := json.Marshal(r)
			cb := encodeChange(changeTypeAlert, r.Seq, rb)
			for _, kv := range [][2][]byte{
				{seqKey(prefixSeq, r.Seq), rb},
				{seqKey(prefixChange, r.Seq), cb},
				{seqKey(prefixOpen, r.Seq), openValue(r.Severity.Rank(), r.SiteID)},
			} {
				if err := wb.Set(kv[0], kv[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("central: migrating store: %w", err)
	}
	if err := wb.Set([]byte(keySchema), []byte{schemaVersion}); err != nil {
		return err
	}
	return wb.Flush()
}
