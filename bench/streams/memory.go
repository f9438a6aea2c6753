package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// MemPoint is one edge node's memory after it ran with N cameras.
type MemPoint struct {
	Cameras int `json:"cameras"`
	// From /proc/<pid>/status at the end of the run, MiB.
	RSS     float64 `json:"vmrss_mib"`
	HWM     float64 `json:"vmhwm_mib"`
	RSSAnon float64 `json:"rss_anon_mib"`
	RSSFile float64 `json:"rss_file_mib"`
	// Total/N, the figure the 64 MiB target is about (N ≥ 1).
	RSSPerCamera float64 `json:"vmrss_per_camera_mib,omitempty"`
	HWMPerCamera float64 `json:"vmhwm_per_camera_mib,omitempty"`
	// The Go runtime's view (the rest is C: FFmpeg, OpenCV, libraries).
	GoHeapInuse float64 `json:"go_heap_inuse_mib"`
	GoSys       float64 `json:"go_sys_mib"`
	// Proof of work: frames analysed, alerts stored in the outbox.
	Analysed float64 `json:"frames_analysed"`
	Dropped  float64 `json:"frames_dropped"`
	Alerts   float64 `json:"alerts_queued"`
	RunS     float64 `json:"run_s"`
}

// MemoryResult is part (c).
type MemoryResult struct {
	Points []MemPoint `json:"points"`
	// Fitted is set when at least two points with N ≥ 1 give a line.
	Fitted bool `json:"fitted"`
	// Least-squares line through the points with N ≥ 1: RSS = base + slope·N.
	SlopeMiB float64 `json:"slope_mib_per_camera"`
	BaseMiB  float64 `json:"intercept_mib"`
	Target   float64 `json:"target_max_mib_per_camera"`
	// Pass: VmHWM/N within the target at every measured N ≥ 2 (a box runs
	// several cameras; with one camera the fixed part is all its share).
	Pass    bool            `json:"pass"`
	PassByN map[string]bool `json:"pass_by_n"`
}

// measureMemory runs part (c): a real edge node per camera count, its
// outbox in a fresh directory, its uplink retrying a closed port.
func measureMemory(ctx context.Context, o options, clip ClipInfo) (*MemoryResult, error) {
	fmt.Printf("(c) memory of an edge node (edge.Start, Badger outbox) with %v cameras, %v each\n", o.memCams, o.memSettle)
	res := &MemoryResult{Target: 64}
	for _, n := range o.memCams {
		p, err := memoryPoint(ctx, o, clip, n)
		if err != nil {
			return res, fmt.Errorf("%d cameras: %w", n, err)
		}
		res.Points = append(res.Points, p)
		fmt.Printf("    %2d cameras: VmRSS %6.1f MiB, VmHWM %6.1f MiB (anon %.1f, file %.1f; Go heap %.1f, Go sys %.1f), %.0f frames analysed, %.0f dropped, %.0f alerts queued\n",
			n, p.RSS, p.HWM, p.RSSAnon, p.RSSFile, p.GoHeapInuse, p.GoSys, p.Analysed, p.Dropped, p.Alerts)
	}
	var xs, ys []float64
	res.PassByN = map[string]bool{}
	several, allOK := 0, true
	for _, p := range res.Points {
		if p.Cameras > 0 {
			xs, ys = append(xs, float64(p.Cameras)), append(ys, p.RSS)
			ok := p.HWMPerCamera <= res.Target
			res.PassByN[fmt.Sprint(p.Cameras)] = ok
			if p.Cameras >= 2 {
				several++
				allOK = allOK && ok
			}
		}
	}
	res.Pass = several > 0 && allOK
	if len(xs) >= 2 {
		slope, base := fitLine(xs, ys)
		res.SlopeMiB, res.BaseMiB, res.Fitted = round(slope, 2), round(base, 1), true
	}
	return res, nil
}

func memoryPoint(ctx context.Context, o options, clip ClipInfo, n int) (MemPoint, error) {
	p := MemPoint{Cameras: n}
	base := "rtsp://127.0.0.1:1/"
	if n > 0 {
		sim, addr, err := startSim(ctx, o, clip, n)
		if err != nil {
			return p, err
		}
		defer sim.stop(5 * time.Second)
		base = "rtsp://" + addr + "/"
	}
	dir, err := os.MkdirTemp("", "vigil-bench-edge-")
	if err != nil {
		return p, err
	}
	defer os.RemoveAll(dir)
	central, err := closedPort()
	if err != nil {
		return p, err
	}
	e, err := startSelf(ctx, "edge", o.verbose, "child-edge", "-base", base, "-n", fmt.Sprint(n), "-dir", dir,
		"-central", "ws://"+central+"/api/v1/edge/ws")
	if err != nil {
		return p, err
	}
	defer e.stop(15 * time.Second)
	line, err := e.readLine(60 * time.Second)
	if err != nil {
		return p, err
	}
	api, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		return p, fmt.Errorf("edge: unexpected %q", line)
	}
	metrics := func() (map[string]float64, map[string]float64, error) {
		return scrape("http://" + api + "/metrics")
	}
	started := time.Now()
	if n > 0 {
		err := waitFor(ctx, 30*time.Second+time.Duration(n)*time.Second, func() (bool, error) {
			_, perCam, err := metrics()
			if err != nil {
				return false, err
			}
			for i := range n {
				if perCam[camPath(i)] == 0 {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			return p, fmt.Errorf("cameras did not come up: %w", err)
		}
	}
	if err := sleep(ctx, o.memSettle); err != nil {
		return p, err
	}
	st, err := memStatus(e.pid())
	if err != nil {
		return p, err
	}
	sums, _, err := metrics()
	if err != nil {
		return p, err
	}
	mib := func(kib float64) float64 { return round(kib/1024, 1) }
	p.RSS, p.HWM, p.RSSAnon, p.RSSFile = mib(st["VmRSS"]), mib(st["VmHWM"]), mib(st["RssAnon"]), mib(st["RssFile"])
	if n > 0 {
		p.RSSPerCamera, p.HWMPerCamera = round(p.RSS/float64(n), 1), round(p.HWM/float64(n), 1)
	}
	p.GoHeapInuse = round(sums["go_memstats_heap_inuse_bytes"]/(1<<20), 1)
	p.GoSys = round(sums["go_memstats_sys_bytes"]/(1<<20), 1)
	p.Analysed = sums["vigil_camera_frames_analysed_total"]
	p.Dropped = sums["vigil_camera_frames_dropped_total"]
	p.Alerts = sums["vigil_edge_alerts_total"]
	p.RunS = round(time.Since(started).Seconds(), 1)
	return p, nil
}

// scrape reads a Prometheus text page: every metric summed over its
// labels, and vigil_camera_frames_analysed_total per camera.
// benchScrapeToken is the child edge's scrape token (metrics_token_sha256).
const benchScrapeToken = "bench-scrape-token"

var benchScrapeSum = sha256.Sum256([]byte(benchScrapeToken))

func scrape(url string) (map[string]float64, map[string]float64, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+benchScrapeToken)
	resp, err := cl.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	sums, perCam := map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(line[:i], "{")
		sums[name] += v
		if name == "vigil_camera_frames_analysed_total" {
			if _, rest, ok := strings.Cut(labels, `camera="`); ok {
				id, _, _ := strings.Cut(rest, `"`)
				perCam[id] = v
			}
		}
	}
	return sums, perCam, sc.Err()
}

// closedPort returns a 127.0.0.1 address nothing listens on (it was free
// a moment ago), for a central that is down.
func closedPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// fitLine is ordinary least squares: y = slope·x + base.
func fitLine(xs, ys []float64) (slope, base float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(xs))
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / d
	return slope, (sy - slope*sx) / n
}
