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
