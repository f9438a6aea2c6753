package footage

import (
	"context"
	"fmt"
	"time"
)

// CrossingClip describes a clip for tripwire tests (issue #20): the still,
// real background of a BurstsClip (the first frame of vtest.avi with
// camera-like sensor noise), across which a person-sized textured object
// walks straight down the picture, from just above it to just below it,
// then — after a pause out of sight — straight back up. Its position is
// whole pixels on every frame, so the frame on which its bottom centre
// (where a tracker anchors an object: its feet) passes the middle of the
// picture is known exactly (CrossFrame).
type CrossingClip struct {
	Seconds float64
	FPS     int
	Width   int
	Height  int
	// Down and Up are the frames on which the walks start: on Down the
	// object's bottom edge is at the top of the picture (it is wholly
	// above it), on Up its top edge is at the bottom of the picture.
	Down, Up int
	// Step is how far the object moves each frame, in pixels (even).
	Step int
}

// DefaultCrossing is the clip the end-to-end tripwire test uses: 640×360
// at 10 fps, 10 s of stillness (an edge joining the stream late still
// learns the background), a walk down from 10 s, a walk back up from
// 18 s at 80 px/s, each 5.7 s long, and stillness to the end at 30 s.
func DefaultCrossing() CrossingClip {
	return CrossingClip{Seconds: 30, FPS: 10, Width: 640, Height: 360, Down: 100, Up: 180, Step: 8}
}

// ObjectSize is the walking object's width and height in pixels: about a
// person at this distance, W/13 by H/4, each even.
func (c CrossingClip) ObjectSize() (w, h int) {
	return c.Width / 26 * 2, c.Height / 8 * 2
}

// ObjectX is the object's left edge in pixels: its centre is on the
// picture's vertical middle line (to within a pixel).
func (c CrossingClip) ObjectX() int {
	w, _ := c.ObjectSize()
	return (c.Width - w) / 4 * 2
}

// Walk is how many frames each walk lasts: from Down (or Up) until the
// object is wholly out of the picture again.
func (c CrossingClip) Walk() int {
	_, h := c.ObjectSize()
	return (c.Height+h+c.Step-1)/c.Step + 1
}

// Top is the object's top edge (pixels from the top of the picture; it
// may be outside it) on frame n, and whether the object is in the picture
// at all on that frame.
func (c CrossingClip) Top(n int) (int, bool) {
	_, h := c.ObjectSize()
	var top int
	switch {
	case n >= c.Down && n < c.Down+c.Walk():
		top = -h + (n-c.Down)*c.Step
	case n >= c.Up && n < c.Up+c.Walk():
		top = c.Height - (n-c.Up)*c.Step
	default:
		return 0, false
	}
	return top, top < c.Height && top+h > 0
}

// CrossFrame is the first frame of the walk down (down) or up on which
// the object's bottom centre is past the picture's middle line y = H/2:
// below it walking down, above it walking up. The object's bottom edge is
// never on the line itself (Validate).
func (c CrossingClip) CrossFrame(down bool) int {
	_, h := c.ObjectSize()
	from := c.Up
	if down {
		from = c.Down
	}
	for n := from; n < from+c.Walk(); n++ {
		top, _ := c.Top(n)
		bottom := top + h
		if (down && 2*bottom > c.Height) || (!down && 2*bottom < c.Height) {
			return n
		}
	}
	return -1
}

// FrameTime is frame n's presentation time in the clip.
func (c CrossingClip) FrameTime(n int) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(c.FPS)
}

// CrossPTS is CrossFrame's presentation time in the clip.
func (c CrossingClip) CrossPTS(down bool) time.Duration {
	return c.FrameTime(c.CrossFrame(down))
}

// Validate reports a spec whose truth would not be exact: odd sizes or
// steps (4:2:0 chroma puts an overlay on even rows only), walks that
// overlap or run past the clip, a bottom edge that lands on the middle
// line.
func (c CrossingClip) Validate() error {
	w, h := c.ObjectSize()
	total := int(c.Seconds * float64(c.FPS))
	switch {
	case c.FPS <= 0 || c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0 || w <= 0 || h <= 0:
		return fmt.Errorf("footage: crossing clip %dx%d at %d fps: sizes must be positive and even", c.Width, c.Height, c.FPS)
	case c.Step <= 0 || c.Step%2 != 0:
		return fmt.Errorf("footage: crossing clip step %d: must be positive and even", c.Step)
	case c.Down < 0 || c.Down+c.Walk() > c.Up || c.Up+c.Walk() > total:
		return fmt.Errorf("footage: crossing clip walks at frames %d and %d of %d frames overlap or run past its end (each lasts %d frames)", c.Down, c.Up, total, c.Walk())
	}
	for n := range total {
		if top, in := c.Top(n); in && 2*(top+h) == c.Height {
			return fmt.Errorf("footage: crossing clip: on frame %d the object's bottom edge is on the middle line", n)
		}
	}
	return nil
}

// Make builds the clip (H.264 like an IP camera: CameraX264 with a 2 s
// GOP) and returns its path.
func (c CrossingClip) Make(ctx context.Context, cache Cache) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	src, err := sample("vtest.avi")
	if err != nil {
		return "", err
	}
	w, h := c.ObjectSize()
	// Top in ffmpeg's words, whole pixels on every frame; the frame
	// number is round(t*FPS) (overlay's own n counts from 1 in some
	// versions of ffmpeg). Outside the walks the object is parked above
	// the picture.
	n := fmt.Sprintf("round(t*%d)", c.FPS)
	y := fmt.Sprintf("if(between(%[1]s,%[2]d,%[3]d),-%[4]d+(%[1]s-%[2]d)*%[5]d,if(between(%[1]s,%[6]d,%[7]d),%[8]d-(%[1]s-%[6]d)*%[5]d,-%[9]d))",
		n, c.Down, c.Down+c.Walk()-1, h, c.Step,
		c.Up, c.Up+c.Walk()-1, c.Height, 2*h)
	filter := fmt.Sprintf(
		"[0:v]trim=end_frame=1,scale=%d:%d:force_original_aspect_ratio=increase,crop=%d:%d,"+
			"loop=loop=-1:size=1,fps=%d,trim=duration=%g,setpts=round(N/%d/TB),split[bg][src];"+
			"[src]crop=%d:%d:iw/2:ih/4,negate[obj];"+
			"[bg][obj]overlay=x=%d:y='%s':eval=frame,noise=alls=3:allf=t",
		c.Width, c.Height, c.Width, c.Height, c.FPS, c.Seconds, c.FPS,
		w, h, c.ObjectX(), y)
	args := []string{"-i", src, "-filter_complex", filter, "-an", "-r", fmt.Sprint(c.FPS)}
	args = append(args, CameraX264(2*c.FPS)...)
	return cache.Make(ctx, fmt.Sprintf("crossing-%dx%d", c.Width, c.Height), args)
}
