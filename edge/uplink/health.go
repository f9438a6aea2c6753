package uplink

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/vigil-perimeter/vigil/wire"
)

// diskStatus reports the filesystem holding dir; nil if it cannot be read.
func diskStatus(dir string) *wire.DiskStatus {
	if dir == "" {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	bs := uint64(st.Bsize)
	return &wire.DiskStatus{Path: dir, TotalBytes: st.Blocks * bs, FreeBytes: st.Bavail * bs}
}

// cpuSampler measures the box's CPU use between calls from /proc/stat.
type cpuSampler struct {
	busy, total uint64
}

// sample returns the percentage of all cores busy since the previous call
// (-1 the first time, or where /proc/stat is missing).
func (c *cpuSampler) sample() float64 {
	busy, total, ok := readProcStat()
	if !ok {
		return -1
	}
	prevBusy, prevTotal := c.busy, c.total
	c.busy, c.total = busy, total
	if prevTotal == 0 || total <= prevTotal {
		return -1
	}
	return 100 * float64(busy-prevBusy) / float64(total-prevTotal)
}

func readProcStat() (busy, total uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal; guest time is
	// already counted in user and nice.
	for i, f := range fields[1:min(len(fields), 9)] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy, total, true
}
