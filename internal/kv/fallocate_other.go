//go:build !linux

package kv

import (
	"fmt"
	"os"
)

// preallocate writes zeros where there is no fallocate (only the reserve
// file needs it; Badger's files stay sparse there).
func preallocate(path string, size int64, create bool) error {
	if !create {
		return nil
	}
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	defer fd.Close()
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := fd.Write(buf[:min(int64(len(buf)), size-n)]); err != nil {
			return fmt.Errorf("kv: %w", err)
		}
	}
	return fd.Sync()
}
