package motion

import (
	"errors"
	"fmt"

	"gocv.io/x/gocv"
)

// Reconfigure changes a running detector's settings: zones, masks,
// sizes, sensitivity, persistence and timing take effect on the next
// frame without relearning the scene; only a new History or VarThreshold
// starts a new background model (and its warm-up). Objects being tracked
// are forgotten (their zones may no longer exist); an open event stays
// open until it ends as usual. A bad config changes nothing.
func (d *Detector) Reconfigure(cfg Config) error {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("motion: %w", err)
	}
	relearn := cfg.History != d.cfg.History || cfg.VarThreshold != d.cfg.VarThreshold
	d.cfg = cfg
	d.trk.n = cfg.N
	d.trk.reset()
	d.openZones = 0
	if d.ras != nil {
		w, h := d.ras.w, d.ras.h
		d.ras.close()
		d.ras = newRasters(cfg.Zones, cfg.Masks, w, h)
	}
	if relearn {
		d.relearn()
	}
	return nil
}

// ErrNoFrame: the detector has not analysed a frame yet.
var ErrNoFrame = errors.New("motion: no frame analysed yet")

// Preview is the foreground of the last analysed frame as it would be
// with other zones and masks (an installer's drafts, before saving).
type Preview struct {
	W, H int
	// Fore is 255 where the frame differs from the learned scene inside
	// the zones and outside the masks, row by row (W*H bytes).
	Fore []byte
	// Watch is 255 where motion would count (inside a zone, outside
	// every mask).
	Watch []byte
}

// Preview returns the last frame's foreground with zones and masks in
// place of the configured ones (nil zones: the whole picture). It asks
// the detector to keep the unmasked foreground of the next frames, so a
// preview polled a few times a second shows the drafts exactly; the very
// first one is limited to the configured zones.
func (d *Detector) Preview(zones []Zone, masks []Polygon) (Preview, error) {
	if err := ValidateZones(zones); err != nil {
		return Preview{}, err
	}
	if err := ValidateMasks(masks); err != nil {
		return Preview{}, err
	}
	if d.ras == nil || d.fg.Empty() {
		return Preview{}, ErrNoFrame
	}
	d.keepRaw = 25 // ~5 s at 5 fps: stays on while the page polls
	c := Config{Zones: zones, MinArea: d.cfg.MinArea}.Defaults()
	w, h := d.ras.w, d.ras.h
	ras := newRasters(c.Zones, masks, w, h)
	defer ras.close()
	src := d.fg
	if d.rawAt.Equal(d.lastFrame) && !d.raw.Empty() && d.raw.Cols() == w && d.raw.Rows() == h {
		src = d.raw
	}
	fg := gocv.NewMat()
	defer fg.Close()
	gocv.BitwiseAnd(src, ras.watch, &fg)
	return Preview{W: w, H: h, Fore: fg.ToBytes(), Watch: ras.watch.ToBytes()}, nil
}
