package clips

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/internal/kv/kvtest"
)

// waitCondition waits for kind to reach active on conds.
func waitCondition(t *testing.T, conds <-chan Condition, kind string, active bool, within time.Duration) Condition {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case c := <-conds:
			if c.Kind == kind && c.Active == active {
				return c
			}
			t.Logf("condition %+v", c)
		case <-deadline:
			t.Fatalf("no %s condition with active=%v within %v", kind, active, within)
		}
	}
}

// TestOpenOnFullDisk: another program filled the disk before the store
// started. Open succeeds with disk_full raised at once; units are
// dropped and counted, reads say the disk is full, an alert's pin is
// queued. Once the filler is gone the store opens Badger by itself,
// clears the condition, writes the queued pin and records again.
func TestOpenOnFullDisk(t *testing.T) {
	root, inside := kvtest.Tmpfs(t, "64m")
	if !inside {
		return
	}
	dir := filepath.Join(root, "clips")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(root, "filler")
	kvtest.Fill(t, filler)

	cfg := testConfig(t, dir)
	cfg.Cameras = map[string]CameraConfig{"gate": {}}
	conds := make(chan Condition, 16)
	cfg.OnCondition = func(c Condition) { conds <- c }
	s := openStore(t, cfg)
	select {
	case c := <-conds:
		if c.Kind != CondDiskFull || !c.Active {
			t.Fatalf("first condition %+v, want disk_full raised", c)
		}
		t.Logf("raised at Open: %s", c.Message)
	default:
		t.Fatal("Open on a full disk raised no condition")
	}

	alertAt := epoch.Add(time.Minute)
	pin := checkWhileWaiting(t, s, alertAt)

	// The space comes back.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, conds, CondDiskFull, false, 3*spacePoll+5*time.Second)
	t.Logf("cleared: %s", c.Message)
	if ps := s.Pins(); len(ps) != 1 || ps[0] != pin {
		t.Errorf("pins after opening: %+v, want %+v", ps, pin)
	}
	r := recorder(t, s, "gate")
	f := newFeed(bursts(t), epoch.Add(50*time.Second))
	record(t, r, f, alertAt.Add(40*time.Second))
	flush(t, s)
	path, _ := exportFile(t, s, "gate", pin.From, pin.To)
	if p := ffprobe(t, path); p.Frames != 400 {
		t.Errorf("pinned alert recorded after the space returned: %d frames, want 400", p.Frames)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cfg.Registerer = prometheus.NewRegistry()
	s = openStore(t, cfg)
	defer s.Close()
	if ps := s.Pins(); len(ps) != 1 || ps[0].ID != "alert-1" {
		t.Errorf("pins after reopening: %+v, want alert-1 (written durably)", ps)
	}
	select {
	case c := <-conds:
		t.Errorf("condition after a clean reopen: %+v", c)
	default:
	}
}

// TestRestartClearsCondition: disk_full raised, the process stops, the
// space returns while it is down: the next Open sends the all-clear that
// central's red alert waits for, although this run never raised it.
func TestRestartClearsCondition(t *testing.T) {
	root, inside := kvtest.Tmpfs(t, "64m")
	if !inside {
		return
	}
	dir := filepath.Join(root, "clips")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	conds := make(chan Condition, 16)
	cfg.OnCondition = func(c Condition) { conds <- c }
	// The edge ran before the disk filled: the store's files exist.
	openStore(t, cfg).Close()
	filler := filepath.Join(root, "filler")
	kvtest.Fill(t, filler)

	cfg.Registerer = prometheus.NewRegistry()
	s := openStore(t, cfg)
	raised := waitCondition(t, conds, CondDiskFull, true, time.Second)
	s.Close()

	// Restarted on the still-full disk: still raised, not raised twice.
	cfg.Registerer = prometheus.NewRegistry()
	s = openStore(t, cfg)
	if cs := s.Conditions(); len(cs) != 1 || cs[0].Kind != CondDiskFull || !cs[0].Since.Equal(raised.Since) {
		t.Errorf("conditions after a restart on the full disk: %+v, want the disk_full of %v", cs, raised.Since)
	}
	s.Close()
	select {
	case c := <-conds:
		t.Errorf("condition sent again on a restart: %+v", c)
	default:
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	cfg.Registerer = prometheus.NewRegistry()
	s = openStore(t, cfg)
	defer s.Close()
	c := waitCondition(t, conds, CondDiskFull, false, time.Second)
	t.Logf("all-clear after the restart: %s", c.Message)
	if cs := s.Conditions(); len(cs) != 0 {
		t.Errorf("conditions: %+v", cs)
	}
}

// TestCondFileTornSlot: a torn write of the newer slot leaves the older.
func TestCondFileTornSlot(t *testing.T) {
	dir := t.TempDir()
	cf, raised := openCondFile(dir, quietLogger(t))
	if len(raised) != 0 {
		t.Fatalf("new file: %+v", raised)
	}
	one := []Condition{{Kind: CondDiskFull, Active: true, Message: "full"}}
	cf.write(func() []Condition { return one })
	cf.write(func() []Condition { return append(one, Condition{Kind: CondPinsFull, Active: true}) })
	cf.close()
	b, err := os.ReadFile(filepath.Join(dir, condFileName))
	if err != nil || len(b) != 2*condSlot {
		t.Fatalf("file: %d bytes, %v", len(b), err)
	}
	_, raised = openCondFile(dir, quietLogger(t))
	if len(raised) != 2 {
		t.Fatalf("read back %+v, want two", raised)
	}
	b[condHeader+2] ^= 0xff // tear the newer slot (seq 2, slot 0)
	if err := os.WriteFile(filepath.Join(dir, condFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, raised = openCondFile(dir, quietLogger(t))
	if len(raised) != 1 || raised[0].Kind != CondDiskFull {
		t.Fatalf("after a torn write: %+v, want the older slot's disk_full", raised)
	}
}

// checkWhileWaiting: while the store waits for space, units are dropped
// and counted, reads say the disk is full, flushes and stats work, and
// pins are queued (and unpinned from the queue). It returns the pin it
// queued for an alert at alertAt.
func checkWhileWaiting(t *testing.T, s *Store, alertAt time.Time) Pin {
	t.Helper()
	f := newFeed(bursts(t), epoch)
	for range 50 {
		s.Write("gate", f.next())
	}
	if d := testutil.ToFloat64(s.m.dropped.WithLabelValues("gate", dropDiskFull)); d != 50 {
		t.Errorf("%v units counted as dropped for the full disk, want 50", d)
	}
	_, err := s.Export(context.Background(), io.Discard, "gate", epoch, epoch.Add(time.Minute))
	if !errors.Is(err, ErrDiskFull) {
		t.Errorf("export while waiting for space: %v, want ErrDiskFull", err)
	}
	t.Logf("export while waiting: %v", err)
	if _, err := s.Thumbnail("gate", epoch, 0); !errors.Is(err, ErrDiskFull) {
		t.Errorf("thumbnail while waiting for space: %v, want ErrDiskFull", err)
	}
	if _, err := s.Timeline("gate", time.Time{}, time.Time{}); !errors.Is(err, ErrDiskFull) {
		t.Errorf("timeline while waiting for space: %v, want ErrDiskFull", err)
	}
	if err := s.Check(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("check while waiting for space: %v, want ErrDiskFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Errorf("flush while waiting for space: %v", err)
	}
	if st := s.Stats(); len(st.Conditions) != 1 {
		t.Errorf("stats while waiting: %+v", st)
	}
	pin, err := s.Pin("alert-1", "gate", alertAt, "motion")
	if err != nil {
		t.Fatalf("pin while waiting for space: %v", err)
	}
	if _, err := s.Pin("alert-gone", "gate", alertAt, "motion"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin("alert-gone"); err != nil {
		t.Fatal(err)
	}
	if ps := s.Pins(); len(ps) != 1 || ps[0].ID != "alert-1" {
		t.Errorf("pins while waiting: %+v, want the queued alert-1", ps)
	}
	return pin
}
