package setup

import (
	"fmt"
	"math"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
)

// The page's tripwires and loitering areas and a camera's lines: and
// dwell: in edge.yaml, both ways.

// PerimeterOf is camera cc's lines and loitering areas as the page draws
// them.
func PerimeterOf(cc conf.CameraConfig) Perimeter {
	p := Perimeter{Lines: []Line{}, Dwell: []Dwell{}}
	for _, l := range cc.Lines {
		dir := l.Direction
		if dir == "" {
			dir = "both"
		}
		p.Lines = append(p.Lines, Line{Name: l.Name, Points: pointsOf(l.Points), Direction: dir})
	}
	for _, d := range cc.Dwell {
		dw := Dwell{Name: d.Name, Line: d.Line, Reach: d.Reach, AfterS: d.After.D().Seconds()}
		if len(d.Region) > 0 {
			dw.Region = pointsOf(d.Region)
		}
		p.Dwell = append(p.Dwell, dw)
	}
	return p
}

// ApplyPerimeter sets camera camID's lines and loitering areas in c to
// the drawn ones (replacing those it had). Drawn ones the perimeter
// watcher would refuse are a *RefusedError naming each field
// ("lines[0].direction"), and c is left as it was. A Perimeter with
// neither lines nor dwell set (nil, not empty: a client that does not
// draw them) keeps the camera's own.
func ApplyPerimeter(c *conf.Config, camID string, p Perimeter) error {
	if p.Lines == nil && p.Dwell == nil {
		for _, cc := range c.Cameras {
			if cc.ID == camID {
				return nil
			}
		}
		return fmt.Errorf("no camera %q on this box", camID)
	}
	cfg, probs := PerimeterConfig(p)
	if len(probs) > 0 {
		return Refused(probs)
	}
	for i := range c.Cameras {
		if c.Cameras[i].ID != camID {
			continue
		}
		var lines []conf.LineConfig
		for j, l := range cfg.Lines {
			lines = append(lines, conf.LineConfig{Name: l.Name, Points: polygonOf(p.Lines[j].Points), Direction: string(l.Direction)})
		}
		var dwell []conf.DwellConfig
		for j, d := range cfg.Dwells {
			dc := conf.DwellConfig{Name: d.Name, Line: d.Line, Reach: d.Reach, After: config.Duration(roundSecond(p.Dwell[j].AfterS))}
			if len(p.Dwell[j].Region) > 0 {
				dc.Region = polygonOf(p.Dwell[j].Region)
			}
			dwell = append(dwell, dc)
		}
		c.Cameras[i].Lines, c.Cameras[i].Dwell = lines, dwell
		return nil
	}
	return fmt.Errorf("no camera %q on this box", camID)
}

// roundSecond is s seconds to the tenth of a second (edge.yaml shows
// "20s", not "20.000000001s").
func roundSecond(s float64) time.Duration {
	return time.Duration(math.Round(s*10)) * time.Second / 10
}

// pointsOf is a config polygon or line as the page's pairs (points with
// fewer than two coordinates are left out: validation names them).
func pointsOf(p conf.Polygon) [][2]float64 {
	out := [][2]float64{}
	for _, pt := range p {
		if len(pt) >= 2 {
			out = append(out, [2]float64{pt[0], pt[1]})
		}
	}
	return out
}
