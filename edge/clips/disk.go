package clips

import (
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/vigil-perimeter/vigil/internal/kv"
)

// freeBytes is the space available to unprivileged users on dir's file
// system: the store never counts on root's reserved blocks.
func freeBytes(dir string) (int64, error) { return kv.FreeBytes(dir) }

// vlogFileSize picks the value-log file size for a file system of total
// bytes: 1/4096 of it, within [64 MiB, 1 GiB]. Badger keeps every value-log
// file open and mapped, so a 4 TB disk of 64 MiB files would pass the
// kernel's 65530 mappings per process; bigger files cost only coarser
// reclamation, which is negligible on a big disk.
func vlogFileSize(total int64) int64 {
	return min(max(total/4096>>20<<20, 64<<20), 1<<30)
}

// totalBytes is the size of dir's file system.
func totalBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks) * int64(st.Bsize), nil
}

// diskUsage is what the files under dir occupy on disk: allocated blocks,
// not apparent sizes, since Badger's value-log files are sparse.
func diskUsage(dir string) int64 {
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
