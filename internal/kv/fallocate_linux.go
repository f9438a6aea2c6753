package kv

import (
	"fmt"
	"os"
	"syscall"
)

// preallocate backs size bytes of path with real blocks (creating the file
// if create), so writes through a mapping of it cannot fault.
func preallocate(path string, size int64, create bool) error {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	fd, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	defer fd.Close()
	if err := syscall.Fallocate(int(fd.Fd()), 0, 0, size); err != nil {
		return fmt.Errorf("kv: fallocate %s (%d bytes): %w", path, size, err)
	}
	return nil
}
