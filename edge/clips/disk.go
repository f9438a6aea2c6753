package clips

import "github.com/vigil-perimeter/vigil/internal/kv"

// freeBytes is the space available to unprivileged users on dir's file
// system: the store never counts on root's reserved blocks.
func freeBytes(dir string) (int64, error) { return kv.FreeBytes(dir) }

// diskUsage is what the files under dir occupy on disk.
func diskUsage(dir string) int64 { return kv.DiskUsage(dir) }
