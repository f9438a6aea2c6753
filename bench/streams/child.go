package main

// The harness measures every side in its own process, so that the CPU
// time and memory read from /proc belong to exactly one thing. These are
// the child modes of the same binary. Each prints "ready …" on stdout when
// it runs, answers one-line commands from stdin, and exits when stdin
// closes, so a child never outlives the harness.

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/rtsp"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

func childLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// serveStdin answers commands until stdin closes.
func serveStdin(handle func(cmd string) string) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(handle(strings.TrimSpace(sc.Text())))
	}
}

// camPath names the i-th simulated camera.
func camPath(i int) string { return fmt.Sprintf("cam%03d", i) }

// runSim serves n cameras playing one clip. Camera i starts i/n of the way
// into the clip, so pictures, keyframes and bitrate peaks are spread over
// time as with independent real cameras, not all at the same instant.
func runSim(args []string) error {
	fs := flag.NewFlagSet("child-sim", flag.ContinueOnError)
	clipPath := fs.String("clip", "", "H.264 file")
	n := fs.Int("n", 1, "cameras")
	if err := fs.Parse(args); err != nil {
		return err
	}
	clip, err := sim.LoadClip(*clipPath)
	if err != nil {
		return err
	}
	var cams []sim.Camera
	for i := range *n {
		cams = append(cams, sim.Camera{Path: camPath(i), Clip: rotate(clip, i*len(clip.Packets) / *n)})
	}
	s, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: cams, Log: childLogger()})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("ready", s.Addr())
	serveStdin(func(string) string { return "?" })
	return nil
}

// rotate returns the clip started k frames in; the loop still plays the
// frames in their original cyclic order, which the clip's wrap-around (at
// a keyframe) makes decodable everywhere.
func rotate(c *sim.Clip, k int) *sim.Clip {
	if k == 0 || len(c.Packets) < 2 {
		return c
	}
	frame := c.Duration / time.Duration(len(c.Packets))
	out := *c
	out.Packets = nil
	for i := range c.Packets {
		p := c.Packets[(k+i)%len(c.Packets)]
		p.PTS = time.Duration(i) * frame
		out.Packets = append(out.Packets, p)
	}
	out.Duration = time.Duration(len(c.Packets)) * frame
	return &out
}

// discard is a camera.Parent that counts motion events and throws
// everything away: the camera still decodes, analyses and encodes a JPEG
// snapshot for every motion event, as on the edge.
type discard struct{ events *atomic.Int64 }

func (d discard) OnMotion(camera.Event)                 { d.events.Add(1) }
func (discard) OnTamper(camera.TamperEvent)             {}
func (discard) OnAnalysis(camera.AnalysisEvent)         {}
func (discard) OnPerimeter(camera.PerimeterEvent)       {}
func (discard) OnAccessUnit(string, streams.AccessUnit) {}

// camStats is one camera's counters, as the cam child reports them.
type camStats struct {
	ID           string  `json:"id"`
	FramesIn     float64 `json:"in"`
	Analysed     float64 `json:"analysed"`
	Dropped      float64 `json:"dropped"`
	DecodeErrors float64 `json:"decode_errors"`
	Reconnects   float64 `json:"reconnects"`
	Events       float64 `json:"motion_events"`
}

// runCams runs n camera sessions against the simulator, each exactly as
// the edge runs it (camera.New(...).Run). Modes split the cost:
// "full" (RTSP + decode of every frame + analysis at -fps + a JPEG per
// motion event), "nosnap" (the same with a nil Parent, so no JPEGs),
// "decode" (the same at one analysed frame per hour) and "rtsp" (the RTSP
// session alone, access units counted and dropped).
func runCams(args []string) error {
	fs := flag.NewFlagSet("child-cam", flag.ContinueOnError)
	base := fs.String("base", "", "rtsp://host:port/ of the simulator")
	n := fs.Int("n", 1, "cameras")
	mode := fs.String("mode", "full", "full, fulldecode (full with the loop filter on), nosnap, decode or rtsp")
	fps := fs.Float64("fps", 5, "analysed frames per second (full mode)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	cc := &camChild{mode: *mode, n: *n, reg: reg, metrics: camera.NewMetrics(reg),
		rtspIn: make([]atomic.Int64, *n), events: make([]atomic.Int64, *n)}
	for i := range *n {
		url := strings.TrimSuffix(*base, "/") + "/" + camPath(i)
		if err := cc.start(ctx, i, url, *fps); err != nil {
			cancel()
			return err
		}
	}
	fmt.Println("ready")
	serveStdin(cc.answer)
	if cc.prof != nil {
		pprof.StopCPUProfile()
		cc.prof.Close()
	}
	cancel()
	done := make(chan struct{})
	go func() { cc.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return errors.New("cameras did not stop within 5 s")
	}
	return nil
}

// camChild is the cam child's sessions and counters.
type camChild struct {
	mode    string
	n       int
	reg     *prometheus.Registry
	metrics *camera.Metrics
	rtspIn  []atomic.Int64 // rtsp mode: units received per camera
	events  []atomic.Int64 // motion events per camera
	wg      sync.WaitGroup
	prof    *os.File // the CPU profile being written
}

// start starts camera i's session in cc's mode.
func (cc *camChild) start(ctx context.Context, i int, url string, fps float64) error {
	switch cc.mode {
	case "full", "fulldecode", "nosnap", "decode":
		cfg := camera.Config{ID: camPath(i), URL: url, AnalysisFPS: fps, FullDecode: cc.mode == "fulldecode"}
		if cc.mode == "decode" {
			cfg.AnalysisFPS = 1.0 / 3600
		}
		var parent camera.Parent = discard{&cc.events[i]}
		if cc.mode == "nosnap" {
			parent = nil // the camera skips snapshots without a parent
		}
		cam, err := camera.New(cfg, parent, cc.metrics, childLogger())
		if err != nil {
			return err
		}
		cc.wg.Add(1)
		go func() {
			defer cc.wg.Done()
			if err := cam.Run(ctx); err != nil {
				slog.Error("camera stopped", "camera", cfg.ID, "err", err)
			}
		}()
	case "rtsp":
		cc.wg.Add(1)
		go func() {
			defer cc.wg.Done()
			for ctx.Err() == nil {
				err := rtsp.Run(ctx, rtsp.Config{URL: url, Log: childLogger()}, nil, func(streams.AccessUnit) { cc.rtspIn[i].Add(1) })
				if ctx.Err() == nil {
					slog.Warn("rtsp session ended", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
			}
		}()
	default:
		return fmt.Errorf("unknown mode %q", cc.mode)
	}
	return nil
}

// answer serves one command from the parent: snap, prof-start FILE or
// prof-stop.
func (cc *camChild) answer(cmd string) string {
	verb, arg, _ := strings.Cut(cmd, " ")
	switch verb {
	case "snap":
		b, _ := json.Marshal(cc.snap())
		return string(b)
	case "prof-start":
		f, err := os.Create(arg)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			return "error " + err.Error()
		}
		cc.prof = f
		return "ok"
	case "prof-stop":
		if cc.prof == nil {
			return "error no profile running"
		}
		pprof.StopCPUProfile()
		err := cc.prof.Close()
		cc.prof = nil
		if err != nil {
			return "error " + err.Error()
		}
		return "ok"
	}
	return "error unknown command " + verb
}

// snap is every camera's counters.
func (cc *camChild) snap() []camStats {
	var out []camStats
	if cc.mode == "rtsp" {
		for i := range cc.n {
			out = append(out, camStats{ID: camPath(i), FramesIn: float64(cc.rtspIn[i].Load())})
		}
		return out
	}
	out = gatherCams(cc.reg, cc.n)
	for i := range out {
		out[i].Events = float64(cc.events[i].Load())
	}
	return out
}

// gatherCams reads the per-camera counters from the registry by their
// exported names, the same numbers /metrics shows.
func gatherCams(reg *prometheus.Registry, n int) []camStats {
	byID := map[string]*camStats{}
	out := make([]camStats, n)
	for i := range out {
		out[i].ID = camPath(i)
		byID[out[i].ID] = &out[i]
	}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var id string
			for _, l := range m.GetLabel() {
				if l.GetName() == "camera" {
					id = l.GetValue()
				}
			}
			s := byID[id]
			if s == nil || m.GetCounter() == nil {
				continue
			}
			v := m.GetCounter().GetValue()
			switch mf.GetName() {
			case "vigil_camera_frames_in_total":
				s.FramesIn = v
			case "vigil_camera_frames_analysed_total":
				s.Analysed = v
			case "vigil_camera_frames_dropped_total":
				s.Dropped = v
			case "vigil_camera_decode_errors_total":
				s.DecodeErrors = v
			case "vigil_camera_reconnects_total":
				s.Reconnects = v
			}
		}
	}
	return out
}

// runEdge runs a real edge node (edge.Start: cameras, Badger outbox,
// uplink, local API) with n cameras on the simulator. Central's URL points
// at a closed port, so the uplink keeps retrying and alerts accumulate in
// the outbox, as on a box whose uplink is down.
func runEdge(args []string) error {
	fs := flag.NewFlagSet("child-edge", flag.ContinueOnError)
	base := fs.String("base", "", "rtsp://host:port/ of the simulator")
	n := fs.Int("n", 1, "cameras")
	dir := fs.String("dir", "", "data directory")
	central := fs.String("central", "", "ws:// URL of a central that is not there")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := edge.Config{
		EdgeID: "bench", SiteID: "bench", Listen: "127.0.0.1:0", DataDir: *dir,
		Central:            edge.CentralConfig{URL: *central, Token: "bench-token"},
		MetricsTokenSHA256: hex.EncodeToString(benchScrapeSum[:]),
	}
	for i := range *n {
		cfg.Cameras = append(cfg.Cameras, edge.CameraConfig{ID: camPath(i), URL: strings.TrimSuffix(*base, "/") + "/" + camPath(i)})
	}
	node, err := edge.Start(cfg, edge.Options{Log: childLogger()})
	if err != nil {
		return err
	}
	fmt.Println("ready", node.Addr())
	serveStdin(func(string) string { return "?" })
	return node.Close()
}

// runChild dispatches a child mode; it reports whether args named one.
func runChild(args []string) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	modes := map[string]func([]string) error{"child-sim": runSim, "child-cam": runCams, "child-edge": runEdge}
	f, ok := modes[args[0]]
	if !ok {
		return false, nil
	}
	return true, f(args[1:])
}
