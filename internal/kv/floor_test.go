package kv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestFloorForgetsFilesBadgerRemoved: a memtable file that Badger removed
// between the floor's listing and its preallocation (it flushed) was kept
// as "unbacked" for ever, and every later write was refused as "disk
// full" with tens of GiB free — seen in the central benchmark at 1,000
// alerts/s. A file that no longer exists needs no backing.
func TestFloorForgetsFilesBadgerRemoved(t *testing.T) {
	dir := t.TempDir()
	f, err := NewFloor(dir, 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Admit(false); err != nil {
		t.Fatalf("admit on an empty disk: %v", err)
	}
	// As Written leaves it when the file vanished after the listing.
	f.mu.Lock()
	f.unbacked["00042.mem"] = 2 << 20
	f.mu.Unlock()
	if err := f.Admit(false); err != nil {
		t.Fatalf("admit after a file Badger removed: %v", err)
	}
	if err := f.Admit(true); err != nil {
		t.Fatalf("essential admit: %v", err)
	}
	// A file that is there and cannot be backed still refuses (a
	// directory cannot be fallocated: stands in for ENOSPC).
	if err := os.Mkdir(filepath.Join(dir, "00043.mem"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.unbacked["00043.mem"] = 2 << 20
	f.mu.Unlock()
	if err := f.Admit(true); err == nil {
		t.Fatal("a mapped file without blocks was admitted")
	}
}

// TestFloorUnderMemtableChurn: many writes through small memtables (each
// flushed and removed in turn) with Admit/Written around every write, as
// central's writer does: nothing is refused on a disk with room.
func TestFloorUnderMemtableChurn(t *testing.T) {
	dir := t.TempDir()
	f, err := NewFloor(dir, 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(Options{Dir: dir, Floor: f, MemTableSize: 1 << 20, ValueLogFileSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 2048)
	for i := range 4000 {
		if err := f.Admit(false); err != nil {
			t.Fatalf("write %d refused: %v", i, err)
		}
		if err := db.Update(func(txn *badger.Txn) error {
			return txn.Set([]byte(fmt.Sprintf("k%06d", i)), val)
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.Written(); err != nil {
			t.Fatalf("written %d: %v", i, err)
		}
	}
}
