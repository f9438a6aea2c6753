package kv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrDiskFull is what a write refused by a Floor wraps (errors.Is).
var ErrDiskFull = errors.New("disk full")

// DiskFullError names the directory and the numbers behind a refusal.
type DiskFullError struct {
	Dir         string
	Free, Floor int64
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("disk full: %s has %d MiB free, floor %d MiB", e.Dir, e.Free>>20, e.Floor>>20)
}

// Is makes errors.Is(err, ErrDiskFull) true.
func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

// ReserveFile is the preallocated file a Floor keeps in its directory.
const ReserveFile = "DISK_RESERVE"

// FreeBytes is what an unprivileged writer may still use on dir's file
// system.
func FreeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("kv: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Floor keeps a Badger database from dying of a full disk. Badger writes
// through mmap'd, sparse files: when a page cannot be backed, the process
// gets SIGBUS instead of an error. So a Floor
//   - refuses ordinary writes while free space (not counting its reserve)
//     is below Min, with a *DiskFullError;
//   - keeps a preallocated reserve file of Reserve bytes, deleted when the
//     floor is hit so that essential writes (red alerts) still have room,
//     and recreated when space returns;
//   - preallocates (fallocate) Badger's mmap'd memtable and value-log
//     files as they appear, so writing into them cannot SIGBUS even when
//     another program fills the disk between two checks.
//
// Essential writes are refused only below Reserve/4, a margin for the
// pages a write touches.
type Floor struct {
	Dir     string
	Min     int64 // free bytes kept for everything else on the disk
	Reserve int64 // bytes held back for essential writes

	mu   sync.Mutex
	free int64
	at   time.Time
	held bool // reserve file present
	full bool
	done map[string]int64 // preallocated files and their size
	// unbacked are mmap'd files that could not be preallocated (no space):
	// a write through them could SIGBUS, so every write is refused until
	// they are backed.
	unbacked map[string]int64
	refused  uint64
}

// FloorState is a Floor's view of its disk.
type FloorState struct {
	Full        bool  // below the floor: ordinary writes refused
	Free        int64 // bytes free on the file system
	Min         int64
	ReserveHeld bool
	Refused     uint64 // writes refused so far
}

// NewFloor returns a floor for dir, creating dir if needed.
func NewFloor(dir string, minFree, reserve int64) (*Floor, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	f := &Floor{Dir: dir, Min: minFree, Reserve: reserve, done: map[string]int64{}, unbacked: map[string]int64{}}
	if st, err := os.Stat(f.reservePath()); err == nil && st.Size() >= reserve {
		f.held = true
	}
	return f, nil
}

func (f *Floor) reservePath() string { return filepath.Join(f.Dir, ReserveFile) }

// stat refreshes free space; it trusts a value under a second old only
// while the disk is far from the floor.
func (f *Floor) stat(force bool) error {
	if !force && time.Since(f.at) < time.Second && f.free > 4*(f.Min+f.Reserve) {
		return nil
	}
	free, err := FreeBytes(f.Dir)
	if err != nil {
		return err
	}
	f.free, f.at = free, time.Now()
	return nil
}

// update recomputes the state and releases or recreates the reserve.
func (f *Floor) update(force bool) error {
	if err := f.stat(force); err != nil {
		return err
	}
	spare := f.free
	if !f.held {
		spare -= f.Reserve // space the reserve must get back first
	}
	f.full = spare < f.Min
	switch {
	case f.full && f.held:
		if err := os.Remove(f.reservePath()); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("kv: releasing reserve: %w", err)
		}
		f.held = false
		return f.stat(true)
	case !f.full && !f.held && f.Reserve > 0:
		if err := preallocate(f.reservePath(), f.Reserve, true); err != nil {
			os.Remove(f.reservePath())
			f.full = true
			return nil
		}
		f.held = true
		return f.stat(true)
	}
	return nil
}

// Admit says whether a write may go ahead now. essential writes are
// admitted from the reserve.
func (f *Floor) Admit(essential bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.update(false); err != nil {
		return err
	}
	for name, size := range f.unbacked {
		switch err := preallocate(filepath.Join(f.Dir, name), size, false); {
		case err == nil:
			delete(f.unbacked, name)
			f.done[name] = size
		case errors.Is(err, fs.ErrNotExist):
			// Badger removed it (a memtable flushed, a value log
			// collected): nothing is mapped there any more.
			delete(f.unbacked, name)
		}
	}
	if len(f.unbacked) > 0 {
		// Not even a red write: it could land in a page with no block.
		f.refused++
		return &DiskFullError{Dir: f.Dir, Free: f.free, Floor: f.Min}
	}
	if !f.full || (essential && f.free >= f.Reserve/4) {
		return nil
	}
	f.refused++
	return &DiskFullError{Dir: f.Dir, Free: f.free, Floor: f.Min}
}

// Check re-reads free space now, keeps the reserve as Admit does, and
// reports the state.
func (f *Floor) Check() (FloorState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.update(true)
	return FloorState{Full: f.full, Free: f.free, Min: f.Min, ReserveHeld: f.held, Refused: f.refused}, err
}

// Written preallocates Badger files created since the last call; call it
// after each write. It costs a directory listing.
func (f *Floor) Written() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Also below the floor: a file Badger created for a red write must be
	// backed before the next write goes through its mapping.
	ents, err := os.ReadDir(f.Dir)
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".mem") && !strings.HasSuffix(name, ".vlog") {
			continue
		}
		info, err := e.Info()
		if err != nil || f.done[name] == info.Size() {
			continue
		}
		if err := preallocate(filepath.Join(f.Dir, name), info.Size(), false); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// Removed by Badger since the listing: nothing to back.
				delete(f.unbacked, name)
				continue
			}
			f.unbacked[name] = info.Size()
			f.full = true
			errs = append(errs, err)
			continue
		}
		delete(f.unbacked, name)
		f.done[name] = info.Size()
	}
	if len(f.done) > 2*len(ents) {
		clear(f.done) // deleted files; re-checking the rest is cheap
	}
	return errors.Join(errs...)
}

// open checks the floor before Badger maps anything: it releases the
// reserve if it must and refuses only when even the reserve leaves no
// room to start.
func (f *Floor) open() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.update(true); err != nil {
		return err
	}
	if f.full && f.free < f.Reserve/4 {
		f.refused++
		return &DiskFullError{Dir: f.Dir, Free: f.free, Floor: f.Min}
	}
	return nil
}

// DiskUsage is what the files under dir occupy on disk: allocated
// blocks, as `du` counts them, not apparent sizes (Badger's value-log
// files are sparse).
func DiskUsage(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
