package camera

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// SetMotion changes the camera's motion settings (zones, masks, sizes,
// sensitivity) while it runs: the analyser goroutine picks them up before
// its next frame, keeping the learned scene (motion.Detector.Reconfigure).
// It never blocks; a config the detector would refuse is refused here and
// changes nothing.
func (c *Camera) SetMotion(m motion.Config) error {
	if err := m.Defaults().Validate(); err != nil {
		return fmt.Errorf("camera %s: %w", c.cfg.ID, err)
	}
	c.mu.Lock()
	c.motionNext = &m
	c.mu.Unlock()
	select {
	case c.reconf <- struct{}{}:
	default: // already signalled: it will take the newest
	}
	return nil
}

// SetPerimeter changes the camera's lines and dwell regions while it
// runs: the analyser goroutine picks them up before its next frame, with
// its objects' tracks started over. It never blocks; a config the
// perimeter package would refuse is refused here and changes nothing. An
// Empty config switches perimeter analysis off.
func (c *Camera) SetPerimeter(p perimeter.Config) error {
	if err := p.Defaults().Validate(); err != nil {
		return fmt.Errorf("camera %s: perimeter: %w", c.cfg.ID, err)
	}
	c.mu.Lock()
	c.perimeterNext = &p
	c.mu.Unlock()
	select {
	case c.reconf <- struct{}{}:
	default: // already signalled: it will take the newest
	}
	return nil
}

// PerimeterConfig is the perimeter config the analyser runs now (as
// given, before defaults).
func (c *Camera) PerimeterConfig() perimeter.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Perimeter
}

// applyReconfig runs on the analyser goroutine: whatever was set since
// the last signal.
func (w *analysis) applyReconfig() {
	w.applyMotion()
	w.applyPerimeter()
}

// applyPerimeter runs on the analyser goroutine.
func (w *analysis) applyPerimeter() {
	c := w.c
	c.mu.Lock()
	next := c.perimeterNext
	c.perimeterNext = nil
	c.mu.Unlock()
	if next == nil {
		return
	}
	if err := w.an.SetPerimeter(*next); err != nil {
		c.log.Error("perimeter settings not applied", "err", err)
		return
	}
	c.mu.Lock()
	c.cfg.Perimeter = *next
	c.mu.Unlock()
	c.log.Info("perimeter settings applied live", "lines", len(next.Lines), "dwell", len(next.Dwells))
}

// applyMotion runs on the analyser goroutine.
func (w *analysis) applyMotion() {
	c := w.c
	c.mu.Lock()
	next := c.motionNext
	c.motionNext = nil
	c.mu.Unlock()
	if next == nil {
		return
	}
	if err := w.an.SetMotion(*next); err != nil {
		c.log.Error("motion settings not applied", "err", err)
		return
	}
	c.mu.Lock()
	c.cfg.Motion = *next
	c.mu.Unlock()
	c.log.Info("motion settings applied live", "zones", len(next.Zones), "masks", len(next.Masks))
}

// SetMotion reconfigures the analyzer's motion detector in place.
func (a *Analyzer) SetMotion(m motion.Config) error {
	if err := a.det.Reconfigure(m); err != nil {
		return err
	}
	a.cfg.Motion = m
	return nil
}

type previewRequest struct {
	zones []motion.Zone
	masks []motion.Polygon
	reply chan previewReply
}

type previewReply struct {
	p   motion.Preview
	at  time.Time
	err error
}

// MotionPreview is the motion detector's foreground on the latest
// analysed frame (analysis size) with zones and masks in place of the
// configured ones: what the detector would see with an installer's draft
// zones. Asked of the analyser goroutine, the detector's only owner.
func (c *Camera) MotionPreview(ctx context.Context, zones []motion.Zone, masks []motion.Polygon) (motion.Preview, time.Time, error) {
	req := previewRequest{zones: zones, masks: masks, reply: make(chan previewReply, 1)}
	select {
	case c.previews <- req:
	case <-ctx.Done():
		return motion.Preview{}, time.Time{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.p, r.at, r.err
	case <-ctx.Done():
		return motion.Preview{}, time.Time{}, ctx.Err()
	}
}

// MotionConfig is the motion config the analyser runs now (as given, before
// defaults).
func (c *Camera) MotionConfig() motion.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Motion
}
