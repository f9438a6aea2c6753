package setup

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// Tripwires and loitering areas as the page draws them (issue #20), and
// the live preview of the tracks and crossings they give
// (streams/perimeter).

// Line is a drawn tripwire: two or more normalised points. Walking it
// from its first point to its last, "in" is a crossing from the
// left-hand side to the right-hand side of the picture (the side the
// page's arrow points to), "out" the reverse; "both" counts either.
type Line struct {
	Name      string       `json:"name"`
	Points    [][2]float64 `json:"points"`
	Direction string       `json:"direction"`
}

// Dwell is a drawn loitering area: a polygon (Region), or the band within
// Reach of a drawn line (Line); someone staying in it for AfterS seconds
// raises an alert.
type Dwell struct {
	Name   string       `json:"name"`
	Region [][2]float64 `json:"region,omitempty"`
	Line   string       `json:"line,omitempty"`
	Reach  float64      `json:"reach,omitempty"`
	AfterS float64      `json:"after_s"`
}

// Perimeter is a camera's drawn lines and loitering areas.
type Perimeter struct {
	Lines []Line  `json:"lines"`
	Dwell []Dwell `json:"dwell"`
}

// DefaultReach is how far (normalised) from its line a loitering area
// drawn "near a line" reaches when the page gives no reach (edge.yaml's
// default).
const DefaultReach = conf.DefaultReach

// PerimeterConfig is the drawn lines and areas as the perimeter watcher
// takes them, or the problems that keep it from taking them, each naming
// its field ("lines[0].direction"). A line without a name is named by its
// place ("line-1"), an area likewise ("dwell-1").
func PerimeterConfig(p Perimeter) (perimeter.Config, []Problem) {
	var cfg perimeter.Config
	for i, l := range p.Lines {
		name := strings.TrimSpace(l.Name)
		if name == "" {
			name = fmt.Sprintf("line-%d", i+1)
		}
		dir := perimeter.Direction(strings.TrimSpace(l.Direction))
		if dir == "" {
			dir = perimeter.Both
		}
		cfg.Lines = append(cfg.Lines, perimeter.Line{Name: name, Points: polygon(l.Points), Direction: dir})
	}
	var probs []Problem
	for i, d := range p.Dwell {
		name := strings.TrimSpace(d.Name)
		if name == "" {
			name = fmt.Sprintf("dwell-%d", i+1)
		}
		if math.IsNaN(d.AfterS) || d.AfterS < 1 || d.AfterS > 24*3600 {
			probs = append(probs, Problem{Field: fmt.Sprintf("dwell[%d].after", i), Msg: fmt.Sprintf("%v seconds is outside 1..86400", d.AfterS)})
		}
		pd := perimeter.Dwell{Name: name, Line: strings.TrimSpace(d.Line), Reach: d.Reach, After: time.Duration(d.AfterS * float64(time.Second))}
		if len(d.Region) > 0 {
			pd.Region = polygon(d.Region)
		}
		switch {
		case pd.Line == "":
			pd.Reach = 0 // a region has no reach
		case pd.Reach == 0:
			pd.Reach = DefaultReach
		}
		cfg.Dwells = append(cfg.Dwells, pd)
	}
	if err := cfg.Validate(); err != nil {
		said := map[string]bool{}
		for _, p := range probs {
			said[p.Field] = true
		}
		for _, e := range leafErrors(err) {
			if p := problemOf(e); !said[p.Field] { // an area's time is said in seconds above
				probs = append(probs, p)
			}
		}
	}
	return cfg, probs
}

// leafErrors are the errors joined in err (errors.Join, nested).
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// problemOf splits a perimeter validation error ("lines[0].points: ...")
// into its field and message.
func problemOf(err error) Problem {
	msg := err.Error()
	if f, m, ok := strings.Cut(msg, ": "); ok && !strings.Contains(f, " ") {
		return Problem{Field: f, Msg: m}
	}
	return Problem{Field: "perimeter", Msg: msg}
}

// problemsText is problems as one line for an error answer.
func problemsText(probs []Problem) string {
	parts := make([]string, len(probs))
	for i, p := range probs {
		parts[i] = p.Field + ": " + p.Msg
	}
	return strings.Join(parts, "; ")
}

// PerimeterPreview is what the page draws over the live picture: the
// tracks the watcher follows now, and the crossings and loiterings of
// the last CrossingsShown, all in normalised coordinates.
type PerimeterPreview struct {
	Width     int             `json:"width,omitempty"` // the analysed picture's size, when known
	Height    int             `json:"height,omitempty"`
	At        time.Time       `json:"at"`
	Tracks    []PreviewTrack  `json:"tracks"`
	Crossings []PreviewCross  `json:"crossings"`
	Loiters   []PreviewLoiter `json:"loiters"`
}

// PreviewTrack is a followed object: its box (x, y, w, h) and its recent
// path of anchors (bottom centre of the box), oldest first.
type PreviewTrack struct {
	ID   uint64       `json:"id"`
	Box  [4]float64   `json:"box"`
	Path [][2]float64 `json:"path"`
	Seen bool         `json:"seen"`
}

// PreviewCross is a crossing: which line, which way ("in", "out"), by
// which track, when.
type PreviewCross struct {
	Line      string    `json:"line"`
	Direction string    `json:"direction"`
	Track     uint64    `json:"track"`
	At        time.Time `json:"at"`
}

// PreviewLoiter is a track that stayed in a loitering area its time.
type PreviewLoiter struct {
	Dwell string    `json:"dwell"`
	Track uint64    `json:"track"`
	Since time.Time `json:"since"`
	At    time.Time `json:"at"`
}

// CrossingsShown is how long a crossing or loitering stays in the preview.
const CrossingsShown = 10 * time.Second

// PerimeterPreviewOf is the watcher's state at at (picture w×h) as the
// page takes it: crossings and loiterings older than CrossingsShown are
// left out.
func PerimeterPreviewOf(w, h int, at time.Time, tracks []perimeter.Track, crossings []perimeter.Crossing, loiters []perimeter.Loiter) PerimeterPreview {
	p := PerimeterPreview{Width: w, Height: h, At: at, Tracks: []PreviewTrack{}, Crossings: []PreviewCross{}, Loiters: []PreviewLoiter{}}
	for _, t := range tracks {
		p.Tracks = append(p.Tracks, PreviewTrack{ID: t.ID, Box: [4]float64{t.Box.X, t.Box.Y, t.Box.W, t.Box.H}, Path: pairs(t.Path), Seen: t.Seen})
	}
	recent := func(t time.Time) bool { return at.IsZero() || at.Sub(t) <= CrossingsShown }
	for _, c := range crossings {
		if recent(c.At) {
			p.Crossings = append(p.Crossings, PreviewCross{Line: c.Line, Direction: string(c.Direction), Track: c.Track, At: c.At})
		}
	}
	for _, l := range loiters {
		if recent(l.At) {
			p.Loiters = append(p.Loiters, PreviewLoiter{Dwell: l.Dwell, Track: l.Track, Since: l.Since, At: l.At})
		}
	}
	return p
}

// pairs is pts as [x, y] pairs.
func pairs(pts []motion.Point) [][2]float64 {
	out := make([][2]float64, 0, len(pts))
	for _, p := range pts {
		out = append(out, [2]float64{p.X, p.Y})
	}
	return out
}

// perimeterPreview is GET /setup/api/perimeter?camera=ID&draft={"lines":…,"dwell":…}:
// the tracks the camera's perimeter watcher follows with the draft lines
// and loitering areas, and their crossings of the last CrossingsShown
// (JSON, PerimeterPreview). Read-only, like the motion preview.
func (s *steps) perimeterPreview(w http.ResponseWriter, r *http.Request) {
	var d Perimeter
	if q := r.URL.Query().Get("draft"); q != "" {
		if len(q) > 32<<10 {
			writeError(w, http.StatusRequestEntityTooLarge, "too many points")
			return
		}
		if err := json.Unmarshal([]byte(q), &d); err != nil {
			writeError(w, http.StatusBadRequest, "draft: "+err.Error())
			return
		}
	}
	if _, probs := PerimeterConfig(d); len(probs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": problemsText(probs), "problems": probs})
		return
	}
	p, err := s.backend.SetupPerimeterPreview(r.Context(), r.URL.Query().Get("camera"), d.Lines, d.Dwell)
	if errors.Is(err, ErrNoPerimeterPreview) {
		writeError(w, http.StatusNotImplemented, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// ErrNoPerimeterPreview: the camera cannot show tracks and crossings.
var ErrNoPerimeterPreview = errors.New("this camera has no perimeter preview")

// perimeterYAML is valid drawn lines and areas as the camera's lines:
// and dwell: in edge.yaml (names as PerimeterConfig gives them).
func perimeterYAML(p Perimeter) string {
	cfg, _ := PerimeterConfig(p)
	var b strings.Builder
	if len(cfg.Lines) > 0 {
		b.WriteString("    lines:\n")
	}
	for i, l := range cfg.Lines {
		fmt.Fprintf(&b, "      - name: %q\n        points: %s\n        direction: %s\n", l.Name, points(p.Lines[i].Points), l.Direction)
	}
	if len(cfg.Dwells) > 0 {
		b.WriteString("    dwell:\n")
	}
	for i, d := range cfg.Dwells {
		fmt.Fprintf(&b, "      - name: %q\n", d.Name)
		if d.Line != "" {
			fmt.Fprintf(&b, "        line: %q\n        reach: %g\n", d.Line, d.Reach)
		} else {
			fmt.Fprintf(&b, "        region: %s\n", points(p.Dwell[i].Region))
		}
		fmt.Fprintf(&b, "        after: %s\n", d.After)
	}
	return b.String()
}
