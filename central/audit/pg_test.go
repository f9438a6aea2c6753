package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
)

// openReplica opens the log at url as another central process would: a
// pool of its own, its own clock.
func openReplica(t *testing.T, url string, o Options) *Log {
	t.Helper()
	l, err := OpenPG(ctx, newPool(t, url), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Two replicas on one database, each with 8 goroutines appending (and
// racing AppendOnce on the same keys), write one chain: seqs 1..N once
// each, every prev the entry before's hash, every MAC good, each key
// recorded once, and both see the same head. The second replica's clock
// runs an hour behind: its entries are stamped no earlier than the head
// it continues, so time never runs backwards across replicas either.
func TestPGReplicasShareOneChain(t *testing.T) {
	pg := postgres.Start(t)
	url := pgPlace(t, pg)
	key := testKey(t)
	logs := [2]*Log{
		openReplica(t, url, Options{Key: key, Now: (&fakeClock{t: t0}).Now}),
		openReplica(t, url, Options{Key: key, Now: (&fakeClock{t: t0.Add(-time.Hour)}).Now}),
	}
	const goroutines, each, onceEvery = 8, 50, 5
	const onceKeys = each / onceEvery
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		seqs     = map[uint64]string{} // seq → who appended it
		appended = map[string]int{}    // AppendOnce key → times appended
	)
	record := func(seq uint64, who string) {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := seqs[seq]; dup {
			t.Errorf("seq %d given to %s and %s", seq, prev, who)
		}
		seqs[seq] = who
	}
	for p, l := range logs {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				who := fmt.Sprintf("p%d-g%d", p, g)
				for i := range each {
					e, err := l.Append(ctx, Entry{Actor: Actor{User: who, Role: "guard"}, Action: ActionView, Target: fmt.Sprint(i)})
					if err != nil {
						t.Error(err)
						return
					}
					record(e.Seq, who)
					if i%onceEvery != 0 {
						continue
					}
					k := fmt.Sprintf("edge:gate-north:read:%d", i/onceEvery)
					e, ok, err := l.AppendOnce(k, Entry{Actor: Actor{User: "system", Role: "system"}, Action: "video_read", Target: k})
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						record(e.Seq, who+" once")
						mu.Lock()
						appended[k]++
						mu.Unlock()
					} else if e.Target != k {
						t.Errorf("AppendOnce(%s) answered the entry of %q", k, e.Target)
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const total = 2*goroutines*each + onceKeys
	if len(appended) != onceKeys {
		t.Fatalf("AppendOnce keys recorded: %v", appended)
	}
	for k, n := range appended {
		if n != 1 {
			t.Fatalf("key %s appended %d times", k, n)
		}
	}
	if len(seqs) != total {
		t.Fatalf("%d seqs handed out, want %d", len(seqs), total)
	}
	for s := uint64(1); s <= total; s++ {
		if _, ok := seqs[s]; !ok {
			t.Fatalf("seq %d was never handed out", s)
		}
	}
	var heads [2]string
	for i, l := range logs {
		rep, err := l.Verify(ctx)
		if err != nil || rep.Entries != total || rep.Last != total || !rep.MACs {
			t.Fatalf("replica %d: Verify = %+v, %v", i, rep, err)
		}
		seq, h := l.Head()
		if seq != total || h != rep.Head {
			t.Fatalf("replica %d: Head() = %d %.16s, Verify says %d %.16s", i, seq, h, rep.Last, rep.Head)
		}
		heads[i] = h
	}
	if heads[0] != heads[1] {
		t.Fatalf("the replicas' heads differ: %s %s", heads[0], heads[1])
	}

	// One replica's append is the other's head, and the other continues
	// after it.
	a, err := logs[0].Append(ctx, Entry{Actor: Actor{User: "li.wei", Role: "admin"}, Action: ActionLogin})
	if err != nil {
		t.Fatal(err)
	}
	if seq, h := logs[1].Head(); seq != a.Seq || h != a.Hash {
		t.Fatalf("replica 1 Head() = %d, replica 0 appended %d", seq, a.Seq)
	}
	b, err := logs[1].Append(ctx, Entry{Actor: Actor{User: "li.wei", Role: "admin"}, Action: ActionLogout})
	if err != nil {
		t.Fatal(err)
	}
	if b.Seq != a.Seq+1 || b.Prev != a.Hash || b.Time.Before(a.Time) {
		t.Fatalf("replica 1 appended %+v after %+v", b, a)
	}
	if _, ok, err := logs[1].AppendOnce("edge:gate-north:read:0", Entry{Actor: Actor{User: "system", Role: "system"}, Action: "video_read"}); err != nil || ok {
		t.Fatalf("a key the other replica recorded: %v %v", ok, err)
	}
	mustVerify(t, logs[1], total+2)

	// A checkpoint of one replica's head holds against the other.
	if end, err := logs[0].CheckCheckpoint(ctx, b.Seq, b.Hash); err != nil || end != b.Seq {
		t.Fatalf("CheckCheckpoint: %d %v", end, err)
	}
}

// A PostgreSQL server killed under load fails the Appends in flight and
// those after; once it is back appends succeed again and the chain is
// whole, whatever commits the kill cut short.
func TestPGServerKilled(t *testing.T) {
	pg := postgres.Start(t)
	url := pgPlace(t, pg)
	l := openReplica(t, url, Options{Key: testKey(t)})
	e := Entry{Actor: Actor{User: "li.wei", Role: "police_liaison"}, Action: ActionExport, Target: "req-1"}

	runCtx, stop := context.WithCancel(ctx)
	okc := make(chan struct{}, 1024)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				if _, err := l.Append(runCtx, e); err != nil {
					if runCtx.Err() == nil {
						select {
						case errc <- err:
						default:
						}
					}
					continue
				}
				select {
				case okc <- struct{}{}:
				default:
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	for range 50 { // appends under way
		<-okc
	}
	pg.Kill()
	err := <-errc
	t.Logf("append while the server is down: %v", err)
	stop()
	wg.Wait()
	if _, err := l.Append(ctx, e); err == nil {
		t.Fatal("Append succeeded with the server killed")
	}

	pg.Start()
	// Each connection the pool held when the server died fails once
	// (and is dropped); a new one then succeeds.
	var appended Entry
	for try := 1; ; try++ {
		if appended, err = l.Append(ctx, e); err == nil {
			break
		}
		if try == 20 {
			t.Fatalf("Append after the restart: %v", err)
		}
		t.Logf("append %d after the restart: %v", try, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || rep.Last != appended.Seq || rep.Entries != appended.Seq || !rep.MACs {
		t.Fatalf("Verify after the restart: %+v %v (appended seq %d)", rep, err, appended.Seq)
	}
	if seq, _ := l.Head(); seq != appended.Seq {
		t.Fatalf("Head() %d, appended %d", seq, appended.Seq)
	}
	t.Logf("chain intact after the kill: %d entries", rep.Entries)
}

// The server's disk full (SQLSTATE 53100, here raised by a trigger where
// PostgreSQL raises it when it cannot extend a file) refuses the entry
// with an error wrapping kv.ErrDiskFull, leaves the chain as it was, and
// appends resume once space is back.
func TestPGDiskFull(t *testing.T) {
	pg := postgres.Start(t)
	url := pgPlace(t, pg)
	l := openReplica(t, url, Options{})
	export := Entry{Actor: Actor{User: "li.wei", Role: "police_liaison"}, Action: ActionExport, Target: "req-1"}
	if _, err := l.Append(ctx, export); err != nil {
		t.Fatal(err)
	}
	pool := newPool(t, url)
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION audit_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
		END $$;
		CREATE TRIGGER audit_test_disk_full BEFORE INSERT ON audit_entries
			FOR EACH ROW EXECUTE FUNCTION audit_test_disk_full();`); err != nil {
		t.Fatal(err)
	}
	_, err := l.Append(ctx, export)
	var pe *pgconn.PgError
	if !errors.Is(err, kv.ErrDiskFull) || !errors.As(err, &pe) || pe.Code != "53100" {
		t.Fatalf("append on a full disk: %v", err)
	}
	t.Logf("refused: %v", err)
	if seq, _ := l.Head(); seq != 1 {
		t.Fatalf("head after a refusal: %d", seq)
	}
	if _, err := pool.Exec(ctx, `DROP TRIGGER audit_test_disk_full ON audit_entries`); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Append(ctx, export); err != nil || e.Seq != 2 {
		t.Fatalf("append once space is back: %+v %v", e, err)
	}
	mustVerify(t, l, 2)
}

// OpenPG creates no tables: central's migration runner applies PGSchema.
func TestPGOpenNeedsSchema(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "bare")
	pool := newPool(t, url)
	if l, err := OpenPG(ctx, pool, Options{}); err == nil {
		l.Close()
		t.Fatal("OpenPG opened a database without the audit schema")
	} else {
		t.Logf("refused: %v", err)
	}
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'audit%'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("OpenPG created %d tables (%v)", tables, err)
	}
	if _, err := OpenPG(ctx, nil, Options{}); err == nil {
		t.Fatal("OpenPG without a pool")
	}
}

// TestCopyToPostgres: a keyed Badger log copied into PostgreSQL is the
// same chain there (seqs, hashes, MACs, AppendOnce keys), verifies with
// the key, and goes on from its head; a second copy is refused.
func TestCopyToPostgres(t *testing.T) {
	key := testKey(t)
	src := openKeyed(t, t.TempDir(), key)
	es := fill(t, src, 25)
	if _, _, err := src.AppendOnce("access/edge-1/42", Entry{Actor: Actor{User: "edge-1"}, Action: ActionView, Target: "x"}); err != nil {
		t.Fatal(err)
	}
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "copy")
	applySchema(t, url)
	pool := newPool(t, url)
	dst, err := OpenPG(ctx, pool, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	n, err := src.CopyTo(ctx, dst)
	if err != nil || n != 26 {
		t.Fatalf("CopyTo: %d, %v; want 26 entries", n, err)
	}
	rep, err := dst.Verify(ctx)
	if err != nil || rep.Entries != 26 || !rep.MACs {
		t.Fatalf("the copy verifies: %+v, %v", rep, err)
	}
	for i, want := range es {
		got, err := dst.Get(ctx, uint64(i+1))
		if err != nil || got.Hash != want.Hash || got.MAC != want.MAC {
			t.Fatalf("entry %d in the copy: %+v, %v; want hash %s", i+1, got, err, want.Hash)
		}
	}
	if _, again, err := dst.AppendOnce("access/edge-1/42", Entry{Actor: Actor{User: "edge-1"}, Action: ActionView, Target: "x"}); err != nil || again {
		t.Fatalf("AppendOnce of a copied key: recorded again %v, %v", again, err)
	}
	if e, err := dst.Append(ctx, Entry{Actor: Actor{User: "ann"}, Action: ActionLogin}); err != nil || e.Seq != 27 {
		t.Fatalf("append after the copy: %+v, %v", e, err)
	}
	if _, err := src.CopyTo(ctx, dst); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("a second copy: %v, want ErrNotEmpty", err)
	}
}
