package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

var ctx = context.Background()

// fakeClock advances one second per reading.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// openLog opens the log at place (a directory or a database URL: see
// forBackends) with a fake clock.
func openLog(t *testing.T, place string) *Log {
	t.Helper()
	l, err := openAt(t, place, Options{Now: (&fakeClock{t: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fill appends n entries: target cam-<i>, alternating users and actions.
func fill(t *testing.T, l *Log, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := 1; i <= n; i++ {
		user, action := "li.wei", ActionView
		if i%2 == 0 {
			user, action = "zhang.min", ActionSearch
		}
		e, err := l.Append(ctx, Entry{Actor: Actor{User: user, Role: "police_liaison"}, Action: action,
			Target: fmt.Sprintf("cam-%d", i), Details: json.RawMessage(fmt.Sprintf(`{ "i": %d, "note": "a<b & c" }`, i))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func mustVerify(t *testing.T, l *Log, entries uint64) {
	t.Helper()
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Entries != entries || rep.Last != entries {
		t.Fatalf("Verify: %+v, want %d entries", rep, entries)
	}
}

func wantBreak(t *testing.T, err error, seq uint64, kind string) {
	t.Helper()
	var b *BreakError
	if !errors.As(err, &b) {
		t.Fatalf("got %v, want a break at seq %d (%s)", err, seq, kind)
	}
	if b.Seq != seq || b.Kind != kind {
		t.Fatalf("got %v, want a break at seq %d (%s)", b, seq, kind)
	}
	t.Logf("detected: %v", b)
}

func TestAppendChainsAndVerifies(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		l := openLog(t, place(t))
		es := fill(t, l, 10)
		for i, e := range es {
			if e.Seq != uint64(i+1) {
				t.Fatalf("entry %d has seq %d", i, e.Seq)
			}
			if i == 0 && e.Prev != GenesisHash {
				t.Fatalf("first prev %s", e.Prev)
			}
			if i > 0 && e.Prev != es[i-1].Hash {
				t.Fatalf("entry %d does not link to its predecessor", i)
			}
			if e.Hash != ComputeHash(e) || e.Time.Location() != time.UTC {
				t.Fatalf("entry %d: hash or time wrong: %+v", i, e)
			}
		}
		if string(es[0].Details) != `{"i":1,"note":"a<b & c"}` {
			t.Fatalf("details not compacted as given: %s", es[0].Details)
		}
		mustVerify(t, l, 10)
		if seq, h := l.Head(); seq != 10 || h != es[9].Hash {
			t.Fatalf("Head() = %d %s", seq, h)
		}
		// What is read back hashes the same as what Append returned.
		got, err := l.Get(ctx, 3)
		if err != nil || got.Hash != ComputeHash(got) || got.Hash != es[2].Hash {
			t.Fatalf("Get(3) = %+v, %v", got, err)
		}
	})
}

func TestAppendRejects(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		l := openLog(t, place(t))
		for _, e := range []Entry{
			{Actor: Actor{User: "a"}},
			{Actor: Actor{User: "a"}, Action: "Drop Table"},
			{Action: ActionLogin},
			{Actor: Actor{User: "a"}, Action: ActionLogin, Details: json.RawMessage(`{"x":`)},
			{Actor: Actor{User: "a"}, Action: ActionLogin, Details: json.RawMessage(`"` + strings.Repeat("x", MaxDetails) + `"`)},
		} {
			if _, err := l.Append(ctx, e); err == nil {
				t.Errorf("Append(%+v) accepted", e)
			}
		}
		if seq, _ := l.Head(); seq != 0 {
			t.Fatalf("a rejected entry took seq %d", seq)
		}
	})
}

func TestCanonicalIsDocumented(t *testing.T) {
	e := Entry{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Actor: Actor{User: "u", Role: "admin"},
		Action: "login", Target: "", Details: json.RawMessage(`{"ip":"10.0.0.1"}`), Prev: GenesisHash}
	want := "vigil-audit/1\n1:7\n30:2026-01-02T03:04:05.000000006Z\n1:u\n5:admin\n5:login\n0:\n17:{\"ip\":\"10.0.0.1\"}\n64:" + GenesisHash + "\n"
	if got := string(Canonical(e)); got != want {
		t.Fatalf("Canonical:\n%q\nwant\n%q", got, want)
	}
}

func TestList(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		l := openLog(t, place(t))
		fill(t, l, 20) // times t0+1s .. t0+20s
		cases := []struct {
			name string
			f    Filter
			want []uint64
		}{
			{"all", Filter{}, seqs(1, 20)},
			{"limit", Filter{Limit: 3}, []uint64{1, 2, 3}},
			{"after", Filter{After: 17}, []uint64{18, 19, 20}},
			{"time", Filter{From: t0.Add(5 * time.Second), To: t0.Add(8 * time.Second)}, []uint64{5, 6, 7}},
			{"user", Filter{User: "zhang.min", Limit: 3}, []uint64{2, 4, 6}},
			{"action+time", Filter{Action: ActionView, From: t0.Add(10 * time.Second)}, []uint64{11, 13, 15, 17, 19}},
			{"target", Filter{Target: "cam-12"}, []uint64{12}},
			{"role", Filter{Role: "guard"}, nil},
		}
		for _, c := range cases {
			es, err := l.List(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range es {
				got = append(got, e.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}
	})
}

func seqs(a, b uint64) []uint64 {
	var s []uint64
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func TestVerifyDetectsTampering(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		cases := []struct {
			name   string
			tamper func(t *testing.T, l *Log)
			seq    uint64
			kind   string
		}{
			{"edit a byte of the target", func(t *testing.T, l *Log) {
				put(t, l, 5, bytes.Replace(raw(t, l, 5), []byte(`"cam-5"`), []byte(`"cam-6"`), 1))
			}, 5, BreakEdited},
			{"edit the actor", func(t *testing.T, l *Log) {
				put(t, l, 3, bytes.Replace(raw(t, l, 3), []byte(`li.wei`), []byte(`li.wai`), 1))
			}, 3, BreakEdited},
			{"edit the time", func(t *testing.T, l *Log) {
				put(t, l, 4, bytes.Replace(raw(t, l, 4), []byte(`03:00:04Z`), []byte(`03:00:05Z`), 1))
			}, 4, BreakEdited},
			{"garble an entry", func(t *testing.T, l *Log) {
				v := raw(t, l, 6)
				v[0] = 'x'
				put(t, l, 6, v)
			}, 6, BreakEdited},
			{"edit and rehash", func(t *testing.T, l *Log) {
				var e Entry
				json.Unmarshal(raw(t, l, 5), &e)
				e.Target = "cam-99"
				e.Hash = ComputeHash(e)
				v, _ := marshal(e)
				put(t, l, 5, v)
			}, 6, BreakPrevLink},
			{"rewrite the last entry, rehashed", func(t *testing.T, l *Log) {
				var e Entry
				json.Unmarshal(raw(t, l, 10), &e)
				e.Actor.User = "nobody"
				e.Hash = ComputeHash(e)
				v, _ := marshal(e)
				put(t, l, 10, v)
			}, 10, BreakEdited},
			{"delete one", func(t *testing.T, l *Log) { del(t, l, 5) }, 5, BreakMissing},
			{"delete the first", func(t *testing.T, l *Log) { del(t, l, 1) }, 1, BreakMissing},
			{"delete the last", func(t *testing.T, l *Log) { del(t, l, 10) }, 10, BreakMissing},
			{"swap two", func(t *testing.T, l *Log) {
				a, b := raw(t, l, 4), raw(t, l, 5)
				put(t, l, 4, b)
				put(t, l, 5, a)
			}, 4, BreakReordered},
			{"swap and renumber", func(t *testing.T, l *Log) {
				var a, b Entry
				json.Unmarshal(raw(t, l, 4), &a)
				json.Unmarshal(raw(t, l, 5), &b)
				a.Seq, b.Seq = 5, 4
				va, _ := marshal(a)
				vb, _ := marshal(b)
				put(t, l, 4, vb)
				put(t, l, 5, va)
			}, 4, BreakEdited},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				l := openLog(t, place(t))
				fill(t, l, 10)
				mustVerify(t, l, 10)
				c.tamper(t, l)
				_, err := l.Verify(ctx)
				wantBreak(t, err, c.seq, c.kind)
			})
		}
	})
}

// A tail removed while central was down stays visible after more appends:
// the chain continues after the head, not after what is left.
func TestRemovedTailStaysVisible(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		dir := place(t)
		l := openLog(t, dir)
		fill(t, l, 6)
		del(t, l, 6)
		del(t, l, 5)
		l.Close()
		l = openLog(t, dir)
		e := fill(t, l, 1)[0]
		if e.Seq != 7 {
			t.Fatalf("appended seq %d after a removed tail, want 7", e.Seq)
		}
		_, err := l.Verify(ctx)
		wantBreak(t, err, 5, BreakMissing)
	})
}

func TestConcurrentAppends(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		l := openLog(t, place(t))
		const writers, each = 8, 60
		var wg sync.WaitGroup
		seen := make(chan uint64, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					e, err := l.Append(ctx, Entry{Actor: Actor{User: fmt.Sprintf("u%d", w), Role: "guard"}, Action: ActionView, Target: fmt.Sprint(i)})
					if err != nil {
						t.Error(err)
						return
					}
					seen <- e.Seq
				}
			}()
		}
		wg.Wait()
		close(seen)
		got := map[uint64]bool{}
		for s := range seen {
			if got[s] {
				t.Fatalf("seq %d given twice", s)
			}
			got[s] = true
		}
		if len(got) != writers*each {
			t.Fatalf("%d distinct seqs", len(got))
		}
		mustVerify(t, l, writers*each)
	})
}

func TestRestartKeepsTheChain(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		dir := place(t)
		l := openLog(t, dir)
		first := fill(t, l, 5)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, Entry{Actor: Actor{User: "a"}, Action: ActionLogin}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v", err)
		}
		l = openLog(t, dir)
		if seq, h := l.Head(); seq != 5 || h != first[4].Hash {
			t.Fatalf("after restart head is %d %s", seq, h)
		}
		more := fill(t, l, 3)
		if more[0].Seq != 6 || more[0].Prev != first[4].Hash {
			t.Fatalf("after restart: %+v", more[0])
		}
		// The new clock starts earlier than the stored times: they are
		// clamped, never running backwards.
		if more[0].Time.Before(first[4].Time) {
			t.Fatalf("time ran backwards across the restart")
		}
		mustVerify(t, l, 8)
	})
}

// Central passes its own database with a prefix; other keys are left alone.
func TestSharedDatabase(t *testing.T) {
	l := openLog(t, t.TempDir())
	if err := l.st.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("s/other"), []byte("x")) }); err != nil {
		t.Fatal(err)
	}
	other, err := Open(l.st.db, "audit2/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	fill(t, l, 3)
	if _, err := other.Append(ctx, Entry{Actor: Actor{User: "x", Role: "admin"}, Action: ActionConfigChange}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l, 3)
	if rep, err := other.Verify(ctx); err != nil || rep.Entries != 1 {
		t.Fatalf("second log: %+v %v", rep, err)
	}
}

func TestExport(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		l := openLog(t, place(t))
		es := fill(t, l, 12)
		var buf bytes.Buffer
		info, err := l.Export(ctx, &buf, 4, 9)
		if err != nil {
			t.Fatal(err)
		}
		if info.First != 4 || info.Last != 9 || info.Entries != 6 || info.Prev != es[2].Hash || info.Head != es[8].Hash {
			t.Fatalf("Export info %+v", info)
		}
		got, err := VerifyExport(bytes.NewReader(buf.Bytes()))
		if err != nil || got != info {
			t.Fatalf("VerifyExport = %+v, %v; want %+v", got, err, info)
		}
		if err := l.CheckAnchor(ctx, got); err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(buf.String(), "\n")
		lines = lines[:len(lines)-1]
		join := func(ls []string) *strings.Reader { return strings.NewReader(strings.Join(ls, "")) }

		edited := append([]string(nil), lines...)
		edited[2] = strings.Replace(edited[2], "cam-6", "cam-7", 1)
		_, err = VerifyExport(join(edited))
		wantBreak(t, err, 6, BreakEdited)

		dropped := append(append([]string(nil), lines[:3]...), lines[4:]...)
		_, err = VerifyExport(join(dropped))
		wantBreak(t, err, 7, BreakMissing)

		swapped := append([]string(nil), lines...)
		swapped[1], swapped[2] = swapped[2], swapped[1]
		_, err = VerifyExport(join(swapped))
		wantBreak(t, err, 5, BreakMissing)

		// A slice rebuilt from scratch (rehashed, new anchor) verifies alone but
		// not against the log.
		var forged []string
		prev := strings.Repeat("1", 64)
		for _, ln := range lines {
			var e Entry
			json.Unmarshal([]byte(ln), &e)
			e.Prev = prev
			e.Hash = ComputeHash(e)
			prev = e.Hash
			v, _ := marshal(e)
			forged = append(forged, string(v)+"\n")
		}
		fi, err := VerifyExport(join(forged))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.CheckAnchor(ctx, fi); err == nil {
			t.Fatal("a forged slice is anchored in the log")
		}

		// The whole log from seq 1 is anchored at the genesis hash.
		buf.Reset()
		if _, err := l.Export(ctx, &buf, 0, 0); err != nil {
			t.Fatal(err)
		}
		if fi, err := VerifyExport(&buf); err != nil || fi.Prev != GenesisHash || fi.Entries != 12 {
			t.Fatalf("full export: %+v %v", fi, err)
		}
		if _, err := l.Export(ctx, io_discard{}, 5, 13); err == nil {
			t.Fatal("exported past the head")
		}
	})
}

type io_discard struct{}

func (io_discard) Write(b []byte) (int, error) { return len(b), nil }
