package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	key, created, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "central-audit.key"))
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey: %v %v", created, err)
	}
	return key
}

func openKeyed(t *testing.T, place string, key []byte) *Log {
	t.Helper()
	l, err := openAt(t, place, Options{Now: (&fakeClock{t: t0}).Now, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// rewriteFrom is the insider with write access to the store but not the
// key: it edits entry seq and rehashes it and every later entry and the
// head record, so the public hash chain holds again. MACs it cannot
// compute are copied as they were (or dropped, with drop).
func rewriteFrom(t *testing.T, l *Log, seq uint64, edit func(*Entry), drop bool) {
	t.Helper()
	last, _ := l.Head()
	var prev Entry
	if seq > 1 {
		json.Unmarshal(raw(t, l, seq-1), &prev)
	}
	prevHash := GenesisHash
	if seq > 1 {
		prevHash = prev.Hash
	}
	var h head
	for s := seq; s <= last; s++ {
		var e Entry
		if err := json.Unmarshal(raw(t, l, s), &e); err != nil {
			t.Fatal(err)
		}
		if s == seq {
			edit(&e)
		}
		e.Prev = prevHash
		e.Hash = ComputeHash(e)
		if drop {
			e.MAC = ""
		}
		v, _ := marshal(e)
		put(t, l, s, v)
		prevHash = e.Hash
		h = head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}
	}
	// The head record: its MAC cannot be rebuilt either; keep the old one.
	var old head
	json.Unmarshal(headRaw(t, l), &old)
	h.MAC = old.MAC
	hv, _ := json.Marshal(h)
	setHead(t, l, hv)
}

func TestKeyedAppendWritesMACs(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		key := testKey(t)
		l := openKeyed(t, place(t), key)
		es := fill(t, l, 5)
		for _, e := range es {
			if e.MAC != ComputeMAC(key, e.Hash) {
				t.Fatalf("seq %d: MAC %q", e.Seq, e.MAC)
			}
			got, _ := l.Get(ctx, e.Seq)
			if got.MAC != e.MAC {
				t.Fatalf("stored MAC of seq %d: %q", e.Seq, got.MAC)
			}
		}
		rep, err := l.Verify(ctx)
		if err != nil || !rep.MACs || rep.Entries != 5 {
			t.Fatalf("Verify: %+v %v", rep, err)
		}
		// The MAC is the documented HMAC.
		if ComputeMAC(key, es[0].Hash) == ComputeMAC(testKey(t), es[0].Hash) {
			t.Fatal("MAC does not depend on the key")
		}
	})
}

// The attack the hash chain alone does not see: an entry edited and
// every later hash and the head recomputed.
func TestKeyedVerifyDetectsRewrite(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		for _, c := range []struct {
			name string
			seq  uint64
			drop bool
		}{
			{"edit middle, rehash the rest, keep MACs", 4, false},
			{"edit middle, rehash the rest, drop MACs", 4, true},
			{"edit the first", 1, false},
			{"edit the last", 10, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				key := testKey(t)
				l := openKeyed(t, place(t), key)
				fill(t, l, 10)
				mustVerify(t, l, 10)
				rewriteFrom(t, l, c.seq, func(e *Entry) { e.Target = "cam-99" }, c.drop)
				// Without the key the rewrite is invisible: this is the hole.
				if _, err := (&Log{st: l.st, pg: l.pg, log: l.log}).Verify(ctx); err != nil {
					t.Fatalf("the unkeyed chain should hold after a full rehash: %v", err)
				}
				_, err := l.Verify(ctx)
				wantBreak(t, err, c.seq, BreakForged)
			})
		}
	})
}

// A log written with another key (the key file replaced) is forged.
func TestKeyedVerifyWrongKey(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		dir := place(t)
		l := openKeyed(t, dir, testKey(t))
		fill(t, l, 3)
		l.Close()
		l = openKeyed(t, dir, testKey(t))
		_, err := l.Verify(ctx)
		wantBreak(t, err, 1, BreakForged)
	})
}

// Dropping the newest entries and moving the head record back is not a
// hash-chain break; the head's MAC catches it unless the insider kept
// an old head record, and a checkpoint catches it regardless.
func TestKeyedTruncation(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		key := testKey(t)
		l := openKeyed(t, place(t), key)
		es := fill(t, l, 10)
		// The head record when the log was at seq 7, saved by the insider.
		h7, _ := json.Marshal(head{Seq: 7, Hash: es[6].Hash, Time: es[6].Time, MAC: headMAC(key, 7, es[6].Hash)})
		for s := uint64(8); s <= 10; s++ {
			del(t, l, s)
		}
		forged, _ := json.Marshal(head{Seq: 7, Hash: es[6].Hash, Time: es[6].Time})
		setHead(t, l, forged)
		_, err := l.Verify(ctx)
		wantBreak(t, err, 7, BreakForged)

		// The replayed head record passes Verify...
		setHead(t, l, h7)
		mustVerify(t, l, 7)
		// ... but not a checkpoint signed when the log was at seq 9.
		end, err := l.CheckCheckpoint(ctx, 9, es[8].Hash)
		wantBreak(t, err, 8, BreakTruncated)
		if end != 7 || !strings.Contains(err.Error(), "covers seq 9, the log ends at seq 7") {
			t.Fatalf("end %d, %v", end, err)
		}
		if _, err := l.CheckCheckpoint(ctx, 7, es[6].Hash); err != nil {
			t.Fatalf("a checkpoint at the end: %v", err)
		}
		if _, err := l.CheckCheckpoint(ctx, 5, es[6].Hash); err == nil {
			t.Fatal("a checkpoint naming another hash passed")
		} else {
			wantBreak(t, err, 5, BreakRewritten)
		}
		if _, err := l.CheckCheckpoint(ctx, 0, GenesisHash); err != nil {
			t.Fatal(err)
		}
	})
}

// Removal in the middle is still a plain break with a key.
func TestKeyedDeleteMiddle(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		l := openKeyed(t, place(t), testKey(t))
		fill(t, l, 10)
		del(t, l, 5)
		_, err := l.Verify(ctx)
		wantBreak(t, err, 5, BreakMissing)
	})
}

// A log written before the key existed gets MACs on its first keyed open
// if its chain verifies; a broken one is left alone for Verify to name.
func TestKeyedBackfill(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		t.Run("intact", func(t *testing.T) {
			dir := place(t)
			l := openLog(t, dir)
			fill(t, l, 600) // more than one backfill transaction
			l.Close()
			key := testKey(t)
			l = openKeyed(t, dir, key)
			rep, err := l.Verify(ctx)
			if err != nil || rep.Entries != 600 || !rep.MACs {
				t.Fatalf("after backfill: %+v %v", rep, err)
			}
			e, _ := l.Get(ctx, 300)
			if e.MAC != ComputeMAC(key, e.Hash) {
				t.Fatalf("seq 300 not backfilled: %+v", e)
			}
			more := fill(t, l, 1)[0]
			if more.Seq != 601 || more.MAC == "" {
				t.Fatalf("append after backfill: %+v", more)
			}
			mustVerify(t, l, 601)
		})
		t.Run("broken", func(t *testing.T) {
			dir := place(t)
			l := openLog(t, dir)
			fill(t, l, 6)
			put(t, l, 3, bytes.Replace(raw(t, l, 3), []byte(`"cam-3"`), []byte(`"cam-4"`), 1))
			l.Close()
			l = openKeyed(t, dir, testKey(t))
			for s := uint64(1); s <= 6; s++ {
				if e, _ := l.Get(ctx, s); e.MAC != "" {
					t.Fatalf("seq %d got a MAC although the chain is broken", s)
				}
			}
			_, err := l.Verify(ctx)
			wantBreak(t, err, 3, BreakEdited)
		})
		t.Run("stripped", func(t *testing.T) {
			// MACs removed from some entries are not added again.
			dir := place(t)
			key := testKey(t)
			l := openKeyed(t, dir, key)
			fill(t, l, 5)
			rewriteFrom(t, l, 2, func(e *Entry) { e.Target = "x" }, true)
			l.Close()
			l = openKeyed(t, dir, key)
			_, err := l.Verify(ctx)
			wantBreak(t, err, 2, BreakForged)
		})
	})
}

// Exports carry no MAC and verify without the key.
func TestKeyedExport(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		l := openKeyed(t, place(t), testKey(t))
		es := fill(t, l, 5)
		var buf bytes.Buffer
		if _, err := l.Export(ctx, &buf, 2, 4); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), `"mac"`) {
			t.Fatalf("export carries MACs: %s", buf.String())
		}
		info, err := VerifyExport(&buf)
		if err != nil || info.Prev != es[0].Hash || info.Head != es[3].Hash {
			t.Fatalf("VerifyExport: %+v %v", info, err)
		}
		if err := l.CheckAnchor(ctx, info); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "central-audit.key")
	key, created, err := LoadOrCreateKey(path)
	if err != nil || !created || len(key) != KeySize {
		t.Fatalf("create: %v %v %d", created, err, len(key))
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	again, created, err := LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("reload: %v %v", created, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 key: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("too short"), 0o600)
	if _, _, err := LoadOrCreateKey(short); err == nil || !strings.Contains(err.Error(), "want 32") {
		t.Fatalf("a short key: %v", err)
	}
	if _, err := OpenDir(t.TempDir(), Options{Key: []byte("short")}); err == nil {
		t.Fatal("Open with a short key")
	}
}

func TestAppendOnce(t *testing.T) {
	forBackends(t, func(t *testing.T, place func(*testing.T) string) {
		dir := place(t)
		l := openKeyed(t, dir, testKey(t))
		read := Entry{Actor: Actor{User: "system", Role: "system"}, Action: "video_read", Target: "gate-north/cam-1"}
		e1, ok, err := l.AppendOnce("edge:gate-north:read:1", read)
		if err != nil || !ok || e1.Seq != 1 || e1.MAC == "" {
			t.Fatalf("first: %+v %v %v", e1, ok, err)
		}
		fill(t, l, 2)
		e2, ok, err := l.AppendOnce("edge:gate-north:read:1", read)
		if err != nil || ok {
			t.Fatalf("second: %v %v", ok, err)
		}
		if e2.Seq != 1 || e2.Hash != e1.Hash {
			t.Fatalf("second returns %+v, want the first entry", e2)
		}
		if seq, _ := l.Head(); seq != 3 {
			t.Fatalf("head %d after a repeat", seq)
		}
		if _, _, err := l.AppendOnce("", read); err == nil {
			t.Fatal("empty key accepted")
		}
		if _, _, err := l.AppendOnce("k", Entry{}); err == nil {
			t.Fatal("invalid entry accepted")
		}
		if _, ok, _ := l.AppendOnce("k", read); !ok {
			t.Fatal("a key whose entry was refused is recorded")
		}

		// Concurrent calls with a few keys: each key once.
		const workers, keys = 16, 10
		var wg sync.WaitGroup
		var mu sync.Mutex
		appended := map[string]int{}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range keys {
					key := fmt.Sprintf("race-%d", (k+w)%keys)
					_, ok, err := l.AppendOnce(key, read)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						appended[key]++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if len(appended) != keys {
			t.Fatalf("appended keys: %v", appended)
		}
		for k, n := range appended {
			if n != 1 {
				t.Fatalf("key %s appended %d times", k, n)
			}
		}
		head, _ := l.Head()
		mustVerify(t, l, head)

		// After a reopen every key is still recorded.
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.AppendOnce("new", read); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
		l = openKeyed(t, dir, l.key)
		for _, k := range []string{"edge:gate-north:read:1", "race-3", "k"} {
			if _, ok, err := l.AppendOnce(k, read); err != nil || ok {
				t.Fatalf("%s after reopen: %v %v", k, ok, err)
			}
		}
		if e, ok, err := l.AppendOnce("fresh", read); err != nil || !ok || e.Seq != head+1 {
			t.Fatalf("fresh after reopen: %+v %v %v", e, ok, err)
		}
		mustVerify(t, l, head+1)
	})
}
