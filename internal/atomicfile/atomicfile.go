// Package atomicfile replaces a file whole: a crash leaves the old file
// or the new one, never a torn one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Suffix names the temporary file beside path while it is written; a
// crash may leave one behind, which the next Write replaces.
const Suffix = ".tmp"

// Write replaces path with data: written to path+Suffix, fsynced,
// renamed over path, and the directory fsynced so that the rename is
// durable too.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp := path + Suffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making a creation, rename or removal in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
