package camera

import (
	"context"
	"fmt"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/rtsp"
)

// gapReset is how long a hole in the video must be before the background
// model is thrown away: after such a gap the scene may have changed.
const gapReset = 5 * time.Second

// analyse owns the decoder and the detector. Decoding and analysing in one
// goroutine keeps the picture an event fires on in hand for its snapshot,
// with no copy of every frame.
func (c *Camera) analyse(ctx context.Context) error {
	det, err := motion.New(c.cfg.Motion)
	if err != nil {
		return err
	}
	defer det.Close()
	p := &pipeline{cam: c, det: det, every: time.Duration(float64(time.Second) / c.cfg.AnalysisFPS)}
	defer p.closeDecoder()
	errLog := time.NewTicker(5 * time.Second)
	defer errLog.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case au := <-c.queue:
			p.handle(au)
		case <-errLog.C:
			p.reportErrors()
		}
	}
}

type pipeline struct {
	cam      *Camera
	det      *motion.Detector
	dec      *av.Decoder
	codec    av.Codec
	every    time.Duration
	next     time.Time // when the next frame is due for analysis
	last     time.Time // time of the last decoded picture
	gray     []byte
	waitKey  bool
	errCount int
	lastErr  error
}

func (p *pipeline) closeDecoder() {
	if p.dec != nil {
		p.dec.Close()
		p.dec = nil
	}
}

func (p *pipeline) handle(au rtsp.AccessUnit) {
	c := p.cam
	c.mu.Lock()
	if c.resync {
		c.resync, p.waitKey = false, true
	}
	c.mu.Unlock()
	if p.waitKey && !au.Key {
		return
	}
	p.waitKey = false
	if p.dec == nil || p.codec != au.Codec {
		p.closeDecoder()
		dec, err := av.NewDecoder(au.Codec)
		if err != nil {
			p.fail(err)
			return
		}
		p.dec, p.codec = dec, au.Codec
	}
	ok, err := p.dec.Decode(au.NALUs)
	if err != nil {
		p.fail(err)
		return
	}
	if !ok {
		return
	}
	if !p.last.IsZero() && (au.Time.Sub(p.last) > gapReset || au.Time.Before(p.last.Add(-gapReset))) {
		// The camera was away (or its clock jumped): relearn the scene.
		p.det.Reset()
		p.next = time.Time{}
	}
	p.last = au.Time
	if au.Time.Before(p.next) {
		return
	}
	if p.next.IsZero() || au.Time.Sub(p.next) > p.every {
		p.next = au.Time
	}
	p.next = p.next.Add(p.every)
	p.analyseFrame(au)
}

func (p *pipeline) analyseFrame(au rtsp.AccessUnit) {
	c := p.cam
	buf, w, h, err := p.dec.Gray(c.cfg.AnalysisWidth, p.gray)
	if err != nil {
		p.fail(err)
		return
	}
	p.gray = buf
	mat, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, buf[:w*h])
	if err != nil {
		p.fail(fmt.Errorf("wrapping frame: %w", err))
		return
	}
	res := p.det.Process(mat, au.Time)
	mat.Close()
	c.metrics.Analysed.WithLabelValues(c.cfg.ID).Inc()
	if res.Started == nil || c.parent == nil {
		return
	}
	ev := Event{Camera: c.cfg.ID, Start: res.Started.Start, TimeSource: au.TimeSource, Boxes: res.Started.Boxes}
	if jpg, err := p.dec.JPEG(c.cfg.SnapshotWidth, 80); err != nil {
		c.log.Warn("snapshot failed", "err", err)
	} else {
		ev.Snapshot, ev.SnapshotTime = jpg, au.Time
	}
	c.parent.OnMotion(ev)
}

// fail counts a decode error; errors are summarised every few seconds
// rather than logged per frame, as a broken stream can produce hundreds.
func (p *pipeline) fail(err error) {
	p.errCount++
	p.lastErr = err
	p.waitKey = true
	p.cam.metrics.DecodeErrors.WithLabelValues(p.cam.cfg.ID).Inc()
}

func (p *pipeline) reportErrors() {
	rtpErrs := p.cam.stats.RTPErrors.Swap(0)
	if p.errCount == 0 && rtpErrs == 0 {
		return
	}
	p.cam.log.Warn("camera sends undecodable video", "decode_errors", p.errCount, "rtp_errors", rtpErrs, "last_err", errString(p.lastErr))
	p.errCount, p.lastErr = 0, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
