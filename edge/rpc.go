package edge

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/setup"

	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// Central's requests (wire.Methods) reach the edge down its uplink, which
// answers each from one table: method → the handler of the component that
// owns the work. This is that table, the only place a method is routed;
// a method missing from it is answered bad_request by the uplink.
// TestRequestRoutesOnNode checks that every wire method is here.

// rpcTable is what answers central's requests: the components that own
// the work, and the clip store's pictures and clips answered here.
type rpcTable struct {
	conf     *configEngine
	live     *liveHub
	clips    rpcClips
	evidence *evidenceSide
	playback *playbackSide
	setup    *setup.Server // nil: this box has no setup page
	up       *uplink.Uplink
	log      *slog.Logger
}

// rpcClips is what the clip and thumbnail methods use of the clip store.
type rpcClips interface {
	Thumbnail(cam string, at time.Time, width int) (clips.Thumbnail, error)
	Export(ctx context.Context, w io.Writer, cam string, from, to time.Time) (clips.ExportInfo, error)
}

// registerRoutes fills r, the uplink's table (node.go). The uplink must
// exist: it answers the audit checkpoint itself.
func registerRoutes(r *uplink.Router, t rpcTable) {
	// Live view (live.go).
	r.HandleFunc(wire.MethodLiveStart, t.onCamera(t.live.handleStart))
	r.HandleFunc(wire.MethodLiveStop, t.onCamera(t.live.handleStop))
	// Clips and thumbnails from the clip store (below).
	r.HandleFunc(wire.MethodThumbnail, t.onCamera(t.answerThumbnail))
	r.HandleFunc(wire.MethodClip, t.onCamera(t.answerClip))
	// Config revisions (config_push.go) and the setup page (below).
	r.HandleFunc(wire.MethodConfig, t.conf.handleConfigPush)
	r.HandleFunc(wire.MethodSetupReopen, t.reopenSetup)
	// Evidence export (evidence.go) and its contact sheet (evidence_sheet.go).
	r.HandleFunc(wire.MethodRecordings, t.onCamera(t.evidence.answerRecordings))
	r.HandleFunc(wire.MethodExportInfo, t.onCamera(t.evidence.answerExportInfo))
	r.HandleFunc(wire.MethodExportRange, t.onCamera(t.evidence.answerExportRange))
	r.HandleFunc(wire.MethodRelease, t.onCamera(t.evidence.answerRelease))
	r.HandleFunc(wire.MethodContactSheet, t.onCamera(t.evidence.answerContactSheet))
	// Recorded playback and its overlay (playback.go).
	// Recorded playback (playback.go): a pool of slots of its own, so
	// many guards scrubbing neither wait behind exports nor refuse them.
	r.HandleWith(wire.MethodPlayback, uplink.Light, t.onCamera(t.playback.answerPlayback))
	r.HandleWith(wire.MethodOverlay, uplink.Light, t.onCamera(t.playback.answerOverlay))
	// The audit checkpoint central left with the uplink: answered from
	// memory, so never refused as busy.
	r.HandleWith(wire.MethodAuditCheckpoint, uplink.Unbounded, uplink.HandlerFunc(t.up.AnswerCheckpoint))
}

// onCamera answers not_available for a camera this edge does not have
// before h runs.
func (t rpcTable) onCamera(h uplink.HandlerFunc) uplink.HandlerFunc {
	return func(ctx context.Context, req wire.Request, out *uplink.Responder) {
		if _, ok := t.conf.camera(req.Camera); !ok {
			_ = out.Fail(wire.StatusNotAvailable, "no camera "+req.Camera+" on this edge")
			return
		}
		h(ctx, req, out)
	}
}

// answerThumbnail answers thumbnail: a JPEG of the camera at req.At.
func (t rpcTable) answerThumbnail(_ context.Context, req wire.Request, out *uplink.Responder) {
	th, err := t.clips.Thumbnail(req.Camera, req.At, 0)
	if err != nil {
		_ = out.Fail(wire.StatusNotAvailable, err.Error())
		return
	}
	_ = out.Send("image/jpeg", th.JPEG, true)
}

// answerClip answers clip: the MP4 export of req.From..To, in parts.
func (t rpcTable) answerClip(ctx context.Context, req wire.Request, out *uplink.Responder) {
	w := &partWriter{out: out}
	if _, err := t.clips.Export(ctx, w, req.Camera, req.From, req.To); err != nil {
		if w.sent == 0 && len(w.buf) == 0 {
			_ = out.Fail(wire.StatusNotAvailable, err.Error())
		} else {
			_ = out.Fail(wire.StatusError, err.Error())
		}
		return
	}
	_ = out.Send("video/mp4", w.buf, true)
}

// reopenSetup answers central's setup_reopen: the setup page opens again
// (and closes by itself once the installer has left).
func (t rpcTable) reopenSetup(_ context.Context, _ wire.Request, out *uplink.Responder) {
	if t.setup == nil {
		_ = out.Fail(wire.StatusError, "this box has no setup page")
		return
	}
	if err := t.setup.Reopen(); err != nil {
		_ = out.Fail(wire.StatusError, err.Error())
		return
	}
	t.log.Info("setup page re-opened from central")
	_ = out.Send("application/json", []byte(`{"reopened":true}`), true)
}

// partWriter sends an export as response parts of at most one frame;
// Flush sends what it holds at once (a playback fragment made).
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

// Flush sends what is buffered as a part of its own.
func (w *partWriter) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.out.Send("video/mp4", w.buf, false); err != nil {
		return err
	}
	w.buf = nil // Send may hold on to what it was given
	w.sent++
	return nil
}
