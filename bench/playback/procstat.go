package main

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procCPU is a process's CPU time (user + system) from /proc.
func procCPU(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces) start at ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// selfCPU is this process's CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the whole machine's busy and stolen CPU time so far
// (/proc/stat: busy is everything but idle and iowait; steal is time the
// hypervisor gave to other guests).
func machineCPU() (busy, steal time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var total, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		switch i {
		case 3, 4: // idle, iowait
			idle += n
		case 7:
			steal = time.Duration(n) * time.Second / 100
		}
		if i < 8 { // guest time is already counted in user
			total += n
		}
	}
	return time.Duration(total-idle) * time.Second / 100, steal
}

// cpuMark is a moment's CPU times of the server child, this process and
// the whole machine.
type cpuMark struct {
	at                    time.Time
	server, client        time.Duration
	machine, machineSteal time.Duration
}

func markCPU(pid int) cpuMark {
	m := cpuMark{at: time.Now(), server: procCPU(pid), client: selfCPU()}
	m.machine, m.machineSteal = machineCPU()
	return m
}

// cpuUse is CPU in % of one core over an interval.
type cpuUse struct {
	server, client float64
	others         float64 // every other process on the machine (other engineers' work)
	steal          float64
}

// since is the CPU used from m0 to m.
func (m cpuMark) since(m0 cpuMark) cpuUse {
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / m.at.Sub(m0.at).Seconds() }
	server, client := m.server-m0.server, m.client-m0.client
	others := m.machine - m0.machine - server - client - (m.machineSteal - m0.machineSteal)
	return cpuUse{server: pct(server), client: pct(client), others: max(0, pct(others)), steal: pct(m.machineSteal - m0.machineSteal)}
}

// counterSum scrapes url (a Prometheus /metrics page, bearer token) and
// sums every sample of the counter name, whatever its labels.
func counterSum(ctx context.Context, url, token, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no %s on %s", name, url)
	}
	return sum, sc.Err()
}

// drops are the counters that say live view or the camera was
// disturbed, summed over their labels.
type drops struct {
	live     float64 // the edge's live view data dropped (vigil_live_dropped_total)
	cut      float64 // live viewers central cut off (vigil_live_viewers_cut_total)
	rtpLost  float64 // RTP packets the edge lost from the camera (vigil_camera_rtp_packets_lost_total)
	recorded float64 // access units the recorder dropped (vigil_clips_dropped_total)
}

// readDrops scrapes the edge's and central's /metrics.
func (e *env) readDrops(ctx context.Context) (drops, error) {
	var d drops
	edge := "http://" + e.ready.Edge + "/metrics"
	for _, c := range []struct {
		url, token, name string
		v                *float64
	}{
		{edge, e.cfg.MetricsToken, "vigil_live_dropped_total", &d.live},
		{"http://" + e.ready.Central + "/metrics", e.cfg.AdminToken, "vigil_live_viewers_cut_total", &d.cut},
		{edge, e.cfg.MetricsToken, "vigil_camera_rtp_packets_lost_total", &d.rtpLost},
		{edge, e.cfg.MetricsToken, "vigil_clips_dropped_total", &d.recorded},
	} {
		v, err := counterSum(ctx, c.url, c.token, c.name)
		if err != nil {
			return d, err
		}
		*c.v = v
	}
	return d, nil
}

// evictRecording drops the camera's segment files from the page cache, so
// the next read of the recording comes from the disk, as it does for
// video the store wrote and dropped from memory itself.
func (e *env) evictRecording() {
	filepath.WalkDir(filepath.Join(e.dir, "edge", "clips"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mp4") {
			if f, err := os.Open(p); err == nil {
				unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
				f.Close()
			}
		}
		return nil
	})
}
