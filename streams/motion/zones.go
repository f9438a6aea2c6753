package motion

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// Point is a position in normalised picture coordinates: 0..1 from the
// left and from the top, so one drawing fits every stream of the camera
// whatever its resolution.
type Point struct{ X, Y float64 }

// Polygon is a closed outline of at least three points.
type Polygon []Point

// Zone is an area of the picture watched with its own settings. An event
// names the zones its objects touched, so a rule can tell the gate lane
// from the footpath.
type Zone struct {
	Name   string
	Points Polygon
	// MinArea is the smallest object in this zone, as a fraction of the
	// frame (0: the detector's MinArea). A zone far from the camera needs
	// a smaller one than the lane in front of it.
	MinArea float64
	// Sensitivity 0..1 sets how different from a moment ago a pixel must
	// look to count as moving here (0: DefaultSensitivity): at 1 any change
	// beyond the reach of its neighbours counts, at 0.5 one of 20 grey
	// levels, near 0 one of 40. Lower it where glare or flicker is common.
	Sensitivity float64
}

// AllZone names the single zone used when none is configured.
const AllZone = "all"

// DefaultSensitivity is a zone's sensitivity when none is set.
const DefaultSensitivity = 0.5

// MaxZones is how many zones a camera may have (a pixel's zones are one
// 64-bit set).
const MaxZones = 64

// ValidateZones reports the first impossible zone, naming it by index and
// field ("zones[1].points: ...").
func ValidateZones(zones []Zone) error {
	if len(zones) > MaxZones {
		return fmt.Errorf("zones: at most %d zones", MaxZones)
	}
	names := map[string]bool{}
	for i, z := range zones {
		f := fmt.Sprintf("zones[%d]", i)
		switch {
		case z.Name == "":
			return fmt.Errorf("%s.name: is required", f)
		case names[z.Name]:
			return fmt.Errorf("%s.name: %q is used twice", f, z.Name)
		case z.MinArea < 0 || z.MinArea >= 1:
			return fmt.Errorf("%s.min_area: must be a fraction of the frame between 0 and 1", f)
		case z.Sensitivity < 0 || z.Sensitivity > 1:
			return fmt.Errorf("%s.sensitivity: must be between 0 and 1", f)
		}
		names[z.Name] = true
		if err := z.Points.Validate(); err != nil {
			return fmt.Errorf("%s.points: %w", f, err)
		}
	}
	return nil
}

// ValidateMasks reports the first impossible mask ("masks[0]: ...").
func ValidateMasks(masks []Polygon) error {
	for i, m := range masks {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("masks[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks that the polygon has at least three points, all inside
// the picture, and encloses some area.
func (p Polygon) Validate() error {
	if len(p) < 3 {
		return fmt.Errorf("needs at least 3 points, has %d", len(p))
	}
	for i, pt := range p {
		if math.IsNaN(pt.X) || math.IsNaN(pt.Y) || pt.X < 0 || pt.X > 1 || pt.Y < 0 || pt.Y > 1 {
			return fmt.Errorf("point %d (%g, %g) is outside the picture (0..1)", i, pt.X, pt.Y)
		}
	}
	if p.area() == 0 {
		return fmt.Errorf("encloses no area")
	}
	return nil
}

// area is the polygon's area in normalised units (shoelace formula).
func (p Polygon) area() float64 {
	var a float64
	for i := range p {
		j := (i + 1) % len(p)
		a += p[i].X*p[j].Y - p[j].X*p[i].Y
	}
	return math.Abs(a) / 2
}

// pixels scales the polygon to a w×h frame: 0 is the first pixel's
// centre and 1 the last one's.
func (p Polygon) pixels(w, h int) []image.Point {
	pts := make([]image.Point, len(p))
	for i, pt := range p {
		pts[i] = image.Pt(int(math.Round(pt.X*float64(w-1))), int(math.Round(pt.Y*float64(h-1))))
	}
	return pts
}

// rasters are the zones and masks drawn at one frame size: drawn once per
// size, not per frame.
type rasters struct {
	w, h int
	// watch is 255 where motion counts: inside a zone, outside every mask.
	watch gocv.Mat
	// zoneOf holds, per pixel, bit i set if zone i contains it.
	zoneOf []uint64
	// watched is the number of pixels set in watch.
	watched int
}

func newRasters(zones []Zone, masks []Polygon, w, h int) *rasters {
	r := &rasters{w: w, h: h, zoneOf: make([]uint64, w*h)}
	r.watch = gocv.Zeros(h, w, gocv.MatTypeCV8U)
	one := gocv.Zeros(h, w, gocv.MatTypeCV8U)
	defer one.Close()
	for i, z := range zones {
		one.SetTo(gocv.NewScalar(0, 0, 0, 0))
		fillPolygon(&one, z.Points, w, h)
		gocv.BitwiseOr(r.watch, one, &r.watch)
		for p, v := range one.ToBytes() {
			if v != 0 {
				r.zoneOf[p] |= 1 << i
			}
		}
	}
	if len(masks) > 0 {
		one.SetTo(gocv.NewScalar(0, 0, 0, 0))
		for _, m := range masks {
			fillPolygon(&one, m, w, h)
		}
		gocv.BitwiseNot(one, &one)
		gocv.BitwiseAnd(r.watch, one, &r.watch)
	}
	r.watched = gocv.CountNonZero(r.watch)
	return r
}

func fillPolygon(dst *gocv.Mat, p Polygon, w, h int) {
	pv := gocv.NewPointsVectorFromPoints([][]image.Point{p.pixels(w, h)})
	defer pv.Close()
	gocv.FillPoly(dst, pv, color.RGBA{255, 255, 255, 0})
}

func (r *rasters) close() { r.watch.Close() }

// box is the pixel rectangle rect as fractions of the picture.
func (r *rasters) box(rect image.Rectangle) Box {
	w, h := float64(r.w), float64(r.h)
	return Box{X: float64(rect.Min.X) / w, Y: float64(rect.Min.Y) / h, W: float64(rect.Dx()) / w, H: float64(rect.Dy()) / h}
}
