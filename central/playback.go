package central

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/wire"
)

// Recorded playback. A guard opens a playback session for up to 16
// cameras and a range of up to a day (POST /api/v1/playback/sessions):
// that is the one audit entry (who, which cameras, which range), written
// before the session exists, and the session is refused if it cannot be.
// The session then carries the player's requests, each checked against
// it and none audited again, because a player asks for a window every few
// seconds and a guard scrubbing asks for dozens: video windows of one
// camera (at most wire.MaxPlaybackWindow, fMP4 from the edge over its own
// uplink, streamed as it arrives), the timeline (recorded spans and gaps
// from each edge, alerts, gate events and bookmarks from central's store)
// and the overlay (motion boxes, zones, lines). Every video of a session
// shares its origin (its start): media time t is wall time origin+t on
// every camera, which is how the console plays them in step.
//
// Sessions live in memory only (a restart ends them; the console opens a
// new one), belong to the user who made them (anyone else gets 404, as
// for a session that never was) and end 30 minutes after their last use.

const (
	playbackIdle        = 30 * time.Minute
	maxPlaybackRange    = 24 * time.Hour
	maxPlaybackCameras  = 16
	playbackFuture      = time.Minute // a session may end this far past now
	maxSessionsPerUser  = 32          // beyond: the user's least recently used session ends
	playbackEdgeTimeout = 10 * time.Second
	// playbackSlack is how far a window may reach outside its session's
	// range: the edge starts a window at the keyframe at or before from,
	// so a player asks a little early at the session's start.
	playbackSlack        = 10 * time.Second
	maxTimelineAlerts    = 2000 // per camera
	maxTimelineEvents    = 2000 // per edge
	maxTimelineBookmarks = 500  // per camera
	// timelineSkew bounds how far an edge's clock may run ahead of
	// central's for its alerts to be found on a timeline (edges keep
	// their clocks with SNTP; a minute's error is already an alarm).
	timelineSkew = 10 * time.Minute
)

// PlaybackCamera is one camera of a playback session.
type PlaybackCamera struct {
	Edge   string `json:"edge"`
	Camera string `json:"camera"`
	Name   string `json:"name"`
}

// PlaybackSession is the answer to POST /api/v1/playback/sessions.
type PlaybackSession struct {
	ID      string           `json:"id"`
	Origin  time.Time        `json:"origin"` // media time 0 of every video of the session: From
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Cameras []PlaybackCamera `json:"cameras"`
	Expires time.Time        `json:"expires"`
	user    string
}

func (s *PlaybackSession) camera(edge, camera string) (PlaybackCamera, bool) {
	i := slices.IndexFunc(s.Cameras, func(c PlaybackCamera) bool { return c.Edge == edge && c.Camera == camera })
	if i < 0 {
		return PlaybackCamera{}, false
	}
	return s.Cameras[i], true
}

// playbackSessions is the one owner of the playback sessions: made,
// looked up (which keeps them alive) and ended by their user, swept when
// idle.
type playbackSessions struct {
	mu   sync.Mutex
	m    map[string]*PlaybackSession
	idle time.Duration
	now  func() time.Time
	// shared keeps the sessions in PostgreSQL instead of m, for
	// replicas (a player's next window may reach any of them); nil:
	// in memory.
	shared *PGStore
}

func newPlaybackSessions(idle time.Duration, now func() time.Time) *playbackSessions {
	return &playbackSessions{m: map[string]*PlaybackSession{}, idle: idle, now: now}
}

// add keeps s (its ID and user set) from now; the user's least recently
// used session ends if they hold too many.
func (t *playbackSessions) add(s PlaybackSession) (PlaybackSession, error) {
	s.Expires = t.now().Add(t.idle).UTC()
	if t.shared != nil {
		return s, t.shared.addPlayback(s, maxSessionsPerUser)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var mine []*PlaybackSession
	for _, o := range t.m {
		if o.user == s.user {
			mine = append(mine, o)
		}
	}
	if len(mine) >= maxSessionsPerUser {
		oldest := slices.MinFunc(mine, func(a, b *PlaybackSession) int { return a.Expires.Compare(b.Expires) })
		delete(t.m, oldest.ID)
	}
	t.m[s.ID] = &s
	return s, nil
}

// use returns user's session id and keeps it alive; false for a session
// that is not there, has expired or is someone else's.
func (t *playbackSessions) use(id, user string) (PlaybackSession, bool) {
	if t.shared != nil {
		return t.shared.usePlayback(id, user, t.now(), t.idle)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[id]
	now := t.now()
	switch {
	case !ok || s.user != user:
		return PlaybackSession{}, false
	case !now.Before(s.Expires):
		delete(t.m, id)
		return PlaybackSession{}, false
	}
	s.Expires = now.Add(t.idle).UTC()
	return *s, true
}

// end removes user's session id; false if there was none of theirs.
func (t *playbackSessions) end(id, user string) bool {
	if t.shared != nil {
		return t.shared.endPlayback(id, user)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[id]; ok && s.user == user {
		delete(t.m, id)
		return true
	}
	return false
}

// sweep ends every expired session.
func (t *playbackSessions) sweep() {
	if t.shared != nil {
		t.shared.sweepPlayback(t.now())
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for id, s := range t.m {
		if !now.Before(s.Expires) {
			delete(t.m, id)
		}
	}
}

// run sweeps every minute until ctx ends (the server's Close).
func (t *playbackSessions) run(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.sweep()
		}
	}
}

func (t *playbackSessions) len() int {
	if t.shared != nil {
		return t.shared.countPlayback()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// playbackEdges is what playback asks of the edge hub: the edges with
// their cameras' names, and requests down an edge's connection.
type playbackEdges interface {
	statuses() []EdgeStatus
	edgeAsker
}

// edgeCaller asks an edge for one answer (retrieval.call): a linkError
// when the edge is offline or does not answer in time.
type edgeCaller interface {
	call(ctx context.Context, edge string, req wire.Request, timeout time.Duration) ([]byte, error)
}

// playbackStore is what the timeline reads from the alert store.
type playbackStore interface {
	Query(q AlertQuery) ([]Record, uint64, error)
	Events(q EventQuery) ([]StoredEvent, time.Time, error)
}

// playbackAPI is the recorded-playback component. New (server.go) builds
// it; the sessions' sweeper runs on the server's lifecycle.
type playbackAPI struct {
	sessions  *playbackSessions
	edges     playbackEdges
	ask       edgeCaller
	store     playbackStore
	bookmarks bookmarkStore
	rec       auditRecorder // the session's entry
	now       func() time.Time
	windows   *prometheus.CounterVec // video windows asked for, by keyframes_only
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// collectors makes the component's metrics for the server to register:
// sessions open now, and windows asked for (each label at 0 from the start).
func (pa *playbackAPI) collectors() []prometheus.Collector {
	pa.windows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_central_playback_windows_total",
		Help: "Recorded playback video windows asked of edges, by keyframes_only (true: a slow link or fast scrubbing).",
	}, []string{"keyframes_only"})
	pa.windows.WithLabelValues("true")
	pa.windows.WithLabelValues("false")
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_central_playback_sessions",
		Help: "Recorded playback sessions open now.",
	}, func() float64 { return float64(pa.sessions.len()) })
	return []prometheus.Collector{pa.windows, open}
}

// playbackIn is the body of POST /api/v1/playback/sessions.
type playbackIn struct {
	Cameras []struct {
		Edge   string `json:"edge"`
		Camera string `json:"camera"`
	} `json:"cameras"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// handleCreateSession serves POST /api/v1/playback/sessions: 201 with the
// session, after its audit entry is written (503 if it cannot be).
func (pa *playbackAPI) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	var in playbackIn
	if !readBody(w, r, &in) {
		return
	}
	s, param, err := pa.sessionOf(in)
	if err != nil {
		writeError(w, http.StatusBadRequest, param, err.Error())
		return
	}
	s.ID, s.user = newPlaybackID(), principalName(r)
	names := make([]string, len(s.Cameras))
	for i, c := range s.Cameras {
		names[i] = c.Edge + "/" + c.Camera
	}
	details := map[string]any{"what": "playback", "session": s.ID, "cameras": names,
		"from": s.From.Format(time.RFC3339Nano), "to": s.To.Format(time.RFC3339Nano)}
	if !pa.rec.auditOrRefuse(w, r, audit.ActionView, "playback", details) {
		return
	}
	s, err = pa.sessions.add(s)
	if err != nil {
		pa.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

// sessionOf checks a session's body and names its cameras (the edges'
// names; a camera an edge does not report is named by its ID). It
// returns the parameter at fault with an error.
func (pa *playbackAPI) sessionOf(in playbackIn) (PlaybackSession, string, error) {
	now := pa.now()
	s := PlaybackSession{From: in.From.UTC(), To: in.To.UTC(), Origin: in.From.UTC(), Cameras: []PlaybackCamera{}}
	switch {
	case len(in.Cameras) == 0 || len(in.Cameras) > maxPlaybackCameras:
		return s, "cameras", fmt.Errorf("cameras: 1 to %d, not %d", maxPlaybackCameras, len(in.Cameras))
	case in.From.IsZero() || in.From.Before(minAPITime):
		return s, "from", errors.New("from must be an RFC 3339 time after 1970")
	case in.To.IsZero() || !in.To.After(in.From):
		return s, "to", errors.New("to must be an RFC 3339 time after from")
	case in.To.Sub(in.From) > maxPlaybackRange:
		return s, "to", fmt.Errorf("a playback session spans at most %v, not %v", maxPlaybackRange, in.To.Sub(in.From))
	case in.To.After(now.Add(playbackFuture)):
		return s, "to", errors.New("to must not lie more than a minute in the future")
	}
	edges := map[string]EdgeStatus{}
	for _, e := range pa.edges.statuses() {
		edges[e.ID] = e
	}
	for i, c := range in.Cameras {
		e, ok := edges[c.Edge]
		switch {
		case !ok:
			return s, "cameras", fmt.Errorf("cameras[%d].edge: %q is not an edge central knows", i, c.Edge)
		case c.Camera == "":
			return s, "cameras", fmt.Errorf("cameras[%d].camera is empty", i)
		}
		if _, dup := s.camera(c.Edge, c.Camera); dup {
			continue
		}
		name := c.Camera
		if j := slices.IndexFunc(e.Cameras, func(cs wire.CameraStatus) bool { return cs.ID == c.Camera }); j >= 0 && e.Cameras[j].Name != "" {
			name = e.Cameras[j].Name
		}
		s.Cameras = append(s.Cameras, PlaybackCamera{Edge: c.Edge, Camera: c.Camera, Name: name})
	}
	return s, "", nil
}

// session returns the request's session ({id}), answering 404 if it is
// not the signed-in user's (or has ended).
func (pa *playbackAPI) session(w http.ResponseWriter, r *http.Request) (PlaybackSession, bool) {
	s, ok := pa.sessions.use(r.PathValue("id"), principalName(r))
	if !ok {
		writeError(w, http.StatusNotFound, "", "no such playback session (it is someone else's, or ended: open a new one)")
	}
	return s, ok
}

// handleDeleteSession serves DELETE /api/v1/playback/sessions/{id}: 204.
func (pa *playbackAPI) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	if !pa.sessions.end(r.PathValue("id"), principalName(r)) {
		writeError(w, http.StatusNotFound, "", "no such playback session")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// window reads a request's edge, camera, from and to and checks them
// against the session: a camera of it, from < to, at most maxSpan long,
// inside its range give or take playbackSlack.
func window(w http.ResponseWriter, r *http.Request, s PlaybackSession, maxSpan time.Duration) (PlaybackCamera, time.Time, time.Time, bool) {
	v := r.URL.Query()
	cam, ok := s.camera(v.Get("edge"), v.Get("camera"))
	if !ok {
		writeError(w, http.StatusForbidden, "camera", fmt.Sprintf("%s/%s is not a camera of this playback session", v.Get("edge"), v.Get("camera")))
		return cam, time.Time{}, time.Time{}, false
	}
	from, ok := queryTime(w, r, "from")
	if !ok {
		return cam, from, time.Time{}, false
	}
	to, ok := queryTime(w, r, "to")
	if !ok {
		return cam, from, to, false
	}
	param, msg := "", ""
	switch {
	case from.IsZero() || to.IsZero() || !to.After(from):
		param, msg = "to", "from and to are needed, from before to"
	case to.Sub(from) > maxSpan:
		param, msg = "to", fmt.Sprintf("a window spans at most %v, not %v", maxSpan, to.Sub(from))
	case from.Before(s.From.Add(-playbackSlack)) || to.After(s.To.Add(playbackSlack)):
		param, msg = "from", fmt.Sprintf("the window lies outside the session's range %s..%s", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
	}
	if param != "" {
		writeError(w, http.StatusBadRequest, param, msg)
		return cam, from, to, false
	}
	return cam, from.UTC(), to.UTC(), true
}

// handleVideo serves GET /api/v1/playback/sessions/{id}/video?edge=&camera=&from=&to=[&keyframes=1]:
// the edge's fMP4 (initialisation segment, then fragments) streamed as it
// arrives, with the window's X-Vigil-* headers from the edge's
// wire.PlaybackInfo.
func (pa *playbackAPI) handleVideo(w http.ResponseWriter, r *http.Request) {
	s, ok := pa.session(w, r)
	if !ok {
		return
	}
	cam, from, to, ok := window(w, r, s, wire.MaxPlaybackWindow)
	if !ok {
		return
	}
	kf := r.URL.Query().Get("keyframes")
	if kf != "" && kf != "0" && kf != "1" {
		writeError(w, http.StatusBadRequest, "keyframes", "keyframes must be 0 or 1")
		return
	}
	req := wire.Request{Method: wire.MethodPlayback, Camera: cam.Camera, From: from, To: to,
		Playback: &wire.PlaybackParams{Origin: s.Origin, KeyframesOnly: kf == "1"}}
	if pa.windows != nil {
		pa.windows.WithLabelValues(strconv.FormatBool(kf == "1")).Inc()
	}
	proxyEdge(pa.edges, w, r, cam.Edge, req, playbackHeaders)
}

// playbackHeaders sets a window's headers from the edge's PlaybackInfo.
func playbackHeaders(h http.Header, data []byte) error {
	var info wire.PlaybackInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return fmt.Errorf("playback info: %w", err)
	}
	switch {
	case info.Start.IsZero() || info.End.IsZero() || info.Frames < 0:
		return errors.New("playback info without start or end, or with negative frames")
	case info.Codec == "" || len(info.Codec) > 64 || strings.ContainsFunc(info.Codec, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_')
	}):
		return fmt.Errorf("playback info: codec %q is not an RFC 6381 codec string", info.Codec)
	}
	h.Set("X-Vigil-Start", info.Start.UTC().Format(time.RFC3339Nano))
	h.Set("X-Vigil-End", info.End.UTC().Format(time.RFC3339Nano))
	h.Set("X-Vigil-Codec", info.Codec)
	h.Set("X-Vigil-Frames", strconv.Itoa(info.Frames))
	h.Set("X-Vigil-Keyframes-Only", map[bool]string{true: "1", false: "0"}[info.KeyframesOnly])
	if !info.Next.IsZero() {
		h.Set("X-Vigil-Next", info.Next.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// handleOverlay serves GET /api/v1/playback/sessions/{id}/overlay?edge=&camera=&from=&to=:
// the edge's wire.Overlay for at most wire.MaxOverlayRange.
func (pa *playbackAPI) handleOverlay(w http.ResponseWriter, r *http.Request) {
	s, ok := pa.session(w, r)
	if !ok {
		return
	}
	cam, from, to, ok := window(w, r, s, wire.MaxOverlayRange)
	if !ok {
		return
	}
	proxyEdge(pa.edges, w, r, cam.Edge, wire.Request{Method: wire.MethodOverlay, Camera: cam.Camera, From: from, To: to}, nil)
}

func principalName(r *http.Request) string {
	if p := principalOf(r); p != nil {
		return p.Name
	}
	return ""
}

func newPlaybackID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "pb-" + hex.EncodeToString(b)
}

// TimelineSpan is a stretch of recorded video, or a gap in it.
type TimelineSpan struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// TimelineAlert is an alert on a playback timeline.
type TimelineAlert struct {
	ID       string        `json:"id"`
	Kind     string        `json:"kind"`
	Severity wire.Severity `json:"severity"`
	Time     time.Time     `json:"time"`
	Summary  string        `json:"summary"`
	State    string        `json:"state"`
	Priority int           `json:"priority"`
}

// TimelineEvent is an edge's event (a gate's) on a playback timeline.
type TimelineEvent struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Kind    string    `json:"kind"`
	Summary string    `json:"summary"`
}

// TimelineCamera is one camera's row of a playback timeline.
type TimelineCamera struct {
	Edge      string          `json:"edge"`
	Camera    string          `json:"camera"`
	Name      string          `json:"name"`
	Spans     []TimelineSpan  `json:"spans"`
	Gaps      []TimelineSpan  `json:"gaps"`
	Alerts    []TimelineAlert `json:"alerts"`
	Events    []TimelineEvent `json:"events"`
	Bookmarks []Bookmark      `json:"bookmarks"`
	Error     string          `json:"error,omitempty"` // the edge could not say what it recorded
}

// Timeline answers GET /api/v1/playback/sessions/{id}/timeline.
type Timeline struct {
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Cameras []TimelineCamera `json:"cameras"`
}

// handleTimeline serves GET /api/v1/playback/sessions/{id}/timeline: per
// camera of the session, what its edge recorded (asked of every camera at
// once, each bounded by playbackEdgeTimeout; an edge that cannot answer
// gives its cameras an error and no spans), and the alerts, the edge's
// events and the bookmarks central holds in the range.
func (pa *playbackAPI) handleTimeline(w http.ResponseWriter, r *http.Request) {
	s, ok := pa.session(w, r)
	if !ok {
		return
	}
	tl := Timeline{From: s.From, To: s.To, Cameras: make([]TimelineCamera, len(s.Cameras))}
	var wg sync.WaitGroup
	for i, c := range s.Cameras {
		tl.Cameras[i] = TimelineCamera{Edge: c.Edge, Camera: c.Camera, Name: c.Name, Spans: []TimelineSpan{}, Gaps: []TimelineSpan{},
			Alerts: []TimelineAlert{}, Events: []TimelineEvent{}, Bookmarks: []Bookmark{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pa.recordings(r.Context(), &tl.Cameras[i], s.From, s.To)
		}()
	}
	err := pa.timelineAlerts(tl.Cameras, s, !seesSelfTests(r))
	if err == nil {
		err = pa.timelineEvents(tl.Cameras, s)
	}
	for i := range tl.Cameras {
		if err != nil {
			break
		}
		c := &tl.Cameras[i]
		c.Bookmarks, err = pa.bookmarks.bookmarks(bookmarkQuery{Edge: c.Edge, Camera: c.Camera, From: s.From, To: s.To.Add(time.Nanosecond), Limit: maxTimelineBookmarks})
	}
	wg.Wait()
	if err != nil {
		pa.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tl)
}

// recordings fills in c's spans and gaps from its edge, or its error.
func (pa *playbackAPI) recordings(ctx context.Context, c *TimelineCamera, from, to time.Time) {
	b, err := pa.ask.call(ctx, c.Edge, wire.Request{Method: wire.MethodRecordings, Camera: c.Camera, From: from, To: to}, playbackEdgeTimeout)
	var rec wire.Recordings
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		c.Error = err.Error()
		return
	}
	for _, sp := range rec.Spans {
		c.Spans = append(c.Spans, TimelineSpan{Start: sp.Start.UTC(), End: sp.End.UTC()})
	}
	for _, g := range rec.Gaps {
		c.Gaps = append(c.Gaps, TimelineSpan{Start: g.Start.UTC(), End: g.End.UTC()})
	}
}

// timelineAlerts places the alerts whose time lies in the session's range
// under each camera they concern (source or linked), in one pass over
// the store.
func (pa *playbackAPI) timelineAlerts(cams []TimelineCamera, s PlaybackSession, hideSelfTest bool) error {
	// Newest first, down to what central received well before the range
	// (timelineSkew: an edge's clock ahead of central's): one bounded
	// pass, however large the store.
	q := AlertQuery{From: s.From, To: s.To.Add(time.Nanosecond), Limit: maxAlertLimit, HideSelfTest: hideSelfTest,
		Desc: true, ReceivedSince: s.From.Add(-timelineSkew)}
	for {
		recs, next, err := pa.store.Query(q)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			for i := range cams {
				c := &cams[i]
				match := AlertQuery{Edge: c.Edge, Camera: c.Camera}
				if len(c.Alerts) < maxTimelineAlerts && match.matches(&rec) {
					c.Alerts = append(c.Alerts, TimelineAlert{ID: rec.ID, Kind: rec.Kind, Severity: rec.Severity, Time: rec.Time,
						Summary: rec.Summary, State: rec.State, Priority: rec.Priority})
				}
			}
		}
		if next == 0 {
			break
		}
		q.Before = next
	}
	for i := range cams { // the console draws them in time order
		slices.SortFunc(cams[i].Alerts, func(a, b TimelineAlert) int { return a.Time.Compare(b.Time) })
	}
	return nil
}

// timelineEvents gives each camera its edge's events in the range.
func (pa *playbackAPI) timelineEvents(cams []TimelineCamera, s PlaybackSession) error {
	byEdge := map[string][]TimelineEvent{}
	for i := range cams {
		c := &cams[i]
		evs, ok := byEdge[c.Edge]
		if !ok {
			stored, _, err := pa.store.Events(EventQuery{From: s.From, To: s.To.Add(time.Nanosecond), Edge: c.Edge, Limit: maxTimelineEvents})
			if err != nil {
				return err
			}
			evs = []TimelineEvent{}
			for _, e := range stored {
				evs = append(evs, TimelineEvent{Time: e.Time, Source: e.Source, Kind: e.Kind, Summary: e.Summary})
			}
			byEdge[c.Edge] = evs
		}
		c.Events = evs
	}
	return nil
}
