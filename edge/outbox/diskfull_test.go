package outbox

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/internal/kv/kvtest"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestDiskFilledByAnotherProcess: on a 96 MiB tmpfs that dd fills, the
// outbox refuses yellow with ErrDiskFull, stores red from its reserve,
// reopens on the full disk without SIGBUS and still has the red item,
// and takes yellow again once the filler is deleted.
func TestDiskFilledByAnotherProcess(t *testing.T) {
	root, inside := kvtest.Tmpfs(t, "96m")
	if !inside {
		return
	}
	dir := filepath.Join(root, "outbox")
	opts := Options{Dir: dir, MinFree: 16 << 20, Reserve: 8 << 20}
	o, err := OpenWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Append(alert(0)); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := o.Disk(); st.Full || !st.ReserveHeld {
		t.Fatalf("empty disk: %+v", st)
	}

	filler := filepath.Join(root, "filler")
	kvtest.Fill(t, filler)

	yellow := alert(1)
	err = o.Append(yellow)
	var dfe *kv.DiskFullError
	if !errors.Is(err, ErrDiskFull) || !errors.As(err, &dfe) || dfe.Dir != dir {
		t.Fatalf("yellow on a full disk: %v", err)
	}
	t.Logf("refused: %v", err)
	red := alert(2)
	red.Severity = wire.Red
	if err := o.Append(red); err != nil {
		t.Fatalf("red on a full disk: %v", err)
	}
	st, _, _ := o.Disk()
	if !st.Full || st.ReserveHeld {
		t.Fatalf("full disk: %+v", st)
	}
	if s := o.Stats(); s.DiskRefused != 1 || s.Pending != 2 {
		t.Fatalf("stats %+v", s)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on the full disk: Badger maps new files on open.
	o, err = OpenWith(opts)
	if err != nil {
		t.Fatalf("reopen on a full disk: %v", err)
	}
	red2 := alert(3)
	red2.Severity = wire.Red
	if err := o.Append(red2); err != nil {
		t.Fatalf("red after restart on a full disk: %v", err)
	}
	if err := o.Append(alert(4)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("yellow after restart on a full disk: %v", err)
	}
	es, err := o.After(0, 10)
	if err != nil || ids(es) != "a000 a002 a003 " {
		t.Fatalf("queued after restart: %q %v", ids(es), err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := o.Disk(); st.Full || !st.ReserveHeld {
		t.Fatalf("space back: %+v", st)
	}
	if err := o.Append(alert(5)); err != nil {
		t.Fatalf("yellow once space is back: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}
