package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: the file is replaced whole, keeps its mode, and no
// temporary file stays; a failed write leaves the old file as it was.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := Write(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if err != nil || string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%q %v %v", b, fi.Mode(), err)
	}
	if _, err := os.Stat(path + Suffix); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	// A directory where the temporary file should go: the write fails
	// and the old content stays.
	os.Mkdir(path+Suffix, 0o755)
	os.WriteFile(filepath.Join(path+Suffix, "x"), nil, 0o600)
	if err := Write(path, []byte("three"), 0o600); err == nil {
		t.Fatal("write through a blocked temporary name succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("after a failed write: %q", b)
	}
}
