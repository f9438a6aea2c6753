package clips

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The disk-full tests run on a real, size-limited file system: a tmpfs
// mounted for the test (they need root, as in CI). A write-error
// injection would not do: Badger writes its value log and memtables
// through mmap, so on a full disk it gets no ENOSPC at all but a SIGBUS
// that kills the process (TestBadgerDiskFullIsFatal). The store therefore
// never lets its own writes reach the floor.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mounting a %s tmpfs (the disk-full tests need root, as in CI): %v", size, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestDiskFull records into a 64 MiB file system. First the store fills
// it alone: the floor evicts the oldest video and nothing is lost. Then
// another program takes the space: the store evicts all it may, keeps the
// pinned evidence, stops recording with a red condition while Write keeps
// returning at once, and resumes by itself when the space comes back.
func TestDiskFull(t *testing.T) {
	fs := mountTmpfs(t, "64m")
	cfg := testConfig(t, filepath.Join(fs, "clips"))
	conds := make(chan Condition, 16)
	cfg.OnCondition = func(c Condition) { conds <- c }
	s := openStore(t, cfg)
	d := &diskFullRun{fs: fs, cfg: cfg, conds: conds, s: s, r: recorder(t, s, "gate"), f: newFeed(bursts(t), epoch)}
	d.fillAlone(t)
	ballast := d.fillByOthers(t)
	d.resume(t, ballast)
}

// diskFullRun is TestDiskFull's store on its small file system.
type diskFullRun struct {
	fs    string
	cfg   Config
	conds chan Condition
	s     *Store
	r     *Recorder
	f     *feed
}

// fillAlone records twice the disk, with no byte budget: the floor holds.
func (d *diskFullRun) fillAlone(t *testing.T) {
	s, r, f, fs, cfg := d.s, d.r, d.f, d.fs, d.cfg
	minFree := int64(1 << 62)
	for now := epoch.Add(time.Minute); now.Before(epoch.Add(30 * time.Minute)); now = now.Add(time.Minute) {
		record(t, r, f, now)
		flush(t, s)
		free, _ := freeBytes(fs)
		minFree = min(minFree, free)
	}
	if got := testutil.ToFloat64(r.m.dropped[dropDiskFull]); got != 0 {
		t.Fatalf("%v access units dropped while eviction could make room", got)
	}
	if minFree < cfg.MinFreeBytes-2<<20 {
		t.Errorf("free space fell to %d, floor %d", minFree, cfg.MinFreeBytes)
	}
	t.Logf("30 min of video through 64 MiB: free space never below %d KiB (floor %d KiB)", minFree>>10, cfg.MinFreeBytes>>10)
	select {
	case c := <-d.conds:
		t.Fatalf("condition while the store could evict: %+v", c)
	default:
	}
}

// drain records the conditions reported so far in got.
func (d *diskFullRun) drain(got map[string]bool) {
	for len(d.conds) > 0 {
		c := <-d.conds
		got[c.Kind] = c.Active
	}
}

// fillByOthers pins evidence, then another program fills the disk: the
// store evicts all it may, keeps the pinned evidence and stops recording
// with a red condition. It returns the other program's files.
func (d *diskFullRun) fillByOthers(t *testing.T) (ballast []string) {
	s, r, f, fs := d.s, d.r, d.f, d.fs
	alert := f.peek().Add(-60 * time.Second)
	pin, err := s.Pin("alert-1", "gate", alert, "motion")
	if err != nil {
		t.Fatal(err)
	}
	record(t, r, f, f.peek().Add(40*time.Second))
	flush(t, s)
	// It takes what the store frees, until nothing unpinned is left.
	// Write never waits for the disk (TestWriteNeverWaits proves it with
	// the writer stalled); here what matters is what the full disk does.
	write := func(n int) {
		for range n {
			r.Write(f.next())
		}
	}
	got := map[string]bool{}
	for i := 0; !got[CondDiskFull]; i++ {
		if i == 20 {
			t.Fatalf("no disk_full condition with the disk full: %+v", s.Stats())
		}
		if free, _ := freeBytes(fs); free > 8<<20 {
			ballast = append(ballast, filepath.Join(fs, fmt.Sprintf("ballast-%d", i)))
			fillTo(t, ballast[len(ballast)-1], free-8<<20) // 8 MiB left, well under the floor
		}
		write(100)
		flush(t, s)
		d.drain(got)
	}
	stopped := f.peek()
	write(600) // a minute of video into a full disk
	flush(t, s)
	d.drain(got)
	if !got[CondDiskFull] || !got[CondPinsFull] {
		t.Fatalf("conditions %v, want disk_full and pins_full raised", got)
	}
	if n := testutil.ToFloat64(r.m.dropped[dropDiskFull]); n == 0 {
		t.Error("no access unit counted as dropped for the full disk")
	}
	if _, err := s.Pin("alert-2", "gate", stopped, "motion"); err != ErrPinsFull {
		t.Errorf("pin while pins fill the disk: %v, want ErrPinsFull", err)
	}
	path, _ := exportFile(t, s, "gate", pin.From, pin.To)
	if p := ffprobe(t, path); p.Frames != 400 {
		t.Errorf("pinned evidence on a full disk: %d frames, want 400", p.Frames)
	}
	return ballast
}

// resume removes the other program's files: recording resumes by itself.
func (d *diskFullRun) resume(t *testing.T, ballast []string) {
	s, r, f, cfg := d.s, d.r, d.f, d.cfg
	for _, b := range ballast {
		if err := os.Remove(b); err != nil {
			t.Fatal(err)
		}
	}
	resumed := f.peek()
	record(t, r, f, resumed.Add(30*time.Second))
	flush(t, s)
	if cs := s.Conditions(); len(cs) != 0 {
		t.Errorf("conditions after the space returned: %+v", cs)
	}
	path, _ := exportFile(t, s, "gate", resumed.Add(2*time.Second), resumed.Add(22*time.Second))
	if p := ffprobe(t, path); p.Frames != 200 {
		t.Errorf("after resuming: %d frames, want 200", p.Frames)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// No file the full disk touched is left unreadable: every segment
	// plays as it is and agrees with the index.
	for _, seg := range storeSegments(t, cfg.Dir) {
		rbPlayersAccept(t, seg)
	}
	if rep, err := Verify(cfg.Dir, quietLogger(t)); err != nil || !rep.OK() {
		t.Errorf("after the full disk: %+v, %v", rep, err)
	}
	cfg.Registerer = nil
	s = openStore(t, cfg)
	if err := s.Check(); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
}

// fillTo writes a file of n bytes.
func fillTo(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

const badgerChildEnv = "VIGIL_CLIPS_BADGER_ENOSPC"

// TestBadgerDiskFullIsFatal documents why the store keeps a floor: plain
// Badger writing into a full file system does not return ENOSPC, it dies
// of SIGBUS in its mmap'd value log, taking the process with it.
func TestBadgerDiskFullIsFatal(t *testing.T) {
	if dir := os.Getenv(badgerChildEnv); dir != "" {
		opts := badgerOptions(dir, testConfig(t, dir).Footprint, quietLogger(t))
		db, err := badger.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		val := make([]byte, 100<<10)
		for i := range 1000 { // 100 MB into 16 MiB
			if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte{byte(i >> 8), byte(i)}, val) }); err != nil {
				t.Fatalf("write %d: %v", i, err) // what we would like to see
			}
		}
		t.Fatal("wrote 100 MB into 16 MiB")
	}
	fs := mountTmpfs(t, "16m")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBadgerDiskFullIsFatal$", "-test.count=1")
	cmd.Env = append(os.Environ(), badgerChildEnv+"="+filepath.Join(fs, "db"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SIGBUS") {
		t.Fatalf("Badger on a full disk: %v, want death by SIGBUS:\n%.2000s", err, out)
	}
}
