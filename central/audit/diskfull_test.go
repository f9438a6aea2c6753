package audit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/internal/kv/kvtest"
)

// TestAppendOnDiskFilledByAnotherProcess: on a tmpfs that dd fills, an
// entry is refused with ErrDiskFull (so central refuses the export it
// would record) instead of Badger dying of SIGBUS; the chain stays whole,
// the log reopens on the full disk, and entries are written again once
// the filler is deleted.
func TestAppendOnDiskFilledByAnotherProcess(t *testing.T) {
	root, inside := kvtest.Tmpfs(t, "384m")
	if !inside {
		return
	}
	dir := filepath.Join(root, "audit")
	floor, err := kv.NewFloor(dir, 16<<20, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Floor: floor}
	l, err := OpenDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	export := Entry{Actor: Actor{User: "li.wei", Role: "police_liaison"}, Action: ActionExport, Target: "req-1"}
	if _, err := l.Append(ctx, export); err != nil {
		t.Fatal(err)
	}

	filler := filepath.Join(root, "filler")
	kvtest.Fill(t, filler)
	// The floor trusts a reading under a second old while far from the
	// floor; a box's disk does not fill in less.
	if st, err := floor.Check(); err != nil || !st.Full {
		t.Fatalf("filled disk: %+v %v", st, err)
	}
	_, err = l.Append(ctx, export)
	var dfe *kv.DiskFullError
	if !errors.Is(err, kv.ErrDiskFull) || !errors.As(err, &dfe) || dfe.Dir != dir {
		t.Fatalf("append on a full disk: %v", err)
	}
	t.Logf("refused: %v", err)
	if seq, _ := l.Head(); seq != 1 {
		t.Fatalf("head after a refusal: %d", seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen on the full disk (the floor releases its reserve to start).
	floor, err = kv.NewFloor(dir, 16<<20, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	opts.Floor = floor
	if l, err = OpenDir(dir, opts); err != nil {
		t.Fatalf("reopen on a full disk: %v", err)
	}
	defer l.Close()
	// Closing flushed Badger's preallocated memtable and freed it: fill
	// what that gave back.
	filler2 := filepath.Join(root, "filler2")
	kvtest.Fill(t, filler2)
	if st, err := floor.Check(); err != nil || !st.Full {
		t.Fatalf("filled again: %+v %v", st, err)
	}
	if _, err := l.Append(ctx, export); !errors.Is(err, kv.ErrDiskFull) {
		t.Fatalf("append after a reopen on a full disk: %v", err)
	}

	for _, f := range []string{filler, filler2} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	e, err := l.Append(ctx, export)
	if err != nil || e.Seq != 2 {
		t.Fatalf("append once space is back: %+v %v", e, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || rep.Entries != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
