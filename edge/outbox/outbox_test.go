package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

func alert(i int) wire.Alert {
	return wire.Alert{ID: fmt.Sprintf("a%03d", i), EdgeID: "e", Source: "c", Kind: "motion", Severity: wire.Yellow, Time: time.Now().UTC()}
}

func ids(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.ID + " ")
	}
	return b.String()
}

func TestOrderAckAndReopen(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := o.Changed()
	for i := range 10 {
		if err := o.Append(alert(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-changed:
	default:
		t.Fatal("Append did not signal Changed")
	}
	if err := o.Append(alert(3)); err != nil { // duplicate: no-op
		t.Fatal(err)
	}
	if o.Len() != 10 {
		t.Fatalf("Len = %d, want 10", o.Len())
	}
	es, err := o.After(0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 || es[0].ID != "a000" || es[3].ID != "a003" || es[0].Kind != wire.TypeAlert {
		t.Fatalf("After(0,4) = %+v", es)
	}
	var a wire.Alert
	if err := json.Unmarshal(es[1].Body, &a); err != nil || a.ID != "a001" {
		t.Fatalf("body of a001: %s", es[1].Body)
	}
	rest, _ := o.After(es[3].Seq, 100)
	if len(rest) != 6 || rest[0].ID != "a004" {
		t.Fatalf("After(%d) = %d entries", es[3].Seq, len(rest))
	}
	if err := o.Ack("a000", "a001", "nope", "a001"); err != nil {
		t.Fatal(err)
	}
	if o.Len() != 8 {
		t.Fatalf("Len after ack = %d, want 8", o.Len())
	}
	bytesBefore := o.Stats().Bytes
	o.Close()

	// Reopen: what was not acknowledged is still there, in order, and new
	// items queue after it; the byte count is rebuilt.
	o, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Len() != 8 || o.Stats().Bytes != bytesBefore {
		t.Fatalf("after reopen: Len %d bytes %d, want 8 and %d", o.Len(), o.Stats().Bytes, bytesBefore)
	}
	if err := o.AppendUpdate(wire.AlertUpdate{ID: "u1", AlertID: "a002", EdgeID: "e", Time: time.Now()}, wire.Yellow); err != nil {
		t.Fatal(err)
	}
	if err := o.AppendEvents(wire.EventBatch{ID: "b1", EdgeID: "e", Events: []wire.Event{{Time: time.Now(), Source: "g", Kind: "gate.opened"}}}); err != nil {
		t.Fatal(err)
	}
	all, _ := o.After(0, 100)
	if got := ids(all); got != "a002 a003 a004 a005 a006 a007 a008 a009 u1 b1 " {
		t.Fatalf("after reopen: %s", got)
	}
	if all[8].Kind != wire.TypeAlertUpdate || all[9].Kind != wire.TypeEventBatch || all[9].Severity != wire.Green {
		t.Fatalf("kinds: %+v %+v", all[8], all[9])
	}
}

// sized makes an item whose stored size is about n bytes.
func sized(id string, sev wire.Severity, n int) Item {
	body, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", n)})
	return Item{Kind: wire.TypeAlert, ID: id, Severity: sev, Body: body}
}

// The byte bound drops green first, then yellow, oldest first, never an
// item more severe than the incoming one, and never red.
func TestByteBoundDropsGreenThenYellowNeverRed(t *testing.T) {
	o, err := OpenWith(Options{Dir: t.TempDir(), MaxBytes: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	put := func(it Item) error { return o.Put(it) }
	for _, it := range []Item{
		sized("g1", wire.Green, 1800), sized("y1", wire.Yellow, 1800), sized("r1", wire.Red, 1800),
		sized("g2", wire.Green, 1800), sized("y2", wire.Yellow, 1800),
	} {
		if err := put(it); err != nil {
			t.Fatal(err)
		}
	}
	if st := o.Stats(); st.Bytes > st.MaxBytes || st.Dropped() != 0 {
		t.Fatalf("five items of ~1.9 kB: %+v", st)
	}
	steps := []struct {
		item    Item
		err     error
		want    string
		dropped [2]uint64 // green, yellow
	}{
		// A yellow item pushes out the oldest green.
		{sized("y3", wire.Yellow, 1800), nil, "y1 r1 g2 y2 y3 ", [2]uint64{1, 0}},
		// A green item may only push out greens: the oldest goes.
		{sized("g3", wire.Green, 1800), nil, "y1 r1 y2 y3 g3 ", [2]uint64{2, 0}},
		// Red pushes out green, then the oldest yellow.
		{sized("r2", wire.Red, 3600), nil, "r1 y2 y3 r2 ", [2]uint64{3, 1}},
		// A green with no greens left to drop is itself dropped.
		{sized("g4", wire.Green, 3600), ErrFull, "r1 y2 y3 r2 ", [2]uint64{4, 1}},
		// Red never goes: with only red and yellow queued, red drops yellow...
		{sized("r3", wire.Red, 3600), nil, "r1 r2 r3 ", [2]uint64{4, 3}},
		// ...and is stored over the bound when nothing else can go.
		{sized("r4", wire.Red, 3600), nil, "r1 r2 r3 r4 ", [2]uint64{4, 3}},
		{sized("y4", wire.Yellow, 100), ErrFull, "r1 r2 r3 r4 ", [2]uint64{4, 4}},
	}
	for _, st := range steps {
		err := put(st.item)
		if !errors.Is(err, st.err) {
			t.Fatalf("put %s: %v, want %v", st.item.ID, err, st.err)
		}
		all, _ := o.After(0, 100)
		s := o.Stats()
		if got := ids(all); got != st.want || s.DroppedGreen != st.dropped[0] || s.DroppedYellow != st.dropped[1] {
			t.Fatalf("after %s: %s green %d yellow %d, want %s %v", st.item.ID, got, s.DroppedGreen, s.DroppedYellow, st.want, st.dropped)
		}
	}
	if s := o.Stats(); s.Overflow != 1 || s.Bytes <= s.MaxBytes {
		t.Fatalf("red over the bound: %+v", s)
	}
	// Acks free space: a yellow fits again.
	if err := o.Ack("r1", "r2"); err != nil {
		t.Fatal(err)
	}
	if err := put(sized("y5", wire.Yellow, 100)); err != nil {
		t.Fatal(err)
	}
}

// Several outboxes share one database under their own prefixes (the load
// benchmark runs 500 edges this way) without seeing each other's items.
func TestSharedDatabase(t *testing.T) {
	db, err := kv.Open(kv.Options{Dir: t.TempDir(), SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := OpenWith(Options{DB: db, Namespace: "edge-a/"})
	b, _ := OpenWith(Options{DB: db, Namespace: "edge-b/"})
	for i := range 3 {
		a.Append(alert(i))
	}
	b.Append(alert(7))
	if err := a.Close(); err != nil { // does not close the shared database
		t.Fatal(err)
	}
	a2, err := OpenWith(Options{DB: db, Namespace: "edge-a/"})
	if err != nil {
		t.Fatal(err)
	}
	ea, _ := a2.After(0, 10)
	eb, _ := b.After(0, 10)
	if ids(ea) != "a000 a001 a002 " || ids(eb) != "a007 " || b.Len() != 1 {
		t.Fatalf("a: %s b: %s", ids(ea), ids(eb))
	}
}

// Alerts queued by the first outbox (bare alert JSON) load and send as
// alert items.
func TestReadsFirstFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(kv.Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	a := alert(1)
	a.Severity = wire.Red
	v, _ := json.Marshal(a)
	err = db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(append([]byte("o/"), 0, 0, 0, 0, 0, 0, 0, 5), v); err != nil {
			return err
		}
		return txn.Set([]byte("i/"+a.ID), []byte{0, 0, 0, 0, 0, 0, 0, 5})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	es, _ := o.After(0, 10)
	if len(es) != 1 || es[0].Kind != wire.TypeAlert || es[0].ID != a.ID || es[0].Severity != wire.Red || string(es[0].Body) != string(v) {
		t.Fatalf("old entry read as %+v", es)
	}
	o.Append(alert(2))
	if err := o.Ack(a.ID); err != nil || o.Len() != 1 {
		t.Fatalf("ack old entry: %v, len %d", err, o.Len())
	}
}

// An acknowledgement costs no fsync of its own: acknowledged items leave
// the queue at once and the disk with the next write or FlushAcks. Until
// then a crash would bring them back, to be sent again, which central
// recognises by ID.
func TestAcksDeleteLazily(t *testing.T) {
	db, err := kv.Open(kv.Options{Dir: t.TempDir(), SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reopen := func() *Outbox {
		o, err := OpenWith(Options{DB: db, Namespace: "e/"})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := reopen()
	for i := range 4 {
		o.Append(alert(i))
	}
	o.Ack("a000", "a001")
	if o.Len() != 2 {
		t.Fatalf("Len after ack = %d", o.Len())
	}
	if crashed := reopen(); crashed.Len() != 4 {
		t.Fatalf("before any write the acked items are still on disk: Len %d, want 4", crashed.Len())
	}
	o.Append(alert(9)) // carries the deletes
	if after := reopen(); ids(mustAfter(t, after)) != "a002 a003 a009 " {
		t.Fatalf("after the next write: %s", ids(mustAfter(t, after)))
	}
	o.Ack("a002")
	if err := o.FlushAcks(); err != nil {
		t.Fatal(err)
	}
	if after := reopen(); ids(mustAfter(t, after)) != "a003 a009 " {
		t.Fatalf("after FlushAcks: %s", ids(mustAfter(t, after)))
	}
}

func mustAfter(t *testing.T, o *Outbox) []Entry {
	t.Helper()
	es, err := o.After(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// The newest items are served from memory, older ones from disk, in one
// ordered answer.
func TestAfterMixesCacheAndDisk(t *testing.T) {
	o, err := OpenWith(Options{Dir: t.TempDir(), CacheBytes: 1500})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for i := range 12 {
		if err := o.Put(sized(fmt.Sprintf("i%02d", i), wire.Yellow, 200)); err != nil {
			t.Fatal(err)
		}
	}
	o.Ack("i00", "i01", "i02", "i03", "i04") // frees cache for the next ones
	for i := 12; i < 16; i++ {
		o.Put(sized(fmt.Sprintf("i%02d", i), wire.Yellow, 200))
	}
	want := "i05 i06 i07 i08 i09 i10 i11 i12 i13 i14 i15 "
	if got := ids(mustAfter(t, o)); got != want {
		t.Fatalf("After(0) = %s, want %s", got, want)
	}
	es, _ := o.After(0, 3)
	if ids(es) != "i05 i06 i07 " {
		t.Fatalf("After(0, 3) = %s", ids(es))
	}
	es, _ = o.After(es[2].Seq, 100)
	if ids(es) != "i08 i09 i10 i11 i12 i13 i14 i15 " {
		t.Fatalf("After(i07) = %s", ids(es))
	}
	var body map[string]string
	if err := json.Unmarshal(es[7].Body, &body); err != nil || len(body["pad"]) != 200 {
		t.Fatalf("cached body: %s", es[7].Body)
	}
}
