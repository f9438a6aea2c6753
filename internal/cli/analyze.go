package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/camera"
)

// cameraFile is --camera-config: one camera's analysis:, motion:, lines:,
// dwell: and perimeter: blocks, written exactly as under a camera in
// edge.yaml. --lines reads a file of the same shape for its lines: and
// dwell: only.
type cameraFile struct {
	Analysis  edge.AnalysisConfig  `yaml:"analysis,omitempty"`
	Motion    edge.MotionConfig    `yaml:"motion,omitempty"`
	Lines     []edge.LineConfig    `yaml:"lines,omitempty"`
	Dwell     []edge.DwellConfig   `yaml:"dwell,omitempty"`
	Perimeter edge.PerimeterTuning `yaml:"perimeter,omitempty"`
}

func (f *cameraFile) camera() edge.CameraConfig {
	return edge.CameraConfig{Analysis: f.Analysis, Motion: f.Motion, Lines: f.Lines, Dwell: f.Dwell, Perimeter: f.Perimeter}
}

// loadLines reads --lines: a file with lines: and dwell: blocks as under
// a camera in edge.yaml, checked as the edge checks them.
func loadLines(path string) (cameraFile, error) {
	var lf cameraFile
	err := config.Load(path, &lf)
	return lf, err
}

// Validate implements config.Validator.
func (f *cameraFile) Validate() []config.FieldError { return f.camera().ValidateAnalysis() }

// runAnalyze runs the edge's analysis over a recording and prints the
// events the edge would raise: an installer tunes zones and masks on a
// recording, and the numbers in BENCHMARKS.md come from the same code.
func runAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := cmdtable.NewFlags("analyze", stderr)
	input := fs.String("input", "", "video file (H.264 or H.265 in MP4, MKV, AVI, raw …)")
	camCfg := fs.String("camera-config", "", "YAML file with a camera's analysis: and motion: blocks as in edge.yaml (default: the edge's defaults)")
	asJSON := fs.Bool("json", false, "print one JSON object per event")
	start := fs.String("start", "", "wall-clock time of the first frame, RFC 3339 (default: the file's modification time minus its duration)")
	linesPath := fs.String("lines", "", "YAML or JSON file with lines: (tripwires) and dwell: (regions) as in edge.yaml, in place of --camera-config's; prints crossings and loiters")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *input == "" || fs.NArg() > 0 {
		return errors.New("usage: vigil analyze --input FILE [--camera-config FILE] [--lines FILE] [--json] [--start TIME]")
	}
	var cf cameraFile
	if *camCfg != "" {
		if err := config.Load(*camCfg, &cf); err != nil {
			return err
		}
	}
	if *linesPath != "" {
		lf, err := loadLines(*linesPath)
		if err != nil {
			return err
		}
		cf.Lines, cf.Dwell = lf.Lines, lf.Dwell
	}
	t0, err := fileStart(*input, *start)
	if err != nil {
		return err
	}

	var p printer = &textPrinter{w: stdout, t0: t0}
	if *asJSON {
		p = &jsonPrinter{enc: json.NewEncoder(stdout), t0: t0}
	}
	counts := map[string]int{}
	opt := camera.FileOptions{Start: t0}
	sum, err := camera.AnalyzeFile(ctx, *input, cf.camera().AnalyzerConfig(), opt,
		func(ev camera.FileEvent) error {
			counts[ev.Kind]++
			return p.event(ev)
		})
	if err != nil {
		return err
	}
	// The summary goes to stderr in JSON mode so stdout stays one object
	// per line.
	out := stdout
	if *asJSON {
		out = stderr
	}
	fmt.Fprintf(out, "%s: %s, %d frames (%d decoded, %d analysed at %dx%d, %d decode errors); %d motion events, %d tamper changes, %d crossings, %d loiters\n",
		*input, sum.Info.Duration.Round(time.Millisecond), sum.Units, sum.Decoded, sum.Analysed, sum.Width, sum.Height,
		sum.DecodeErrors, counts[camera.KindMotion], counts[camera.KindTamper], counts[camera.KindCrossing], counts[camera.KindLoiter])
	return nil
}

// fileStart parses --start, or estimates when the recording began.
func fileStart(path, start string) (time.Time, error) {
	if start != "" {
		t, err := time.Parse(time.RFC3339Nano, start)
		if err != nil {
			return time.Time{}, fmt.Errorf("--start: %w", err)
		}
		return t.UTC(), nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	// A recorder closes its file when the recording ends.
	r, err := av.OpenFile(path)
	if err != nil {
		return time.Time{}, err
	}
	defer r.Close()
	return st.ModTime().Add(-r.Info().Duration).UTC().Truncate(time.Millisecond), nil
}

type printer interface{ event(camera.FileEvent) error }

// jsonEvent is one line of `vigil analyze --json`.
type jsonEvent struct {
	Kind       string     `json:"kind"`
	Tamper     string     `json:"tamper,omitempty"`
	State      string     `json:"state,omitempty"` // tamper: started or cleared
	Start      time.Time  `json:"start"`
	Alert      time.Time  `json:"alert"`
	End        *time.Time `json:"end,omitempty"`
	StartFrame int        `json:"start_frame"`
	AlertFrame int        `json:"alert_frame"`
	EndFrame   *int       `json:"end_frame,omitempty"`
	StartS     float64    `json:"start_s"` // seconds from the first frame
	AlertS     float64    `json:"alert_s"`
	EndS       *float64   `json:"end_s,omitempty"`
	Open       bool       `json:"open,omitempty"` // the file ended during the event
	Boxes      []jsonBox  `json:"boxes,omitempty"`
	Zones      []string   `json:"zones,omitempty"`
	Peak       float64    `json:"peak,omitempty"`
	Detail     string     `json:"detail,omitempty"`
	// Crossings and loiters: the line or dwell region, the way across,
	// the track.
	Line      string `json:"line,omitempty"`
	Dwell     string `json:"dwell,omitempty"`
	Direction string `json:"direction,omitempty"`
	Track     uint64 `json:"track,omitempty"`
}

type jsonBox struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

type jsonPrinter struct {
	enc *json.Encoder
	t0  time.Time
}

func (p *jsonPrinter) event(ev camera.FileEvent) error {
	j := jsonEvent{
		Kind: ev.Kind, Tamper: ev.Tamper, Start: ev.Start, Alert: ev.Raised,
		StartFrame: ev.StartFrame, AlertFrame: ev.RaisedFrame,
		StartS: secs(ev.Start.Sub(p.t0)), AlertS: secs(ev.Raised.Sub(p.t0)),
		Open: ev.Open, Zones: ev.Zones, Peak: ev.Peak, Detail: ev.Detail,
	}
	switch ev.Kind {
	case camera.KindMotion:
		end, endS, endFrame := ev.End, secs(ev.End.Sub(p.t0)), ev.EndFrame
		j.End, j.EndS, j.EndFrame = &end, &endS, &endFrame
		for _, b := range ev.Boxes {
			j.Boxes = append(j.Boxes, jsonBox{b.X, b.Y, b.W, b.H})
		}
	case camera.KindTamper:
		j.State = "started"
		if ev.Cleared {
			j.State = "cleared"
		}
	case camera.KindCrossing, camera.KindLoiter:
		j.Direction, j.Track = string(ev.Direction), ev.Track
		if ev.Kind == camera.KindCrossing {
			j.Line = ev.Name
		} else {
			j.Dwell = ev.Name
		}
		for _, b := range ev.Boxes {
			j.Boxes = append(j.Boxes, jsonBox{b.X, b.Y, b.W, b.H})
		}
	}
	return p.enc.Encode(j)
}

type textPrinter struct {
	w  io.Writer
	t0 time.Time
}

func (p *textPrinter) event(ev camera.FileEvent) error {
	at := func(t time.Time, frame int) string {
		return fmt.Sprintf("%s (frame %d)", clock(t.Sub(p.t0)), frame)
	}
	var b strings.Builder
	switch ev.Kind {
	case camera.KindMotion:
		fmt.Fprintf(&b, "motion  %s – %s, alert at %s", at(ev.Start, ev.StartFrame), at(ev.End, ev.EndFrame), at(ev.Raised, ev.RaisedFrame))
		if ev.Open {
			b.WriteString(", still going at the end of the file")
		}
		fmt.Fprintf(&b, "; zones %s", strings.Join(ev.Zones, ", "))
		for _, o := range ev.Boxes {
			fmt.Fprintf(&b, "; object at x %.2f y %.2f, %.2f × %.2f", o.X, o.Y, o.W, o.H)
		}
	case camera.KindTamper:
		state := "started"
		if ev.Cleared {
			state = "cleared"
		}
		fmt.Fprintf(&b, "tamper  %s %s at %s, alert at %s", ev.Tamper, state, at(ev.Start, ev.StartFrame), at(ev.Raised, ev.RaisedFrame))
		if ev.Detail != "" {
			fmt.Fprintf(&b, "; %s", ev.Detail)
		}
	case camera.KindCrossing:
		fmt.Fprintf(&b, "crossing %s: line %q %s, track %d", at(ev.Raised, ev.RaisedFrame), ev.Name, ev.Direction, ev.Track)
	case camera.KindLoiter:
		fmt.Fprintf(&b, "loiter  %s: %q, track %d there since %s", at(ev.Raised, ev.RaisedFrame), ev.Name, ev.Track, at(ev.Start, ev.StartFrame))
	}
	_, err := fmt.Fprintln(p.w, b.String())
	return err
}

func secs(d time.Duration) float64 { return float64(d.Round(time.Millisecond)) / float64(time.Second) }

// clock formats an offset into the file as m:ss.mmm.
func clock(d time.Duration) string {
	d = d.Round(time.Millisecond)
	return fmt.Sprintf("%d:%06.3f", int(d/time.Minute), float64(d%time.Minute)/float64(time.Second))
}
