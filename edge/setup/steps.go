package setup

import (
	"log/slog"

	"encoding/json"
	"errors"
	"fmt"
	"github.com/vigil-perimeter/vigil/streams/onvif"
	"net/http"
	"time"
)

// steps are the page's API: a handler per step of the installation
// (enrol, cameras, zones, gates, sensors, self-test, finish), behind the
// page's code (Server.authed). Each change is recorded for central's audit log
// first (audit) and then made through the Backend.
type steps struct {
	backend   Backend
	log       *slog.Logger
	discovery onvif.Options
	// audit is Server.audit: false, the change must not be made.
	audit func(w http.ResponseWriter, r *http.Request, action, what string, details any) bool
	close func(why string) error // Server.Close
}

// status is GET /setup/api/status: the box as the page shows it.
func (s *steps) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.SetupStatus())
}

// selfTest is POST /setup/api/selftest: the box's self-test.
func (s *steps) selfTest(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.SetupSelfTest(r.Context(), 3*time.Second))
}

// finish is POST /setup/api/finish: the installer is done; the page closes.
func (s *steps) finish(w http.ResponseWriter, r *http.Request) {
	if !s.audit(w, r, ActionConfigChange, "setup", map[string]string{"setup": "finished"}) {
		return
	}
	if err := s.close("the installer finished"); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"closed": true})
}

// enrol is step 1: central's address and the token; the box enrols, keeps
// its credential and connects (Backend.SetupEnrol).
func (s *steps) enrol(w http.ResponseWriter, r *http.Request) {
	var body EnrolRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad request")
		return
	}
	// Recorded before the box enrols: where to, as what (never the token).
	if !s.audit(w, r, ActionEnrol, "enrolment", map[string]any{"central": short(body.Central), "entrance": short(body.Entrance),
		"time_zone": short(body.TimeZone), "ntp": len(body.NTP), "again": body.Again}) {
		return
	}
	res, err := s.backend.SetupEnrol(r.Context(), body)
	if err != nil {
		s.log.Warn("enrolment from the setup page failed", "central", body.Central, "err", err)
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// short bounds a string recorded in audit details (they are at most 2 KiB).
func short(v string) string {
	const limit = 100
	if r := []rune(v); len(r) > limit {
		return string(r[:limit]) + "…"
	}
	return v
}

// draft is a camera's zones and masks, tripwires and loitering areas as
// the page draws them.
type draft struct {
	Camera string         `json:"camera"`
	Zones  []Zone         `json:"zones"`
	Masks  [][][2]float64 `json:"masks"`
	Lines  []Line         `json:"lines"`
	Dwell  []Dwell        `json:"dwell"`
}

// saveZones makes the drawn zones a config revision (step 3, "Save").
func (s *steps) saveZones(w http.ResponseWriter, r *http.Request) {
	var body draft
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad request")
		return
	}
	if body.Camera == "" {
		writeError(w, http.StatusUnprocessableEntity, "choose the camera the zones are for")
		return
	}
	per := Perimeter{Lines: body.Lines, Dwell: body.Dwell}
	if _, probs := PerimeterConfig(per); len(probs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": problemsText(probs), "problems": probs})
		return
	}
	if !s.audit(w, r, ActionConfigChange, "zones/"+short(body.Camera), map[string]any{"camera": short(body.Camera), "zones": len(body.Zones), "masks": len(body.Masks),
		"lines": len(body.Lines), "dwell": len(body.Dwell)}) {
		return
	}
	res, err := s.backend.SetupSaveZones(body.Camera, body.Zones, body.Masks, per)
	var ref *RefusedError
	if errors.As(err, &ref) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": ref.Error(), "problems": ref.Problems})
		return
	}
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.log.Info("zones saved from the setup page", "camera", body.Camera, "zones", len(body.Zones), "masks", len(body.Masks), "lines", len(body.Lines), "dwell", len(body.Dwell))
	writeJSON(w, http.StatusOK, res)
}

// snapshot is GET /setup/api/snapshot?camera=ID: the camera's latest picture.
func (s *steps) snapshot(w http.ResponseWriter, r *http.Request) {
	jpg, err := s.backend.SetupSnapshot(r.Context(), r.URL.Query().Get("camera"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(jpg)
}

// preview is GET /setup/api/preview?camera=ID&draft={"zones":…,"masks":…}:
// the detector's foreground with the draft zones, a PNG overlay at
// analysis size (red: moving inside the zones; dimmed: not watched).
func (s *steps) preview(w http.ResponseWriter, r *http.Request) {
	var d draft
	if q := r.URL.Query().Get("draft"); q != "" {
		if len(q) > 32<<10 {
			writeError(w, http.StatusRequestEntityTooLarge, "too many points")
			return
		}
		if err := json.Unmarshal([]byte(q), &d); err != nil {
			writeError(w, http.StatusBadRequest, "draft: "+err.Error())
			return
		}
	}
	for i, z := range d.Zones {
		if err := polygon(z.Points).Validate(); err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("zone %d: %v", i+1, err))
			return
		}
	}
	for i, m := range d.Masks {
		if err := polygon(m).Validate(); err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("mask %d: %v", i+1, err))
			return
		}
	}
	png, err := s.backend.SetupMotionPreview(r.Context(), r.URL.Query().Get("camera"), d.Zones, d.Masks)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(png)
}

// gateEvents is GET /setup/api/gates/events: Server-Sent Events, one
// "gate" event per gate event the box receives, as it arrives, and a
// comment every 15 s to keep proxies from closing the stream.
func (s *steps) gateEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	events := s.backend.SetupGateEvents(r.Context())
	if events == nil {
		writeError(w, http.StatusNotFound, errors.New("this box has no gates").Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: gate events\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case ev, ok := <-events:
			if !ok {
				return
			}
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "event: gate\ndata: %s\n\n", b)
		}
		fl.Flush()
	}
}

// maxFormBytes bounds a step's form.
const maxFormBytes = 256 << 10

// decodeForm reads a step's form from r's body into v, strictly (an
// unknown field is an error: a page out of step with the box); false
// when it answered 400.
func decodeForm(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad request: "+err.Error())
		return false
	}
	return true
}

// refuseSave answers a save the backend refused: 422 with the problems
// field by field, or with its error; what is the log's line.
func (s *steps) refuseSave(w http.ResponseWriter, what string, err error) {
	s.log.Warn(what, "err", err)
	var ref *RefusedError
	if errors.As(err, &ref) {
		writeRefused(w, ref)
		return
	}
	writeError(w, http.StatusUnprocessableEntity, err.Error())
}
