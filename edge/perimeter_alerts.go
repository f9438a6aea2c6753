package edge

import (
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
	"github.com/vigil-perimeter/vigil/wire"
)

// Perimeter alerts (issue #20): a camera's tripwires and dwell regions
// (edge.yaml lines: and dwell:, streams/perimeter) raise
// perimeter.crossing and perimeter.loiter alerts (camevents.go,
// OnPerimeter). Unlike motion they are not folded into incidents: each
// crossing is an alert of its own, however soon after another.

// maxLoiterPin bounds how far before a loiter alert its pinned video
// starts: from the object's entry, but no more than this before the
// alert (a dwell time of an hour does not pin an hour of video).
const maxLoiterPin = 5 * time.Minute

// perimeterSummary is a perimeter event in English for the alert's
// summary: "Crossed east wall inward at North gate", "Lingering 20 s at
// gate apron (North gate)". name is the camera's display name.
func perimeterSummary(ev camera.PerimeterEvent, name string) string {
	if ev.Kind == camera.PerimeterLoiter {
		if ev.Since.IsZero() || !ev.Time.After(ev.Since) {
			return fmt.Sprintf("Lingering at %s (%s)", ev.Name, name)
		}
		return fmt.Sprintf("Lingering %s at %s (%s)", lingered(ev.Time.Sub(ev.Since)), ev.Name, name)
	}
	switch ev.Direction {
	case perimeter.In:
		return fmt.Sprintf("Crossed %s inward at %s", ev.Name, name)
	case perimeter.Out:
		return fmt.Sprintf("Crossed %s outward at %s", ev.Name, name)
	}
	return fmt.Sprintf("Crossed %s at %s", ev.Name, name)
}

// lingered is a stay in words: "20 s", "3 min 5 s".
func lingered(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 120 {
		return fmt.Sprintf("%d s", s)
	}
	if s%60 == 0 {
		return fmt.Sprintf("%d min", s/60)
	}
	return fmt.Sprintf("%d min %d s", s/60, s%60)
}

// wireDirection is a crossing's way as an alert carries it: "in", "out",
// or "" (anything else would make the alert invalid).
func wireDirection(d perimeter.Direction) string {
	if d == perimeter.In || d == perimeter.Out {
		return string(d)
	}
	return ""
}

// wirePath is an object's path as an alert carries it: its latest
// wire.MaxPath points, each held inside the picture (a track coasting
// past the edge of the picture is predicted beyond it).
func wirePath(path []motion.Point) []wire.Point {
	if len(path) > wire.MaxPath {
		path = path[len(path)-wire.MaxPath:]
	}
	if len(path) == 0 {
		return nil
	}
	out := make([]wire.Point, len(path))
	for i, p := range path {
		out[i] = wire.Point{X: clamp01(p.X), Y: clamp01(p.Y)}
	}
	return out
}

// clamp01 is v held inside 0..1 (NaN becomes 0).
func clamp01(v float64) float64 {
	if !(v > 0) {
		return 0
	}
	return min(v, 1)
}

// loiterPinFrom is where a loiter alert's pinned video starts: the
// object's entry, at most maxLoiterPin before the alert; zero without an
// entry time (the alert's own window is pinned then).
func loiterPinFrom(since, at time.Time) time.Time {
	if since.IsZero() || !since.Before(at) {
		return time.Time{}
	}
	return maxTime(since, at.Add(-maxLoiterPin))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// raiseSpan raises an alert whose video runs from the pre-roll before
// j.pinFrom to the post-roll after j.pinAt (a loiter: the object's
// arrival and its stay), links that range and pins it once the alert is
// stored. When the camera's window is unknown it falls back to the
// alert's own window.
func (o *alertOwner) raiseSpan(j alertJob) {
	a := j.a
	from, _, err := o.clips.PinWindow(j.pinCam, j.pinFrom)
	atFrom, to, err2 := o.clips.PinWindow(j.pinCam, j.pinAt)
	if err != nil || err2 != nil {
		a.Links = o.links([]string{j.pinCam}, j.pinAt)
		if o.raise(a) {
			o.pin(a, j.pinCam, j.pinAt)
		}
		return
	}
	if atFrom.Before(from) {
		from = atFrom
	}
	a.Links = []wire.Link{{Camera: j.pinCam, ClipFrom: from.UTC(), ClipTo: to.UTC()}}
	if !o.raise(a) {
		return
	}
	if _, err := o.clips.PinRange(a.ID, j.pinCam, from, to, a.Kind); err != nil {
		o.log.Warn("video for alert not pinned", "alert", a.ID, "camera", j.pinCam, "err", err)
	}
}
