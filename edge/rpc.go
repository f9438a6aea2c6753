package edge

import (
	"context"

	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// Central's requests (wire.Methods) reach the edge down its uplink, which
// answers each from one table: method → the handler of the component that
// owns the work. This is that table, the only place a method is routed;
// a method missing from it is answered bad_request by the uplink.
// TestRequestRoutesOnNode checks that every wire method is here.

// registerRoutes fills r, the uplink's table (node.go). The uplink must
// exist: it answers the audit checkpoint itself.
func (n *Node) registerRoutes(r *uplink.Router) {
	// Live view (live.go).
	r.HandleFunc(wire.MethodLiveStart, n.onCamera(n.live.handleStart))
	r.HandleFunc(wire.MethodLiveStop, n.onCamera(n.live.handleStop))
	// Clips and thumbnails from the clip store (below).
	r.HandleFunc(wire.MethodThumbnail, n.onCamera(n.answerThumbnail))
	r.HandleFunc(wire.MethodClip, n.onCamera(n.answerClip))
	// Config revisions and the setup page (config_push.go).
	r.HandleFunc(wire.MethodConfig, n.handleConfigPush)
	r.HandleFunc(wire.MethodSetupReopen, n.handleSetupReopen)
	// Evidence export (evidence.go) and its contact sheet (evidence_sheet.go).
	r.HandleFunc(wire.MethodRecordings, n.onCamera(n.evidence.answerRecordings))
	r.HandleFunc(wire.MethodExportInfo, n.onCamera(n.evidence.answerExportInfo))
	r.HandleFunc(wire.MethodExportRange, n.onCamera(n.evidence.answerExportRange))
	r.HandleFunc(wire.MethodRelease, n.onCamera(n.evidence.answerRelease))
	r.HandleFunc(wire.MethodContactSheet, n.onCamera(n.evidence.answerContactSheet))
	// The audit checkpoint central left with the uplink: answered from
	// memory, so never refused as busy.
	r.HandleWith(wire.MethodAuditCheckpoint, uplink.Unbounded, uplink.HandlerFunc(n.up.AnswerCheckpoint))
}

// onCamera answers not_available for a camera this edge does not have
// before h runs.
func (n *Node) onCamera(h uplink.HandlerFunc) uplink.HandlerFunc {
	return func(ctx context.Context, req wire.Request, out *uplink.Responder) {
		if _, ok := n.byID[req.Camera]; !ok {
			_ = out.Fail(wire.StatusNotAvailable, "no camera "+req.Camera+" on this edge")
			return
		}
		h(ctx, req, out)
	}
}

// answerThumbnail answers thumbnail: a JPEG of the camera at req.At.
func (n *Node) answerThumbnail(_ context.Context, req wire.Request, out *uplink.Responder) {
	th, err := n.clips.Thumbnail(req.Camera, req.At, 0)
	if err != nil {
		_ = out.Fail(wire.StatusNotAvailable, err.Error())
		return
	}
	_ = out.Send("image/jpeg", th.JPEG, true)
}

// answerClip answers clip: the MP4 export of req.From..To, in parts.
func (n *Node) answerClip(ctx context.Context, req wire.Request, out *uplink.Responder) {
	w := &partWriter{out: out}
	if _, err := n.clips.Export(ctx, w, req.Camera, req.From, req.To); err != nil {
		if w.sent == 0 && len(w.buf) == 0 {
			_ = out.Fail(wire.StatusNotAvailable, err.Error())
		} else {
			_ = out.Fail(wire.StatusError, err.Error())
		}
		return
	}
	_ = out.Send("video/mp4", w.buf, true)
}

// partWriter sends an export as response parts of at most one frame.
type partWriter struct {
	out  *uplink.Responder
	buf  []byte
	sent int
}

func (w *partWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for len(w.buf) >= wire.MaxResponsePart {
		if err := w.out.Send("video/mp4", w.buf[:wire.MaxResponsePart], false); err != nil {
			return 0, err
		}
		w.buf = append([]byte(nil), w.buf[wire.MaxResponsePart:]...)
		w.sent++
	}
	return len(p), nil
}
