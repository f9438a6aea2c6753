package edge

import (
	"context"
	"encoding/json"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// Recorded playback, the edge's side (central/playback.go is the other):
// central asks for a camera's video one window at a time, as fragmented
// MP4 from the clip store (clips.Window), and for what to draw over it:
// the motion boxes the analysers kept (edge/boxlog) and the zones and
// lines of the camera's configuration in force.

// playbackSide answers wire.MethodPlayback and wire.MethodOverlay (routed
// in rpc.go). The node sets its dependencies at start.
type playbackSide struct {
	clips playbackClips
	boxes interface {
		Range(camera string, from, to time.Time) ([]wire.BoxFrame, error)
	}
	conf *configEngine
}

// playbackClips is what playback uses of the clip store.
type playbackClips interface {
	OpenWindow(camera string, from, to, origin time.Time, keyframesOnly bool) (*clips.Window, error)
}

// answerPlayback answers playback: a JSON wire.PlaybackInfo as soon as the
// window is planned, then the fMP4 as video/mp4 parts, one or more per
// fragment as each is made. No video in the window is not_available; a
// window that fails once its parts have begun ends with error.
func (p *playbackSide) answerPlayback(ctx context.Context, req wire.Request, out *uplink.Responder) {
	if err := req.Validate(); err != nil {
		_ = out.Fail(wire.StatusBadRequest, err.Error())
		return
	}
	win, err := p.clips.OpenWindow(req.Camera, req.From, req.To, req.Playback.Origin, req.Playback.KeyframesOnly)
	if err != nil {
		evidenceFail(out, err) // evidence.go: no video → not_available, too long → bad_request
		return
	}
	defer win.Close()
	in := win.Info()
	b, _ := json.Marshal(wire.PlaybackInfo{Camera: in.Camera, Codec: in.Codec, Width: in.Width, Height: in.Height, Origin: in.Origin,
		Start: in.Start, End: in.End, Frames: in.Frames, Bytes: in.Bytes, KeyframesOnly: in.KeyframesOnly, Next: in.Next})
	if err := out.Send("application/json", b, false); err != nil {
		return
	}
	w := &partWriter{out: out} // rpc.go; WriteTo flushes it after each fragment
	if _, err := win.WriteTo(ctx, w); err != nil {
		_ = out.Fail(wire.StatusError, err.Error())
		return
	}
	_ = out.Send("video/mp4", w.buf, true)
}

// answerOverlay answers overlay: the camera's motion boxes in the range
// and its zones and lines now.
func (p *playbackSide) answerOverlay(_ context.Context, req wire.Request, out *uplink.Responder) {
	if err := req.Validate(); err != nil {
		_ = out.Fail(wire.StatusBadRequest, err.Error())
		return
	}
	boxes, err := p.boxes.Range(req.Camera, req.From, req.To)
	if err != nil {
		_ = out.Fail(wire.StatusError, err.Error())
		return
	}
	cc, _ := p.conf.camera(req.Camera)
	ov := overlayOf(cc)
	ov.Camera, ov.Boxes = req.Camera, boxes
	b, _ := json.Marshal(ov)
	_ = out.Send("application/json", b, true)
}

// overlayOf is a camera's zones and lines (normalised points) as the
// overlay draws them: a line of several points is one segment each, under
// the line's name.
func overlayOf(cc conf.CameraConfig) wire.Overlay {
	ov := wire.Overlay{Boxes: []wire.BoxFrame{}, Zones: []wire.OverlayZone{}, Lines: []wire.OverlayLine{}}
	for _, z := range cc.Motion.Zones {
		oz := wire.OverlayZone{Name: z.Name, Points: []wire.Point{}}
		for _, pt := range z.Points {
			if len(pt) == 2 {
				oz.Points = append(oz.Points, wire.Point{X: pt[0], Y: pt[1]})
			}
		}
		ov.Zones = append(ov.Zones, oz)
	}
	for _, l := range cc.Lines {
		for i := 1; i < len(l.Points); i++ {
			a, b := l.Points[i-1], l.Points[i]
			if len(a) != 2 || len(b) != 2 {
				continue
			}
			ov.Lines = append(ov.Lines, wire.OverlayLine{Name: l.Name, A: wire.Point{X: a[0], Y: a[1]}, B: wire.Point{X: b[0], Y: b[1]}, Direction: l.Direction})
		}
	}
	return ov
}
