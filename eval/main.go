// Command eval measures the edge's motion analysis on real footage with
// ground truth: it runs exactly what `vigil analyze` runs (camera.AnalyzeFile
// with the default settings and no masks) over every sequence in a test-data
// directory and scores events and foreground pixels against the truth.
// It then scores the perimeter (perimeter.go): tripwire crossings and ID
// switches on CDnet highway against truth tracks from its masks, lines
// through foliage that nothing crosses, and a dwell on opencv-doc's
// pedestrian footage.
//
//	go run ./eval [-data DIR] [-out eval.json] [-part all|motion|perimeter]
//
// DIR defaults to $VIGIL_EVAL_DATA, else ../shared/testdata; its README.md
// describes the ground-truth formats this program reads (CDnet, Wallflower,
// and sequences with nothing of interest in them).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

func main() {
	dataDef := os.Getenv("VIGIL_EVAL_DATA")
	if dataDef == "" {
		dataDef = "../shared/testdata"
	}
	outDef := os.Getenv("EVAL_OUT")
	if outDef == "" {
		outDef = "eval.json"
	}
	data := flag.String("data", dataDef, "directory of sequences (one folder each) with their ground truth")
	out := flag.String("out", outDef, "where to write the results as JSON")
	part := flag.String("part", "all", "what to evaluate: all, motion or perimeter")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep := &Report{Data: *data}
	var err error
	if *part == "all" || *part == "motion" {
		rep, err = run(ctx, *data)
		if err != nil {
			fmt.Fprintln(os.Stderr, "eval:", err)
			os.Exit(1)
		}
		printReport(os.Stdout, rep)
	}
	if *part == "all" || *part == "perimeter" {
		rep.Perimeter, err = runPerimeterEval(ctx, *data)
		if err != nil {
			fmt.Fprintln(os.Stderr, "eval:", err)
			os.Exit(1)
		}
		fmt.Println()
		printPerimeter(os.Stdout, rep.Perimeter)
		for _, t := range rep.Perimeter.Targets {
			if !t.Met {
				rep.Failed++
			}
		}
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
	fmt.Printf("\nwrote %s\n", *out)
	if rep.Failed > 0 {
		os.Exit(1)
	}
}

// Report is the whole evaluation, as written to JSON.
type Report struct {
	Data      string     `json:"data"`
	Settings  Settings   `json:"settings"`
	Sequences []Sequence `json:"sequences"`
	Targets   []Target   `json:"targets"`
	Failed    int        `json:"failed_targets"`
	// Perimeter: tripwire crossings, ID switches and dwell (issue #20).
	Perimeter *PerimeterReport `json:"perimeter,omitempty"`
}

// Settings are the detector defaults the run used.
type Settings struct {
	FPS          float64 `json:"analysis_fps"`
	Width        int     `json:"analysis_width"`
	MinArea      float64 `json:"min_area"`
	K            int     `json:"k"`
	N            int     `json:"n"`
	WarmupS      float64 `json:"warmup_s"`
	MergeGapS    float64 `json:"gt_merge_gap_s"`
	LearnPeriodS float64 `json:"learning_period_s"`
}

// Sequence is one video's scores.
type Sequence struct {
	Name       string  `json:"name"`
	File       string  `json:"file"`
	Truth      string  `json:"truth"`
	Frames     int     `json:"frames"`
	FPS        float64 `json:"fps"`
	Analysed   int     `json:"analysed_frames"`
	ScoredFrom int     `json:"scored_from_frame"` // event scoring window, frame numbers
	ScoredTo   int     `json:"scored_to_frame"`
	// Event level.
	TruthEvents []Span    `json:"truth_events"`
	Events      []Event   `json:"events"`
	Detected    int       `json:"truth_events_detected"`
	Recall      *float64  `json:"event_recall"`    // nil: no truth events
	Precision   *float64  `json:"event_precision"` // nil: no events raised
	FalseAlarms int       `json:"false_alarms"`
	DelaysS     []float64 `json:"delays_s"` // per detected truth event: first truth motion → alert raised
	// Pixel level (CDnet conventions), nil where there is no per-pixel truth
	// on an analysed frame.
	Pixels *PixelScore `json:"pixels,omitempty"`
	Note   string      `json:"note,omitempty"`
	// Tamper conditions the same Analyzer raised (not scored here).
	Tamper []string `json:"tamper,omitempty"`
	Secs   float64  `json:"run_seconds"`
}

// Span is an inclusive range of frame numbers.
type Span struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// Event is one raised event in frame numbers.
type Event struct {
	Start, Raised, End int
	Open               bool
	Boxes              []motion.Box
	Truth              bool // overlaps a truth event
}

// MarshalJSON keeps the JSON flat and lower-case.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"start_frame": e.Start, "raised_frame": e.Raised, "end_frame": e.End,
		"open": e.Open, "boxes": e.Boxes, "matches_truth": e.Truth,
	})
}

// PixelScore counts foreground pixels against per-pixel truth.
type PixelScore struct {
	Frames    int     `json:"frames"`
	TP        int64   `json:"tp"`
	FP        int64   `json:"fp"`
	FN        int64   `json:"fn"`
	TN        int64   `json:"tn"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F         float64 `json:"f_measure"`
}

// Target is one acceptance target and whether it was met.
type Target struct {
	Sequence string `json:"sequence"`
	What     string `json:"what"`
	Got      string `json:"got"`
	Met      bool   `json:"met"`
}

// mergeGap joins truth spans separated by less than this: the detector
// keeps an event open across short gaps (it ends after N quiet frames and
// waits out its cooldown), so it cannot split them either.
const mergeGap = 2 * time.Second

// raisedEarly is how long before the ground truth's first frame an event
// may be raised and still count as detecting it (annotations start when
// the object is already partly in view).
const raisedEarly = 500 * time.Millisecond

func run(ctx context.Context, dir string) (*Report, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("test data: %w (set VIGIL_EVAL_DATA)", err)
	}
	def := motion.Config{}.Defaults()
	cfg := camera.AnalyzerConfig{} // the edge's defaults: no zones, no masks
	rep := &Report{Data: dir, Settings: Settings{
		FPS: 5, Width: 320, MinArea: def.MinArea, K: def.K, N: def.N,
		WarmupS: def.Warmup.Seconds(), MergeGapS: mergeGap.Seconds(), LearnPeriodS: def.Warmup.Seconds(),
	}}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		seq, err := loadSequence(filepath.Join(dir, e.Name()), def.MinArea)
		if errors.Is(err, errNoVideo) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		res, err := evaluate(ctx, seq, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		rep.Sequences = append(rep.Sequences, res)
	}
	if len(rep.Sequences) == 0 {
		return nil, fmt.Errorf("no sequences in %s", dir)
	}
	rep.Targets = targets(rep.Sequences)
	for _, t := range rep.Targets {
		if !t.Met {
			rep.Failed++
		}
	}
	return rep, nil
}

func evaluate(ctx context.Context, seq *sequence, cfg camera.AnalyzerConfig) (Sequence, error) {
	began := time.Now()
	res := Sequence{Name: seq.name, File: filepath.Base(seq.video), Truth: seq.kind, Note: seq.note}
	var pix *PixelScore
	var pixErr error
	resized := gocv.NewMat() // foreground at the truth's size
	defer resized.Close()
	opt := camera.FileOptions{
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		OnFrame: func(a *camera.Analyzer, f camera.FileFrame) {
			if pixErr != nil || !seq.pixelTruth(f.Index) {
				return
			}
			if pix == nil {
				pix = &PixelScore{}
			}
			pixErr = seq.scorePixels(f.Index, a.Foreground(), &resized, pix)
		},
	}
	var events []camera.FileEvent
	sum, err := camera.AnalyzeFile(ctx, seq.video, cfg, opt, func(ev camera.FileEvent) error {
		if ev.Kind == camera.KindMotion {
			events = append(events, ev)
		} else if !ev.Cleared {
			res.Tamper = append(res.Tamper, fmt.Sprintf("%s at frame %d", ev.Tamper, ev.RaisedFrame))
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if pixErr != nil {
		return res, pixErr
	}
	res.Frames, res.FPS, res.Analysed = sum.Units, sum.Info.FPS, sum.Analysed
	res.Secs = time.Since(began).Seconds()
	from, to := seq.window(sum.Units)
	res.ScoredFrom, res.ScoredTo = from, to
	res.TruthEvents = seq.truthEvents(sum.Units, int(mergeGap.Seconds()*sum.Info.FPS+0.5))

	res.score(events, sum.Info.FPS)
	if pix != nil {
		pix.finish()
		res.Pixels = pix
	} else if seq.kind == truthWallflower && seq.handFrame >= 0 {
		res.Note = fmt.Sprintf("hand-segmented frame %d was not analysed (%g of %g fps), so no pixel score", seq.handFrame, 5.0, sum.Info.FPS)
	}
	return res, nil
}

// score matches the motion events in the scored period with the truth's
// events: false alarms, detections and their delays, recall and
// precision.
func (res *Sequence) score(events []camera.FileEvent, fps float64) {
	from, to := res.ScoredFrom, res.ScoredTo
	early := int(raisedEarly.Seconds()*fps + 0.5)
	for _, ev := range events {
		if ev.EndFrame < from || ev.StartFrame > to {
			continue // outside the scored period (CDnet's temporal ROI)
		}
		e := Event{Start: ev.StartFrame, Raised: ev.RaisedFrame, End: ev.EndFrame, Open: ev.Open, Boxes: ev.Boxes}
		for _, s := range res.TruthEvents {
			// An event raised well before the object appeared was raised
			// on something else (leaves, light), even if it lasts into the
			// object's span: it is a false alarm.
			if e.Start <= s.To && e.End >= s.From && (s.From <= from || e.Raised >= s.From-early) {
				e.Truth = true
			}
		}
		if !e.Truth {
			res.FalseAlarms++
		}
		res.Events = append(res.Events, e)
	}
	for _, s := range res.TruthEvents {
		for _, e := range res.Events {
			if e.Truth && e.Start <= s.To && e.End >= s.From {
				res.Detected++
				if s.From > from {
					// A span that begins with the scored period has no
					// known start to measure a delay from.
					res.DelaysS = append(res.DelaysS, float64(e.Raised-s.From)/fps)
				}
				break
			}
		}
	}
	if n := len(res.TruthEvents); n > 0 {
		r := float64(res.Detected) / float64(n)
		res.Recall = &r
	}
	if n := len(res.Events); n > 0 {
		p := float64(n-res.FalseAlarms) / float64(n)
		res.Precision = &p
	}
}

func (p *PixelScore) finish() {
	if p.TP+p.FP > 0 {
		p.Precision = float64(p.TP) / float64(p.TP+p.FP)
	}
	if p.TP+p.FN > 0 {
		p.Recall = float64(p.TP) / float64(p.TP+p.FN)
	}
	if p.Precision+p.Recall > 0 {
		p.F = 2 * p.Precision * p.Recall / (p.Precision + p.Recall)
	}
}

// targets are the acceptance targets of the motion issue, for the
// sequences that are present.
func targets(seqs []Sequence) []Target {
	var ts []Target
	for _, s := range seqs {
		switch s.Name {
		case "wallflower_wavingtrees":
			got := "not detected"
			met := false
			if len(s.DelaysS) > 0 {
				got = fmt.Sprintf("alert %.2f s after entering", s.DelaysS[0])
				met = s.DelaysS[0] <= 1
			}
			ts = append(ts, Target{s.Name, "person detected within 1 s of entering", got, met})
			before := 0
			for _, e := range s.Events {
				if !e.Truth {
					before++
				}
			}
			ts = append(ts, Target{s.Name, "no alarm before the person enters", fmt.Sprintf("%d false alarms", before), before == 0})
		case "opencv_tree":
			what := "no false alarm"
			if len(s.TruthEvents) > 0 {
				what = fmt.Sprintf("no alarm on the leaves (before frame %d, where a hand appears)", s.TruthEvents[0].From)
			}
			ts = append(ts, Target{s.Name, what, fmt.Sprintf("%d false alarms", s.FalseAlarms), s.FalseAlarms == 0})
		case "cdnet_highway":
			got, met := "no per-pixel truth scored", false
			if s.Pixels != nil {
				got, met = fmt.Sprintf("F = %.3f", s.Pixels.F), s.Pixels.F >= 0.85
			}
			ts = append(ts, Target{s.Name, fmt.Sprintf("pixel F-measure ≥ 0.85 over frames %d–%d", s.ScoredFrom+1, s.ScoredTo+1), got, met})
		}
	}
	return ts
}

// printReport prints the results as a Markdown table, ready for
// BENCHMARKS.md, then each sequence's events and the targets.
func printReport(w io.Writer, rep *Report) {
	s := rep.Settings
	fmt.Fprintf(w, "Motion evaluation of %s with the edge's defaults (%g fps, %d px, min area %g, %d of %d frames, warm-up %g s), no zones, no masks.\n\n",
		rep.Data, s.FPS, s.Width, s.MinArea, s.K, s.N, s.WarmupS)
	fmt.Fprintln(w, "| sequence | frames (analysed) | truth events | events | recall | precision | false alarms | delay to alert | pixel F (P / R) |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, q := range rep.Sequences {
		fmt.Fprintf(w, "| %s | %d (%d) | %d | %d | %s | %s | %d | %s | %s |\n", q.Name, q.Frames, q.Analysed,
			len(q.TruthEvents), len(q.Events), ratio(q.Recall), ratio(q.Precision), q.FalseAlarms, delays(q.DelaysS), pixels(q.Pixels))
	}
	fmt.Fprintln(w)
	for _, q := range rep.Sequences {
		var evs []string
		for _, e := range q.Events {
			tag := ""
			if !e.Truth {
				tag = ", false"
			}
			evs = append(evs, fmt.Sprintf("%d–%d (alert at %d%s)", e.Start, e.End, e.Raised, tag))
		}
		if len(evs) == 0 {
			evs = []string{"none"}
		}
		fmt.Fprintf(w, "- %s: events (frames) %s", q.Name, strings.Join(evs, ", "))
		if q.Note != "" {
			fmt.Fprintf(w, "; %s", q.Note)
		}
		if len(q.Tamper) > 0 {
			fmt.Fprintf(w, "; tamper (not scored): %s", strings.Join(q.Tamper, ", "))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\ntargets:")
	for _, t := range rep.Targets {
		mark := "met   "
		if !t.Met {
			mark = "FAILED"
		}
		fmt.Fprintf(w, "  %s %s: %s (%s)\n", mark, t.Sequence, t.What, t.Got)
	}
}

func ratio(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *p)
}

func delays(ds []float64) string {
	if len(ds) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f s", slices.Max(ds)) // the worst
}

func pixels(p *PixelScore) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.3f (%.2f / %.2f)", p.F, p.Precision, p.Recall)
}
