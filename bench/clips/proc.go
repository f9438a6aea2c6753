package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
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
