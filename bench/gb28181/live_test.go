// Package gb28181 benchmarks live video to a GB/T 28181 police platform
// (issue #23): one edge with one camera — GStreamer's RTSP server serving
// a 1280×720 25 fps H.264 clip — recording and analysing it as always,
// registered with Kamailio (digest); SIPp plays the platform and holds N
// live calls at once on that camera (INVITE → ACK → hold → BYE), each
// streamed by the edge as MPEG-PS over RTP/UDP to its own receiver in
// this process.
//
// Measured per phase, beside a reference phase with no calls on the same
// edge in the same run: this process's CPU (the edge, and the receivers,
// which only count packets) and its RSS; CPU per stream is (phase −
// reference) / N, which the reference's own noise (about ±1 % of a core
// here) swamps for a few streams: read the 16-stream line. Every viewer must receive at least 80 % of the frames
// the camera sent during the hold, or the phase fails: a number for
// streams that did not arrive is not a number.
//
// By default (go test ./...) phases of 8 s with 0 and 2 calls check that
// the bench works; VIGIL_BENCH=1 runs 30 s phases with 0, 1, 4 and 16
// calls, prints the table and writes BENCH_GB28181_OUT (default
// bench-gb28181.json at the repository root).
package gb28181

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/bench/procstat"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/kamailio"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/internal/testrig/sipp"
)

const (
	serverID = "34020000002000000001"
	domain   = "3402000000"
	deviceID = "34020000001180000001"
	camID    = "34020000001320000001"
	password = "Bench-12345678"
	fps      = 25
	minShare = 0.8 // of the hold's frames every viewer must receive
)

// phaseResult is one phase's figures.
type phaseResult struct {
	Streams       int     `json:"streams"`
	Seconds       float64 `json:"seconds"`
	CPUPercent    float64 `json:"cpu_percent"` // of one core
	CPUPerStream  float64 `json:"cpu_percent_per_stream,omitempty"`
	RSSMiB        float64 `json:"rss_mib"`
	MinFrames     int     `json:"min_frames_per_viewer,omitempty"`
	MbitPerStream float64 `json:"mbit_per_stream,omitempty"`
	LoadAvg       float64 `json:"load_avg"`
}

func TestGB28181LiveBench(t *testing.T) {
	phases, hold := []int{0, 2}, 8*time.Second
	full := os.Getenv("VIGIL_BENCH") != ""
	if full {
		phases, hold = []int{0, 1, 4, 16}, 30*time.Second
	}
	// A camera's main stream: 720p H.264 at 2 Mbit/s, a keyframe a second,
	// no B-frames.
	clip := testrig.TestsrcSize(t, filepath.Join(t.TempDir(), "cam.mp4"), 20, "1280x720",
		"-c:v", "libx264", "-preset", "veryfast", "-b:v", "2M", "-g", "25", "-bf", "0")
	cam := testrig.StartGstCamera(t, testrig.GstOptions{Streams: map[string]string{"cam": clip}, Minutes: 30})
	k := kamailio.Start(t, kamailio.Options{ServerID: serverID, Domain: domain, Password: password, TZ: "Asia/Shanghai"})
	sipPort, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("127.0.0.1:%d", sipPort)
	cfg := edge.Config{
		EdgeID: "bench-gb", SiteID: "bench-village", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t", BackoffMax: config.Duration(time.Second)},
		Cameras: []edge.CameraConfig{{ID: "cam", Name: "North lane", URL: cam.URL("cam")}},
		GB28181: &conf.GB28181Config{ServerID: serverID, ServerAddr: k.Addr(), DeviceID: deviceID, Password: password,
			LocalAddr: local, Channels: []conf.GBChannelConfig{{Camera: "cam", ID: camID}}},
	}
	node := rig.StartEdge(t, cfg, edge.Options{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	rig.Until(t, "the edge registered with the platform", 30*time.Second, func() bool {
		var h struct {
			Online bool `json:"gb28181_online"`
		}
		resp, err := http.Get("http://" + node.Addr() + "/api/v1/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Online
	})
	time.Sleep(5 * time.Second) // the camera connected, recording and analysis settled

	var results []phaseResult
	for _, n := range phases {
		results = append(results, runPhase(t, n, hold, local))
	}
	ref := results[0].CPUPercent
	var table strings.Builder
	fmt.Fprintf(&table, "| streams | CPU (%% of one core) | CPU per stream | RSS MiB | min frames/viewer | Mbit/s per stream | load |\n|---|---|---|---|---|---|---|\n")
	for i := range results {
		r := &results[i]
		if r.Streams > 0 {
			r.CPUPerStream = (r.CPUPercent - ref) / float64(r.Streams)
		}
		fmt.Fprintf(&table, "| %d | %.1f %% | %.2f %% | %.0f | %d | %.2f | %.1f |\n",
			r.Streams, r.CPUPercent, r.CPUPerStream, r.RSSMiB, r.MinFrames, r.MbitPerStream, r.LoadAvg)
	}
	t.Logf("GB/T 28181 live streams of one 720p camera, beside the same edge with none (%s holds):\n%s", hold, table.String())
	if full {
		out := os.Getenv("BENCH_GB28181_OUT")
		if out == "" {
			out = filepath.Join("..", "..", "bench-gb28181.json")
		}
		b, _ := json.MarshalIndent(map[string]any{"hold_seconds": hold.Seconds(), "phases": results}, "", "  ")
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runPhase holds n live calls for hold and measures the process.
func runPhase(t *testing.T, n int, hold time.Duration, edgeSIP string) phaseResult {
	t.Helper()
	if n == 0 {
		cpu0, at0 := procstat.SelfCPU(), time.Now()
		time.Sleep(hold)
		secs := time.Since(at0).Seconds()
		return phaseResult{Seconds: secs, CPUPercent: 100 * (procstat.SelfCPU() - cpu0).Seconds() / secs,
			RSSMiB: procstat.RSSMiB(), LoadAvg: procstat.LoadAvg()}
	}
	rx := make([]*testrig.RTPReceiver, n)
	var calls strings.Builder
	calls.WriteString("SEQUENTIAL\n")
	for i := range rx {
		rx[i] = testrig.ListenRTPCounting(t)
		fmt.Fprintf(&calls, "%d;%010d;\n", rx[i].Port(), 100000001+i)
	}
	inf := filepath.Join(t.TempDir(), "calls.csv")
	if err := os.WriteFile(inf, []byte(calls.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := sipp.Start(t, sipp.Options{Scenario: "testdata/live_load.xml", Remote: edgeSIP, Calls: n, Timeout: hold + 30*time.Second,
		Keys: map[string]string{"cam": camID, "srv": serverID, "domain": domain},
		Args: []string{"-inf", inf, "-l", fmt.Sprint(n), "-r", "50", "-d", fmt.Sprint(hold.Milliseconds())}})
	// Measure the hold only: from every viewer's first packet.
	rig.Until(t, "every viewer's first frame", 20*time.Second, func() bool {
		for _, r := range rx {
			if _, f, _ := r.Stream(); f == 0 {
				return false
			}
		}
		return true
	})
	cpu0, at0 := procstat.SelfCPU(), time.Now()
	start := make([]int, n)
	for i, r := range rx {
		_, start[i], _ = r.Stream()
	}
	time.Sleep(hold - 2*time.Second) // the calls end hold after their ACK
	secs := time.Since(at0).Seconds()
	res := phaseResult{Streams: n, Seconds: secs, CPUPercent: 100 * (procstat.SelfCPU() - cpu0).Seconds() / secs,
		RSSMiB: procstat.RSSMiB(), LoadAvg: procstat.LoadAvg(), MinFrames: -1}
	var bytes int
	for i, r := range rx {
		_, f, _ := r.Stream()
		bytes += r.Bytes()
		if got := f - start[i]; res.MinFrames < 0 || got < res.MinFrames {
			res.MinFrames = got
		}
	}
	if out := p.Wait(); out.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s", out.ExitCode, out.Errors)
	}
	res.MbitPerStream = float64(bytes) * 8 / 1e6 / float64(n) / (hold.Seconds() + 1)
	if want := int(minShare * fps * secs); res.MinFrames < want {
		t.Errorf("%d streams: a viewer received %d frames in %.1f s, want ≥ %d", n, res.MinFrames, secs, want)
	}
	return res
}
