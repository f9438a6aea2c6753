package central

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// TestBadgerAlertStoreContract runs the AlertStore contract against the
// Badger store. Another implementation (PostgreSQL, a later issue) runs
// the same testAlertStoreContract with its own open function.
func TestBadgerAlertStoreContract(t *testing.T) {
	testAlertStoreContract(t, func(t *testing.T) AlertStore {
		s, err := OpenStoreWith(StoreOptions{Dir: t.TempDir(), Log: testLogger(), MinFree: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// testAlertStoreContract checks what alertstore.go promises of an
// AlertStore: open returns a new, empty store that the test may use alone
// (and that is closed when t ends).
func testAlertStoreContract(t *testing.T, open func(t *testing.T) AlertStore) {
	t.Run("sequence and idempotent put", func(t *testing.T) { contractSequence(t, open(t)) })
	t.Run("not found", func(t *testing.T) { contractNotFound(t, open(t)) })
	t.Run("query pages in creation order", func(t *testing.T) { contractQuery(t, open(t)) })
	t.Run("query filters and pages newest first", func(t *testing.T) { contractHistory(t, open(t)) })
	t.Run("snapshots", func(t *testing.T) { contractSnapshots(t, open(t)) })
	t.Run("apply: workflow and per-op errors", func(t *testing.T) { contractApply(t, open(t)) })
	t.Run("events", func(t *testing.T) { contractEvents(t, open(t)) })
	t.Run("view is consistent", func(t *testing.T) { contractView(t, open(t)) })
	t.Run("startup state", func(t *testing.T) { contractStartup(t, open(t)) })
	t.Run("disk", func(t *testing.T) { contractDisk(t, open(t)) })
}

func contractPut(t *testing.T, s AlertStore, a wire.Alert) (Record, bool) {
	t.Helper()
	rec, inserted, err := s.Put(a)
	if err != nil {
		t.Fatalf("Put %s: %v", a.ID, err)
	}
	return rec, inserted
}

func contractSequence(t *testing.T, s AlertStore) {
	if s.LastSeq() != 0 {
		t.Fatalf("empty store: LastSeq %d, want 0", s.LastSeq())
	}
	a := testAlert(northID, "c-1")
	rec, inserted := contractPut(t, s, a)
	if !inserted || rec.Seq != 1 || rec.ID != "c-1" || rec.State != StateRaised {
		t.Fatalf("first put: inserted=%v %+v, want a raised record at seq 1", inserted, rec)
	}
	again := a
	again.Summary = "re-sent"
	dup, inserted := contractPut(t, s, again)
	if inserted || dup.Seq != 1 || dup.Summary != a.Summary || s.LastSeq() != 1 {
		t.Fatalf("re-put: inserted=%v seq=%d summary=%q last=%d, want the stored record and no new seq",
			inserted, dup.Seq, dup.Summary, s.LastSeq())
	}
	for i := 2; i <= 4; i++ {
		if rec, _ := contractPut(t, s, testAlert(northID, fmt.Sprintf("c-%d", i))); rec.Seq != uint64(i) {
			t.Fatalf("alert %d took seq %d: sequence numbers have no gaps", i, rec.Seq)
		}
	}
	if s.LastSeq() != 4 {
		t.Fatalf("LastSeq %d, want 4", s.LastSeq())
	}
	got, err := s.Get("c-3")
	if err != nil || got.Seq != 3 || got.EdgeID != northID || got.Time.Location() != time.UTC {
		t.Fatalf("Get c-3: %+v, %v", got, err)
	}
	recs, err := s.Since(1, 10)
	if err != nil || len(recs) != 3 || recs[0].ID != "c-2" || recs[2].ID != "c-4" {
		t.Fatalf("Since(1): %d records, %v; want c-2..c-4 in order", len(recs), err)
	}
}

func contractNotFound(t *testing.T, s AlertStore) {
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown: %v, want ErrNotFound", err)
	}
	contractPut(t, s, testAlert(northID, "no-pic"))
	if _, err := s.Snapshot("no-pic"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Snapshot of an alert without one: %v, want ErrNotFound", err)
	}
	if _, err := s.Snapshot("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Snapshot of an unknown alert: %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateSnapshot("no-pic", "u-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateSnapshot unknown: %v, want ErrNotFound", err)
	}
}

func contractQuery(t *testing.T, s AlertStore) {
	for i := 1; i <= 5; i++ {
		a := testAlert(northID, fmt.Sprintf("q-%d", i))
		if i%2 == 0 {
			a.Severity = wire.Yellow
		}
		contractPut(t, s, a)
	}
	page, next, err := s.Query(AlertQuery{Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != "q-1" || page[1].ID != "q-2" {
		t.Fatalf("first page: %v, %v", ids(page), err)
	}
	page, _, err = s.Query(AlertQuery{Since: next, Limit: 10})
	if err != nil || len(page) != 3 || page[0].ID != "q-3" {
		t.Fatalf("next page from %d: %v, %v", next, ids(page), err)
	}
	page, _, err = s.Query(AlertQuery{Limit: 10, Severities: map[wire.Severity]bool{wire.Yellow: true}})
	if err != nil || len(page) != 2 || page[0].ID != "q-2" || page[1].ID != "q-4" {
		t.Fatalf("yellow only: %v, %v", ids(page), err)
	}
}

// contractHistory: the alert history's filters (edge, camera as source
// or link, gate as source or gate state, who handled it) and descending
// pages, whose cursor is the next page's Before and 0 at the oldest.
func contractHistory(t *testing.T, s AlertStore) {
	put := func(id, edge, source string, links []string, gate string) {
		a := testAlert(edge, id)
		a.Source = source
		for _, l := range links {
			a.Links = append(a.Links, wire.Link{Camera: l})
		}
		if gate != "" {
			a.Gate = &wire.GateState{Gate: gate, Door: "open"}
		}
		contractPut(t, s, a)
	}
	put("h-1", northID, "cam-a", nil, "")
	put("h-2", northID, "gate-1", []string{"cam-a", "cam-b"}, "")
	put("h-3", northID, "cam-b", nil, "gate-1")
	put("h-4", southID, "cam-a", nil, "")
	put("h-5", northID, "cam-c", nil, "")
	put("h-6", northID, "cam-a", nil, "")
	ack := &op{action: &Action{Name: ActionAcknowledge, Actor: "ann"}, alertID: "h-3"}
	if _, err := s.apply([]*op{ack}, time.Now()); err != nil || ack.err != nil {
		t.Fatalf("acknowledge: %v %v", err, ack.err)
	}
	for name, c := range map[string]struct {
		q    AlertQuery
		want string
	}{
		"camera":           {AlertQuery{Limit: 10, Camera: "cam-a"}, "h-1 h-2 h-4 h-6"},
		"camera and edge":  {AlertQuery{Limit: 10, Camera: "cam-a", Edge: northID}, "h-1 h-2 h-6"},
		"gate":             {AlertQuery{Limit: 10, Gate: "gate-1"}, "h-2 h-3"},
		"handled by":       {AlertQuery{Limit: 10, HandledBy: "ann"}, "h-3"},
		"handled by other": {AlertQuery{Limit: 10, HandledBy: "edge:" + northID}, ""},
		"desc camera":      {AlertQuery{Limit: 10, Camera: "cam-b", Desc: true}, "h-3 h-2"},
	} {
		got, _, err := s.Query(c.q)
		if err != nil || fmt.Sprint(strings.Join(ids(got), " ")) != c.want {
			t.Errorf("%s: %v, %v; want %s", name, ids(got), err, c.want)
		}
	}
	var pages []string
	q := AlertQuery{Limit: 2, Desc: true}
	for range 5 {
		got, next, err := s.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, fmt.Sprint(ids(got), next))
		if next == 0 {
			break
		}
		q.Before = next
	}
	if want := "[h-6 h-5] 5 [h-4 h-3] 3 [h-2 h-1] 0"; strings.Join(pages, " ") != want {
		t.Errorf("newest first, two a page: %s; want %s", strings.Join(pages, " "), want)
	}
	if got, next, _ := s.Query(AlertQuery{Limit: 10, Desc: true, Camera: "cam-z"}); len(got) != 0 || next != 0 {
		t.Errorf("nothing matched: %v next %d, want none and 0", ids(got), next)
	}
	if got, next, _ := s.Query(AlertQuery{Limit: 10, Desc: true, Before: 4, Since: 1}); strings.Join(ids(got), " ") != "h-3 h-2" || next != 0 {
		t.Errorf("between 1 and 4: %v next %d", ids(got), next)
	}
	if got, next, _ := s.Query(AlertQuery{Limit: 10, Desc: true, State: "open", Before: 4}); strings.Join(ids(got), " ") != "h-3 h-2 h-1" || next != 0 {
		t.Errorf("open, below 4: %v next %d", ids(got), next)
	}
	// ReceivedSince ends a newest-first scan at what was received before
	// it (the playback timeline's bound), however much older is stored.
	time.Sleep(20 * time.Millisecond)
	mark := time.Now()
	time.Sleep(20 * time.Millisecond)
	put("h-7", northID, "cam-a", nil, "")
	put("h-8", northID, "cam-b", nil, "")
	if got, next, _ := s.Query(AlertQuery{Limit: 10, Desc: true, ReceivedSince: mark}); strings.Join(ids(got), " ") != "h-8 h-7" || next != 0 {
		t.Errorf("received since the mark: %v next %d, want h-8 h-7 and 0", ids(got), next)
	}
}

func ids(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func contractSnapshots(t *testing.T, s AlertStore) {
	a := testAlert(northID, "pic")
	a.Snapshot, a.SnapshotTime = []byte("\xff\xd8alert\xff\xd9"), a.Time
	contractPut(t, s, a)
	if b, err := s.Snapshot("pic"); err != nil || !bytes.Equal(b, a.Snapshot) {
		t.Fatalf("Snapshot: %q, %v", b, err)
	}
	u := &wire.AlertUpdate{ID: "pic-u1", AlertID: "pic", EdgeID: northID, Time: a.Time.Add(time.Second),
		Summary: "still there", Snapshot: []byte("\xff\xd8update\xff\xd9"), SnapshotTime: a.Time.Add(time.Second)}
	o := &op{update: u}
	changes, err := s.apply([]*op{o}, time.Now())
	if err != nil || o.err != nil || len(changes) != 1 || changes[0].Seq != 2 {
		t.Fatalf("update: changes %+v, %v, op err %v", changes, err, o.err)
	}
	if b, err := s.UpdateSnapshot("pic", "pic-u1"); err != nil || !bytes.Equal(b, u.Snapshot) {
		t.Fatalf("UpdateSnapshot: %q, %v", b, err)
	}
	if rec, _ := s.Get("pic"); rec.Summary != "still there" {
		t.Fatalf("the update did not change the record: %+v", rec)
	}
	again := &op{update: u}
	if changes, err := s.apply([]*op{again}, time.Now()); err != nil || len(changes) != 0 || s.LastSeq() != 2 {
		t.Fatalf("re-sent update: %d changes, %v, last %d: want none", len(changes), err, s.LastSeq())
	}
}

func contractApply(t *testing.T, s AlertStore) {
	contractPut(t, s, testAlert(northID, "w-1"))
	ack := &op{action: &Action{Name: ActionAcknowledge, Actor: "ann"}, alertID: "w-1"}
	unknown := &op{action: &Action{Name: ActionAcknowledge, Actor: "ann"}, alertID: "nope"}
	twice := &op{action: &Action{Name: ActionAcknowledge, Actor: "bob"}, alertID: "w-1"}
	fresh := &op{alert: ptr(testAlert(northID, "w-2"))}
	changes, err := s.apply([]*op{ack, unknown, twice, fresh}, time.Now())
	if err != nil {
		t.Fatalf("apply: %v (one op's failure must not fail the batch)", err)
	}
	if ack.err != nil || !ack.changed || ack.rec.State != StateAcknowledged {
		t.Errorf("acknowledge: %+v, %v", ack.rec, ack.err)
	}
	if !errors.Is(unknown.err, ErrNotFound) || unknown.changed {
		t.Errorf("unknown alert: err %v changed %v, want ErrNotFound", unknown.err, unknown.changed)
	}
	if !errors.Is(twice.err, ErrConflict) || twice.changed {
		t.Errorf("second acknowledge: err %v changed %v, want ErrConflict", twice.err, twice.changed)
	}
	if len(changes) != 2 || changes[0].Seq != 2 || changes[1].Seq != 3 || changes[1].Record.ID != "w-2" || s.LastSeq() != 3 {
		t.Fatalf("changes %+v, last %d: want seq 2 (acknowledge) and 3 (w-2)", changes, s.LastSeq())
	}
	if rec, _ := s.Get("w-1"); rec.State != StateAcknowledged {
		t.Fatalf("stored state %q", rec.State)
	}
}

func ptr[T any](v T) *T { return &v }

func contractEvents(t *testing.T, s AlertStore) {
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	b := &wire.EventBatch{ID: "b-1", EdgeID: northID, Events: []wire.Event{
		{Time: base.Add(2 * time.Second), Source: "gate-1", Kind: "gate.closed"},
		{ID: "j-1", Time: base, Source: "gate-1", Kind: "gate.opened"},
	}}
	if changes, err := s.apply([]*op{{events: b, site: siteID}}, time.Now()); err != nil || len(changes) != 0 {
		t.Fatalf("events: %d changes, %v: events take no sequence number", len(changes), err)
	}
	// The same event by ID in another batch, and the same batch again.
	b2 := &wire.EventBatch{ID: "b-2", EdgeID: northID, Events: []wire.Event{{ID: "j-1", Time: base, Source: "gate-1", Kind: "gate.opened"}}}
	if _, err := s.apply([]*op{{events: b2, site: siteID}, {events: b, site: siteID}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	evs, _, err := s.Events(EventQuery{From: base.Add(-time.Minute), Limit: 10})
	if err != nil || len(evs) != 2 || evs[0].Kind != "gate.opened" || evs[1].Kind != "gate.closed" || evs[0].SiteID != siteID {
		t.Fatalf("events: %+v, %v; want opened then closed, each once", evs, err)
	}
	if s.LastSeq() != 0 {
		t.Fatalf("LastSeq %d after events only", s.LastSeq())
	}
}

func contractView(t *testing.T, s AlertStore) {
	contractPut(t, s, testAlert(northID, "v-1"))
	contractPut(t, s, testAlert(northID, "v-2"))
	v := s.readView()
	defer v.Discard()
	contractPut(t, s, testAlert(northID, "v-3")) // after the view: not in it
	open, err := v.newestOpen(10)
	if err != nil || len(open) != 2 || open[0].ID != "v-2" || open[1].ID != "v-1" {
		t.Fatalf("newestOpen: %v, %v; want v-2, v-1", ids(open), err)
	}
	frames, err := v.changes(0, 2, 10)
	if err != nil || len(frames) != 2 || frames[0].seq != 1 || !bytes.Contains(frames[1].data, []byte(`"v-2"`)) {
		t.Fatalf("changes: %d frames, %v", len(frames), err)
	}
	if frames, _ := v.changes(2, 3, 10); len(frames) != 0 {
		t.Fatalf("the view sees a change made after it: %d frames", len(frames))
	}
}

func contractStartup(t *testing.T, s AlertStore) {
	a := testAlert(northID, "s-1")
	contractPut(t, s, a)
	b := testAlert(northID, "s-2")
	b.Severity, b.SiteID = wire.Yellow, siteID+"-b"
	contractPut(t, s, b)
	done := &op{action: &Action{Name: ActionResolve, Actor: "ann", Note: "checked"}, alertID: "s-1"}
	if _, err := s.apply([]*op{done}, time.Now()); err != nil || done.err != nil {
		t.Fatalf("resolve: %v, %v", err, done.err)
	}
	idx := map[string]int{}
	if err := s.openIndex(func(_ uint64, site string, rank int) { idx[site] = rank }); err != nil {
		t.Fatal(err)
	}
	if len(idx) != 1 || idx[siteID+"-b"] != wire.Yellow.Rank() {
		t.Fatalf("openIndex: %v, want only the open yellow alert's site", idx)
	}
	var opened []string
	if err := s.tamperState(func(string, string, uint64) {}, func(r Record) { opened = append(opened, r.ID) }); err != nil {
		t.Fatal(err)
	}
	if len(opened) != 1 || opened[0] != "s-2" {
		t.Fatalf("tamperState's open alerts: %v, want s-2", opened)
	}
}

func contractDisk(t *testing.T, s AlertStore) {
	if err := s.Admit(true); err != nil {
		t.Errorf("Admit(essential) with room: %v", err)
	}
	if err := s.Admit(false); err != nil {
		t.Errorf("Admit with room: %v", err)
	}
	if st, err := s.Disk(); err != nil || st.Full {
		t.Errorf("Disk: %+v, %v", st, err)
	}
}
