package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-perimeter/vigil/internal/kv"
)

// cpuTime is the CPU (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory is this process's resident set, from /proc/self/status.
type memory struct{ rss, anon, file int64 }

func readMemory() memory {
	b, _ := os.ReadFile("/proc/self/status")
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "RssAnon":
			m.anon = kb << 10
		case "RssFile":
			m.file = kb << 10
		}
	}
	return m
}

func (m memory) max(o memory) memory {
	return memory{max(m.rss, o.rss), max(m.anon, o.anon), max(m.file, o.file)}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// writeBytes is what this process has caused to be written to storage
// (/proc/self/io write_bytes), for write amplification.
func writeBytes() int64 {
	b, _ := os.ReadFile("/proc/self/io")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// topMappings prints the n mappings with the most resident memory, from
// /proc/self/smaps, to see what the resident set is made of.
func topMappings(w io.Writer, n int) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	type mapping struct {
		name string
		rss  int64
	}
	var maps []mapping
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			cur = "[anon]"
			if len(f) >= 6 {
				cur = f[5]
			}
			continue
		}
		if len(f) >= 2 && f[0] == "Rss:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			maps = append(maps, mapping{cur, kb << 10})
		}
	}
	byName := map[string]int64{}
	for _, m := range maps {
		byName[m.name] += m.rss
	}
	maps = maps[:0]
	for k, v := range byName {
		maps = append(maps, mapping{k, v})
	}
	sort.Slice(maps, func(i, j int) bool { return maps[i].rss > maps[j].rss })
	for _, m := range maps[:min(n, len(maps))] {
		fmt.Fprintf(w, "rss %6.1f MiB  %s\n", mib(m.rss), m.name)
	}
}

// fdatasync makes f's data durable, as the store does with its segments.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// evictPages drops the files' pages from the page cache (the segments are
// then read from disk, as after a restart).
func evictPages(paths []string) {
	for _, p := range paths {
		if f, err := os.Open(p); err == nil {
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			f.Close()
		}
	}
}

// du is what the files under dir occupy on disk (allocated blocks), as
// `du` counts them.
func du(dir string) int64 { return kv.DiskUsage(dir) }

// segmentFiles lists the segment files under a store's directory (or one
// camera's), sorted by path: by camera, then by time.
func segmentFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mp4") {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// segScan is what the segment files hold: files, fragments (moof boxes)
// and video bytes (the mdat payloads: each access unit's NAL units with
// their 4-byte lengths, nothing of the MP4 around them).
type segScan struct {
	files, fragments int64
	video, size      int64
}

// scanSegments walks the top-level MP4 boxes of every segment under dir.
func scanSegments(dir string) (segScan, error) {
	var s segScan
	hdr := make([]byte, 16)
	for _, p := range segmentFiles(filepath.Join(dir, "video")) {
		f, err := os.Open(p)
		if err != nil {
			if os.IsNotExist(err) {
				continue // evicted meanwhile
			}
			return s, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return s, err
		}
		s.files++
		s.size += fi.Size()
		for off := int64(0); off+8 <= fi.Size(); {
			if _, err := f.ReadAt(hdr[:8], off); err != nil {
				break
			}
			size, hl := int64(binary.BigEndian.Uint32(hdr)), int64(8)
			if size == 1 {
				if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
					break
				}
				size, hl = int64(binary.BigEndian.Uint64(hdr[8:16])), 16
			}
			if size < hl || off+size > fi.Size() {
				break // a torn tail
			}
			switch string(hdr[4:8]) {
			case "moof":
				s.fragments++
			case "mdat":
				s.video += size - hl
			}
			off += size
		}
		f.Close()
	}
	return s, nil
}
