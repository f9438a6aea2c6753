package clips

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Handler serves playback over HTTP:
//
//	GET /api/v1/recordings                               cameras and store stats
//	GET /api/v1/recordings/{camera}[?start=&end=]        spans and gaps (JSON)
//	GET /api/v1/recordings/{camera}/mp4?start=<RFC 3339>&duration=<Go duration>
//	GET /api/v1/recordings/{camera}/jpeg?at=<RFC 3339>[&width=<px>]
//
// A bad parameter is a 400 naming it; an unknown camera or a range
// without video is a 404.
//
// An MP4 holds one codec at one picture size. When the camera changed
// either within the range asked for (reconfigured or replaced), the
// range is exported in parts, one per change, and the mp4 answer is the
// first part: X-Vigil-Parts says how many parts the range has (1 when it
// has no change), and
//
//	Link: </api/v1/recordings/{camera}/mp4?duration=…&start=…>; rel="next"
//
// (RFC 8288) is the request for the rest of the range, starting at the
// next part's first frame; following rel="next" until there is none
// fetches every part. Parts abut unless the recording has a gap there.
// X-Vigil-Start and X-Vigil-End are the part's own range, X-Vigil-Codec,
// X-Vigil-Width and X-Vigil-Height its video.
func (s *Store) Handler() http.Handler {
	api := httpAPI{s}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/recordings", api.serveStats)
	mux.HandleFunc("GET /api/v1/recordings/{camera}", api.serveTimeline)
	mux.HandleFunc("GET /api/v1/recordings/{camera}/mp4", api.serveMP4)
	mux.HandleFunc("GET /api/v1/recordings/{camera}/jpeg", api.serveJPEG)
	return mux
}

// httpAPI serves the store's playback API (Handler).
type httpAPI struct{ s *Store }

func (api httpAPI) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.s.Stats())
}

func (api httpAPI) serveTimeline(w http.ResponseWriter, r *http.Request) {
	s := api.s
	q := r.URL.Query()
	var from, to time.Time
	var err error
	if v := q.Get("start"); v != "" {
		if from, err = parseTime("start", v); err != nil {
			httpError(w, err)
			return
		}
	}
	if v := q.Get("end"); v != "" {
		if to, err = parseTime("end", v); err != nil {
			httpError(w, err)
			return
		}
	}
	tl, err := s.Timeline(r.PathValue("camera"), from, to)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tl)
}

func (api httpAPI) serveMP4(w http.ResponseWriter, r *http.Request) {
	s := api.s
	q := r.URL.Query()
	start, err := parseTime("start", q.Get("start"))
	if err != nil {
		httpError(w, err)
		return
	}
	d, err := time.ParseDuration(q.Get("duration"))
	if err != nil || d <= 0 {
		httpError(w, badParam{"duration", "must be a positive Go duration such as 90s or 10m"})
		return
	}
	if d > s.cfg.MaxExportDuration {
		httpError(w, badParam{"duration", fmt.Sprintf("exceeds the limit of %v per export", s.cfg.MaxExportDuration)})
		return
	}
	camera := r.PathValue("camera")
	e, err := s.OpenExport(camera, start, start.Add(d))
	if err != nil {
		httpError(w, err)
		return
	}
	defer e.Close()
	info := e.Info()
	parts, err := e.Parts()
	if err != nil {
		httpError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", camera+"-"+info.Start.Format("20060102T150405Z")+".mp4"))
	h.Set("X-Vigil-Start", info.Start.Format(time.RFC3339Nano))
	h.Set("X-Vigil-End", info.End.Format(time.RFC3339Nano))
	h.Set("X-Vigil-Frames", strconv.Itoa(info.Frames))
	h.Set("X-Vigil-Codec", info.Codec)
	if info.Width > 0 {
		h.Set("X-Vigil-Width", strconv.Itoa(info.Width))
		h.Set("X-Vigil-Height", strconv.Itoa(info.Height))
	}
	h.Set("X-Vigil-Parts", strconv.Itoa(len(parts)))
	if !info.Next.IsZero() {
		rest := url.Values{"start": {info.Next.Format(time.RFC3339Nano)}, "duration": {start.Add(d).Sub(info.Next).String()}}
		h.Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.EscapedPath(), rest.Encode()))
	}
	w.WriteHeader(http.StatusOK)
	if _, err := e.WriteTo(r.Context(), w); err != nil && r.Context().Err() == nil {
		s.log.Error("export failed mid-stream", "camera", camera, "start", info.Start, "err", err)
	}
}

func (api httpAPI) serveJPEG(w http.ResponseWriter, r *http.Request) {
	s := api.s
	q := r.URL.Query()
	at, err := parseTime("at", q.Get("at"))
	if err != nil {
		httpError(w, err)
		return
	}
	width := 0
	if v := q.Get("width"); v != "" {
		if width, err = strconv.Atoi(v); err != nil || width < 16 || width > 8192 {
			httpError(w, badParam{"width", "must be a number of pixels from 16 to 8192"})
			return
		}
	}
	th, err := s.Thumbnail(r.PathValue("camera"), at, width)
	if err != nil {
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("X-Vigil-Frame-Time", th.Time.Format(time.RFC3339Nano))
	w.Write(th.JPEG)
}

// badParam is a request parameter that is missing or malformed.
type badParam struct{ name, want string }

func (e badParam) Error() string { return e.name + ": " + e.want }

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, badParam{name, "missing; want an RFC 3339 time such as 2026-01-02T15:04:05Z"}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badParam{name, fmt.Sprintf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", v)}
	}
	return t, nil
}

func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var bp badParam
	switch {
	case errors.As(err, &bp):
		code = http.StatusBadRequest
	case errors.Is(err, ErrUnknownCamera), errors.Is(err, ErrNoVideo):
		code = http.StatusNotFound
	case errors.Is(err, ErrTooLong):
		code = http.StatusBadRequest
	case errors.Is(err, ErrClosed), errors.Is(err, ErrDiskFull):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
