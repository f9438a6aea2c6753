package clips

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// madvPageout is MADV_PAGEOUT (Linux 5.4): reclaim these pages now. It is
// only advice: on a range that was unmapped and reused meanwhile it
// changes no data, which makes it safe on mappings we do not own.
const madvPageout = 21

// pageOut drops the value-log pages that Badger has mapped into this
// process from its resident set. Badger writes and reads the value log
// through mmap, so every byte of video recorded or exported would
// otherwise stay counted in the edge's RSS until the kernel needed the
// memory. Called right after DB.Sync, when the pages are clean.
func pageOut(dir string) error {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// 7f0c2a600000-7f0c2e600000 rw-s 00000000 fd:01 1234 /dir/000001.vlog
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasSuffix(f[5], ".vlog") || !strings.HasPrefix(f[5], dir+"/") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		// Errors (EINVAL on an old kernel) only mean the advice was not taken.
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), madvPageout)
	}
	return sc.Err()
}

// residentFileBytes is the process's file-backed resident memory (RssFile).
func residentFileBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// fdatasync flushes a file's data (and the size that reaches it) to disk.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// dropCache tells the kernel a segment's written pages will not be read
// soon: recorded video must not push the box's working set out of memory.
func dropCache(f *os.File) { _ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) }

// startWriteback asks the kernel to start writing a range out now, so
// that the next fdatasync waits for little (sync_file_range WRITE: it
// does not wait, and promises nothing about durability by itself).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
