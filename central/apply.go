package central

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/wire"
)

// op is one mutation of the store: exactly one of alert, update, events,
// action or escalate is set. apply fills in the results; done, if set, is
// called by the writer once the batch holding the op is durable (or
// failed).
type op struct {
	alert   *wire.Alert
	update  *wire.AlertUpdate
	events  *wire.EventBatch
	action  *Action
	alertID string // for action
	site    string // for events: the sending edge's site
	// escalate is the ID of a red alert to escalate (a system step, the
	// escalator's, escalate.go).
	escalate string

	// Results.
	rec       Record
	changed   bool   // the op made a change (took a sequence number)
	frame     []byte // the change's console message
	committed bool   // the transaction holding the op is durable
	opened    bool   // an update opened a successor alert: the change is a new alert
	err       error  // this op's own failure (unknown alert, conflict); the batch still commits
	// Colour effect: the alert at rec.SiteID went from open rank from to
	// open rank to (0: not open).
	from, to int

	done func(o *op, batchErr error)
}

// apply runs ops in order in as few transactions as fit, and advances the
// sequence only when they are durable. A batch too big for one Badger
// transaction is split. The returned changes are in sequence order.
//
// Below the store's free-space floor (see admit) a guard's action fails
// alone with an error wrapping kv.ErrDiskFull, while what edges sent is
// stored from the reserve; if even the reserve is spent the whole batch
// fails, so nothing is acknowledged and edges keep their items.
func (s *Store) apply(ops []*op, now time.Time) ([]Change, error) {
	s.seqMu.lock()
	defer s.seqMu.unlock()
	ops, err := s.admit(ops)
	if err != nil {
		return nil, err
	}
	defer s.written()
	var all []Change
	for start := 0; start < len(ops); {
		end := min(len(ops), start+maxTxnOps)
		changes, err := s.applyTxn(ops[start:end], now)
		for errors.Is(err, badger.ErrTxnTooBig) && end-start > 1 {
			end = start + (end-start)/2
			changes, err = s.applyTxn(ops[start:end], now)
		}
		if err != nil {
			return all, err
		}
		all = append(all, changes...)
		start = end
	}
	return all, nil
}

// essential reports whether o came from an edge. Those are taken from the
// floor's reserve: an edge's outbox is bounded, so what central refuses
// an edge may lose, while a guard can retry an action.
func (o *op) essential() bool { return o.action == nil }

// cause says what kind of change o made, for the outlets (outlets.go).
func (o *op) cause() changeCause {
	switch {
	case o.alert != nil || o.opened:
		return causeNew
	case o.action != nil:
		return causeStep
	case o.escalate != "":
		return causeEscalate
	}
	return causeUpdate
}

// admit asks the floor about ops. It returns the ops to apply; a refused
// action is left out with its error in o.err (and o.committed false),
// for the API to answer 507. It fails only if an edge's item cannot be
// taken even from the reserve.
func (s *Store) admit(ops []*op) ([]*op, error) {
	if s.floor == nil {
		return ops, nil
	}
	kept := ops[:0:0]
	edge := false
	for _, o := range ops {
		if o.essential() {
			edge = true
			kept = append(kept, o)
			continue
		}
		if err := s.Admit(false); err != nil {
			o.rec, o.changed, o.committed, o.err, o.from, o.to = Record{}, false, false, err, 0, 0
			s.log.Warn("action refused: the store's disk is below its floor", "alert_id", o.alertID, "err", err)
			continue
		}
		kept = append(kept, o)
	}
	if edge {
		if err := s.Admit(true); err != nil {
			return nil, err
		}
	}
	return kept, nil
}

func (s *Store) applyTxn(ops []*op, now time.Time) ([]Change, error) {
	tx := badgerTx{s.db.NewTransaction(true)}
	defer tx.txn.Discard()
	changes, seq, err := runOps(tx, ops, s.lastSeq, now, s.rules)
	if err != nil {
		return nil, err
	}
	if err := tx.txn.Commit(); err != nil {
		return nil, err
	}
	for _, o := range ops {
		o.committed = true
	}
	s.lastSeq = seq
	return changes, nil
}

// alertTx is one write transaction of an alert store in the terms apply's
// ops use; each engine (Badger: badgerTx, store.go; PostgreSQL: pgTx,
// pgstore.go) maps it to its own layout, so what an op means is written
// once, here.
type alertTx interface {
	// record reads an alert by ID (ErrNotFound).
	record(id string) (Record, error)
	// putRecord stores rec (rb: its JSON) as its current state and frame
	// as change seq.
	putRecord(rec Record, rb []byte, seq uint64, frame []byte) error
	// insert indexes a new alert stored by putRecord: its ID, the open
	// index, the edge's latest self-test, its camera's tamper all-clear,
	// and its snapshot (none when empty).
	insert(rec Record, snapshot []byte) error
	// setOpen and clearOpen keep the open index (site and colour rank).
	setOpen(rec Record, rank int) error
	clearOpen(rec Record) error
	putUpdateSnapshot(alertID, updateID string, jpeg []byte) error
	// update reports whether an update ID was stored; markUpdate stores
	// it with the change it made (0: none, its alert was unknown).
	update(id string) (bool, error)
	markUpdate(id string, seq uint64) error
	// redirect is the alert updates for id go to (id itself if none).
	redirect(id string) (string, error)
	setRedirect(from, to string) error
	// batch reports whether an event batch ID was stored; putEvent
	// stores one event unless one with its key is stored (inserted
	// false); markBatch stores the batch ID.
	batch(id string) (bool, error)
	putEvent(k eventKeyParts, e StoredEvent) (inserted bool, err error)
	markBatch(id string) error
}

// runOps applies ops in order within tx, numbering changes after last.
// It returns the changes and the last number taken; the caller commits.
func runOps(tx alertTx, ops []*op, last uint64, now time.Time, rules *priorityRules) ([]Change, uint64, error) {
	seq := last
	var changes []Change
	for _, o := range ops {
		o.rec, o.changed, o.committed, o.err, o.from, o.to, o.opened = Record{}, false, false, nil, 0, 0, false
		var err error
		switch {
		case o.alert != nil:
			err = putAlert(tx, o, seq+1, now, rules)
		case o.update != nil:
			err = putUpdate(tx, o, seq+1, now, rules)
		case o.events != nil:
			err = putEvents(tx, o)
		case o.action != nil:
			err = putAction(tx, o, seq+1, now)
		case o.escalate != "":
			err = putEscalate(tx, o, seq+1, now)
		default:
			panic("central: empty store op")
		}
		if err != nil {
			return nil, last, err
		}
		if o.changed {
			seq++
			changes = append(changes, Change{Seq: seq, Type: o.changeType(), Record: o.rec, Frame: o.frame, cause: o.cause()})
		}
	}
	return changes, seq, nil
}

func (o *op) changeType() string {
	if o.alert != nil || o.opened {
		return changeTypeAlert
	}
	return changeTypeUpd
}

// setRecord writes rec as its current state and as change seq, and keeps
// the change's console message in o.frame.
func setRecord(tx alertTx, o *op, rec Record, seq uint64) error {
	rb, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	o.frame = encodeChange(o.changeType(), seq, rb)
	return tx.putRecord(rec, rb, seq, o.frame)
}

func putAlert(tx alertTx, o *op, seq uint64, now time.Time, rules *priorityRules) error {
	a := o.alert
	old, err := tx.record(a.ID)
	if err == nil {
		old.normalise()
		o.rec = old // a re-send: acknowledged again, no change
		return nil
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	rec := newRecord(*a, seq, now)
	rec.Priority = rules.priority(rec.SiteID, rec.Kind)
	return insertRecord(tx, o, rec, a.Snapshot, seq)
}

// insertRecord stores a new alert (an edge's, or a successor an update
// opened) with its indexes and snapshot.
func insertRecord(tx alertTx, o *op, rec Record, snapshot []byte, seq uint64) error {
	if err := setRecord(tx, o, rec, seq); err != nil {
		return err
	}
	if err := tx.insert(rec, snapshot); err != nil {
		return err
	}
	o.rec, o.changed, o.to = rec, true, colourRank(&rec)
	return nil
}

func putUpdate(tx alertTx, o *op, seq uint64, now time.Time, rules *priorityRules) error {
	u := o.update
	alertID, err := tx.redirect(u.AlertID)
	if err != nil {
		return err
	}
	if seen, err := tx.update(u.ID); err != nil {
		return err
	} else if seen {
		if rec, err := tx.record(alertID); err == nil {
			rec.normalise()
			o.rec = rec
		}
		return nil // a re-send
	}
	rec, err := tx.record(alertID)
	if errors.Is(err, ErrNotFound) {
		// Its alert was dropped on the edge (outbox bound) or never valid.
		// Remember the ID so re-sends are acknowledged without noise.
		o.err = fmt.Errorf("update %s for unknown alert %s: %w", u.ID, u.AlertID, ErrNotFound)
		return tx.markUpdate(u.ID, 0)
	}
	if err != nil {
		return err
	}
	rec.normalise()
	if rec.EdgeID != u.EdgeID {
		o.err = fmt.Errorf("update %s from edge %s for alert %s of edge %s", u.ID, u.EdgeID, rec.ID, rec.EdgeID)
		return nil
	}
	if !open(rec.State) && recurrence(u, &rec) {
		return openSuccessor(tx, o, rec, seq, now, rules)
	}
	return foldUpdate(tx, o, rec, seq, now)
}

// colourRank is what an alert adds to its site's colour: its severity's
// rank while it is open, except for self-tests (for installers; they
// never colour a guard's map), 0 otherwise.
func colourRank(r *Record) int {
	if !open(r.State) || r.Kind == KindSelfTest {
		return 0
	}
	return r.Severity.Rank()
}

// recurrence reports whether u says the cause happened again (its count
// went up) rather than a picture, an escalation or an all-clear.
func recurrence(u *wire.AlertUpdate, rec *Record) bool {
	return u.Count > rec.Count && u.Ended.IsZero()
}

// openSuccessor stores a recurrence of the resolved alert prev as a new
// raised alert that follows it. Its ID is the update's, so a re-sent
// update finds it (and its u/ key) and changes nothing; later updates for
// the edge's alert ID go to it (r/ key).
func openSuccessor(tx alertTx, o *op, prev Record, seq uint64, now time.Time, rules *priorityRules) error {
	u := o.update
	if _, err := tx.record(u.ID); err == nil {
		o.err = fmt.Errorf("update %s: an alert with its ID exists already: %w", u.ID, ErrConflict)
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	a := wire.Alert{ID: u.ID, EdgeID: prev.EdgeID, SiteID: prev.SiteID, Source: prev.Source, Kind: prev.Kind,
		Severity: prev.Severity, Time: u.Time, TimeSource: prev.TimeSource, Summary: prev.Summary,
		Boxes: u.Boxes, Zones: prev.Zones, Snapshot: u.Snapshot, SnapshotTime: u.SnapshotTime, Links: prev.Links, Gate: prev.Gate,
		Sensor: prev.Sensor}
	if u.Severity != "" {
		a.Severity = u.Severity
	}
	if u.Summary != "" {
		a.Summary = u.Summary
	}
	rec := newRecord(a, seq, now)
	rec.Priority = rules.priority(rec.SiteID, rec.Kind)
	rec.Follows, rec.EdgeAlertID, rec.Count, rec.LastTime = prev.ID, u.AlertID, u.Count, u.Time.UTC()
	o.opened = true
	if err := insertRecord(tx, o, rec, u.Snapshot, seq); err != nil {
		return err
	}
	if err := tx.setRedirect(u.AlertID, rec.ID); err != nil {
		return err
	}
	return tx.markUpdate(u.ID, seq)
}

// foldUpdate applies u to rec: an open alert's picture, severity,
// all-clear or recurrence (count and last_time, so consoles raise it
// again), or what a resolved alert learns afterwards (a picture, the
// all-clear), kept in its record.
func foldUpdate(tx alertTx, o *op, rec Record, seq uint64, now time.Time) error {
	u := o.update
	o.from = colourRank(&rec)
	ur := UpdateRecord{ID: u.ID, Time: u.Time.UTC(), Severity: u.Severity, Summary: u.Summary, Camera: u.Camera, Boxes: u.Boxes, Count: u.Count}
	if !u.Ended.IsZero() {
		ur.Ended = u.Ended.UTC()
		rec.Ended = ur.Ended
	}
	if u.Severity != "" {
		rec.Severity = u.Severity
	}
	if u.Summary != "" {
		rec.Summary = u.Summary
	}
	if recurrence(u, &rec) {
		rec.Count, rec.LastTime = u.Count, u.Time.UTC()
	}
	rec.Links = widenLinks(rec.Links, u.Links)
	if len(u.Snapshot) > 0 {
		if err := tx.putUpdateSnapshot(rec.ID, u.ID, u.Snapshot); err != nil {
			return err
		}
		ur.SnapshotURL = updateSnapshotURL(rec.ID, u.ID)
		if !u.SnapshotTime.IsZero() {
			ur.SnapshotTime = u.SnapshotTime.UTC()
		}
	}
	rec.Updates = append(rec.Updates, ur)
	if n := len(rec.Updates); n > maxUpdatesKept {
		rec.Updates = append([]UpdateRecord{}, rec.Updates[n-maxUpdatesKept:]...)
	}
	rec.Rev, rec.UpdatedAt = seq, now.UTC()
	if err := setRecord(tx, o, rec, seq); err != nil {
		return err
	}
	if err := tx.markUpdate(u.ID, seq); err != nil {
		return err
	}
	if open(rec.State) {
		o.to = colourRank(&rec)
		if o.to != o.from {
			if err := tx.setOpen(rec, o.to); err != nil {
				return err
			}
		}
	}
	o.rec, o.changed = rec, true
	return nil
}

// opRecord reads the alert an action or escalation applies to, normalised
// and kept in o.rec. An unknown ID is the op's own error (o.err; the batch
// goes on): ok is false and err nil. A store error is returned as err.
func opRecord(tx alertTx, o *op, id string) (rec Record, ok bool, err error) {
	rec, err = tx.record(id)
	if errors.Is(err, ErrNotFound) {
		o.err = err
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	rec.normalise()
	o.rec = rec
	return rec, true, nil
}

// putEscalate escalates a red alert still raised, once: a system step in
// its history and escalated_at. Anything else (acknowledged meanwhile,
// no longer red, escalated already) is ErrConflict and changes nothing.
func putEscalate(tx alertTx, o *op, seq uint64, now time.Time) error {
	rec, ok, err := opRecord(tx, o, o.escalate)
	if !ok {
		return err
	}
	if !waiting(&rec) {
		o.err = fmt.Errorf("%w: not a red alert waiting to be acknowledged", ErrConflict)
		return nil
	}
	o.from, o.to = colourRank(&rec), colourRank(&rec)
	rec.EscalatedAt = now.UTC()
	rec.History = append(rec.History, Step{State: StateRaised, Actor: actorSystem, At: rec.EscalatedAt, Note: noteEscalated})
	rec.Rev, rec.UpdatedAt = seq, now.UTC()
	if err := setRecord(tx, o, rec, seq); err != nil {
		return err
	}
	o.rec, o.changed = rec, true
	return nil
}

func putAction(tx alertTx, o *op, seq uint64, now time.Time) error {
	rec, ok, err := opRecord(tx, o, o.alertID)
	if !ok {
		return err
	}
	o.from = colourRank(&rec)
	if err := o.action.apply(&rec, now); err != nil {
		o.err, o.from = err, 0
		return nil
	}
	rec.Rev, rec.UpdatedAt = seq, now.UTC()
	if err := setRecord(tx, o, rec, seq); err != nil {
		return err
	}
	if open(rec.State) {
		o.to = colourRank(&rec)
	} else if err := tx.clearOpen(rec); err != nil {
		return err
	}
	o.rec, o.changed = rec, true
	return nil
}

// StoredEvent is an edge event as kept and listed by central.
type StoredEvent struct {
	EdgeID  string    `json:"edge_id"`
	SiteID  string    `json:"site_id"`
	BatchID string    `json:"batch_id"`
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Kind    string    `json:"kind"`
	Summary string    `json:"summary,omitempty"`
}

// eventNanos is an event's time as stored: nanoseconds since 1970, none
// before it.
func eventNanos(t time.Time) int64 { return max(t.UnixNano(), 0) }

func eventKey(t time.Time, edge, batch string, i int) []byte {
	k := binary.BigEndian.AppendUint64([]byte(prefixEvent), uint64(eventNanos(t)))
	k = append(k, edge...)
	k = append(k, 0)
	k = append(k, batch...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint16(k, uint16(i))
}

// eventKeyParts identify a stored event: its time, edge, batch and place
// in the batch; an event with its own ID is keyed by that ID instead
// (batch "id:<ID>", index 0), so it is stored once whichever batch
// brings it.
type eventKeyParts struct {
	time        time.Time
	edge, batch string
	idx         int
}

func putEvents(tx alertTx, o *op) error {
	b := o.events
	if seen, err := tx.batch(b.ID); err != nil || seen {
		return err // seen: a re-send
	}
	for i, e := range b.Events {
		k := eventKeyParts{e.Time, b.EdgeID, b.ID, i}
		if e.ID != "" {
			// An edge that replays its journal after a crash may send an
			// event again in another batch: store it once.
			k = eventKeyParts{e.Time, b.EdgeID, "id:" + e.ID, 0}
		}
		ev := StoredEvent{EdgeID: b.EdgeID, SiteID: o.site, BatchID: b.ID, Time: e.Time.UTC(),
			Source: e.Source, Kind: e.Kind, Summary: e.Summary}
		if _, err := tx.putEvent(k, ev); err != nil {
			return err
		}
	}
	return tx.markBatch(b.ID)
}

// widenLinks widens each camera's clip range in links to cover the range
// an update reports for it (a motion incident that goes on keeps more
// video); a camera the alert did not link yet is added, up to the wire's
// bound. Ranges only grow: a pinned second stays in the alert's clip.
func widenLinks(links, grown []wire.Link) []wire.Link {
	for _, g := range grown {
		i := slices.IndexFunc(links, func(l wire.Link) bool { return l.Camera == g.Camera })
		if i < 0 {
			if len(links) < maxRecordLinks {
				links = append(links, wire.Link{Camera: g.Camera, ClipFrom: g.ClipFrom.UTC(), ClipTo: g.ClipTo.UTC()})
			}
			continue
		}
		l := &links[i]
		if !g.ClipFrom.IsZero() && (l.ClipFrom.IsZero() || g.ClipFrom.Before(l.ClipFrom)) {
			l.ClipFrom = g.ClipFrom.UTC()
		}
		if g.ClipTo.After(l.ClipTo) {
			l.ClipTo = g.ClipTo.UTC()
		}
	}
	return links
}

// maxRecordLinks bounds the cameras one alert links (wire allows 32 per
// message).
const maxRecordLinks = 32
