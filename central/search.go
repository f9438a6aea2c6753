package central

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Evidence search: GET /api/v1/evidence/search?site=&entrance=&camera=&from=&to=&alert=
// answers, per edge and camera in the window, where video was recorded
// and where it is missing (asked from the edge over its uplink; an
// offline edge is said to be so, with what central knows), the alerts and
// gate events central holds with their workflow, and the ranges central
// has already retrieved.

const (
	maxSearchWindow    = 31 * 24 * time.Hour
	searchAlertBefore  = time.Minute     // an alert's window when none is given
	searchAlertAfter   = 2 * time.Minute // (from its time, or from its end)
	searchEdgeTimeout  = 10 * time.Second
	maxSearchAlerts    = 2000 // per edge
	maxSearchEvents    = 5000 // per edge
	searchRecordingsOK = "ok"
)

// SearchResult answers an evidence search.
type SearchResult struct {
	From  time.Time    `json:"from"`
	To    time.Time    `json:"to"`
	Alert *Record      `json:"alert,omitempty"` // the alert searched for
	Edges []SearchEdge `json:"edges"`
}

// SearchEdge is one edge (one entrance) in a search.
type SearchEdge struct {
	ID            string           `json:"id"`
	SiteID        string           `json:"site_id"`
	Online        bool             `json:"online"`
	LastSeen      time.Time        `json:"last_seen,omitzero"`
	ClockOffsetMS int64            `json:"clock_offset_ms"`
	Cameras       []CameraTimeline `json:"cameras"`
	Gates         []GateTimeline   `json:"gates"`
	// Alerts and events whose source is neither a known camera nor gate.
	OtherAlerts []Record      `json:"other_alerts"`
	OtherEvents []StoredEvent `json:"other_events"`
}

// CameraTimeline is one camera's timeline in the window.
type CameraTimeline struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// RecordingsStatus: "ok" (Recordings holds the edge's spans and gaps),
	// "edge_offline", or "error" (RecordingsError says why).
	RecordingsStatus string           `json:"recordings_status"`
	RecordingsError  string           `json:"recordings_error,omitempty"`
	Recordings       *wire.Recordings `json:"recordings,omitempty"`
	Alerts           []Record         `json:"alerts"`
	Events           []StoredEvent    `json:"events"`
	Retrieved        []RetrievedRange `json:"retrieved"` // copies central holds
}

// GateTimeline is one gate's alerts and events in the window.
type GateTimeline struct {
	ID     string        `json:"id"`
	Name   string        `json:"name,omitempty"`
	Alerts []Record      `json:"alerts"`
	Events []StoredEvent `json:"events"`
}

// RetrievedRange is a range of a camera that central has fetched.
type RetrievedRange struct {
	RequestID  string    `json:"request_id"`
	CaseNumber string    `json:"case_number"`
	Item       int       `json:"item"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	SHA256     string    `json:"sha256"`
}

// evidenceSearch is the evidence search component: the timelines of the
// cameras and gates in a window, from what central holds and what the
// online edges answer. New (server.go) builds it.
type evidenceSearch struct {
	township *TownshipConfig // entrances' cameras and gates still listed in central.yaml (nil: none)
	store    evidenceStore
	edges    evidenceEdges
	retr     searchRetrieval
	rec      auditRecorder // the search's audit entry
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// searchRetrieval is what the search asks of the retrieval component
// (retrieval.go): a request to an edge, and the requests central holds.
type searchRetrieval interface {
	call(ctx context.Context, edge string, req wire.Request, timeout time.Duration) ([]byte, error)
	list() ([]EvidenceRequest, error)
}

// handleEvidenceSearch serves GET /api/v1/evidence/search: the window
// (from the query or around an alert), then each edge it names with its
// devices' timelines, the recordings asked from the online edges at once.
func (es *evidenceSearch) handleEvidenceSearch(w http.ResponseWriter, r *http.Request) {
	q, ok := es.searchQueryOf(w, r)
	if !ok {
		return
	}
	res := SearchResult{From: q.from.UTC(), To: q.to.UTC(), Alert: q.alert, Edges: []SearchEdge{}}
	tree := &siteTree{nodes: map[string]*siteNode{}}
	if es.township != nil {
		tree, _ = buildSiteTree(es.township) // checked by Validate
	}
	retrieved := es.retrievedRanges()
	var online []bool
	for _, e := range es.edges.statuses() {
		if !q.wants(e) {
			continue
		}
		se, ok, err := es.searchEdge(q, e, tree, retrieved)
		if err != nil {
			es.internalError(w, r, err)
			return
		}
		if ok {
			res.Edges = append(res.Edges, se)
			online = append(online, e.Online)
		}
	}
	var wg sync.WaitGroup
	for i := range res.Edges {
		es.askRecordings(r.Context(), &wg, &res.Edges[i], online[i], q.from, q.to)
	}
	wg.Wait()
	es.rec.audit(r, "search", "evidence", map[string]any{"query": r.URL.RawQuery, "edges": len(res.Edges)})
	writeJSON(w, http.StatusOK, res)
}

// searchQuery is an evidence search's parameters, checked.
type searchQuery struct {
	from, to time.Time
	alert    *Record // the alert searched for (nil: none)
	site     string  // that site and below
	entrance string
	camera   string // a camera ID ("" any)
	camEdge  string // the edge the camera parameter named ("edge/camera"), if any
}

// searchQueryOf reads the search's parameters; false after answering an
// error. Without from or to an alert's window is taken: from a minute
// before it to two minutes after it (or after its end).
func (es *evidenceSearch) searchQueryOf(w http.ResponseWriter, r *http.Request) (searchQuery, bool) {
	var q searchQuery
	var ok bool
	if q.from, ok = queryTime(w, r, "from"); !ok {
		return q, false
	}
	if q.to, ok = queryTime(w, r, "to"); !ok {
		return q, false
	}
	if id := r.URL.Query().Get("alert"); id != "" {
		rec, err := es.store.Get(id)
		if errors.Is(err, ErrNotFound) {
			writeError(w, http.StatusNotFound, "alert", "no alert "+id)
			return q, false
		} else if err != nil {
			es.internalError(w, r, err)
			return q, false
		}
		q.alert = &rec
		if q.from.IsZero() {
			q.from = rec.Time.Add(-searchAlertBefore)
		}
		if q.to.IsZero() {
			end := rec.Time
			if rec.Ended.After(end) {
				end = rec.Ended
			}
			q.to = end.Add(searchAlertAfter)
		}
	}
	switch {
	case q.from.IsZero() || q.to.IsZero():
		writeError(w, http.StatusBadRequest, "from", "from and to are needed (or an alert)")
		return q, false
	case !q.to.After(q.from):
		writeError(w, http.StatusBadRequest, "to", "to must be after from")
		return q, false
	case q.to.Sub(q.from) > maxSearchWindow:
		writeError(w, http.StatusBadRequest, "to", "the window may be at most 31 days")
		return q, false
	}
	v := r.URL.Query()
	q.site, q.entrance, q.camera = v.Get("site"), v.Get("entrance"), v.Get("camera")
	if e, c, ok := strings.Cut(q.camera, "/"); ok { // "edge/camera" also names a camera
		q.camEdge, q.camera = e, c
	}
	return q, true
}

// wants reports whether the search covers edge e.
func (q searchQuery) wants(e EdgeStatus) bool {
	switch {
	case q.entrance != "" && e.SiteID != q.entrance,
		q.site != "" && e.SiteID != q.site && !strings.HasPrefix(e.SiteID, q.site+"/"),
		q.alert != nil && e.ID != q.alert.EdgeID,
		q.camEdge != "" && e.ID != q.camEdge:
		return false
	}
	return true
}

// searchDevices lists an edge's cameras and gates: what the edge reports,
// under the edge's names (devices.go), and any central.yaml still lists
// at its entrance (deprecated).
func searchDevices(tree *siteTree, e EdgeStatus) (cams, gates []DeviceConfig) {
	add := func(list *[]DeviceConfig, d DeviceConfig) {
		for i := range *list {
			if (*list)[i].ID == d.ID {
				if d.Name != "" {
					(*list)[i].Name = d.Name // the edge's name wins
				}
				return
			}
		}
		*list = append(*list, d)
	}
	if n := tree.nodes[e.SiteID]; n != nil {
		for _, c := range n.Cameras {
			add(&cams, c)
		}
		for _, g := range n.Gates {
			add(&gates, g)
		}
	}
	for _, c := range e.Cameras {
		add(&cams, DeviceConfig{ID: c.ID, Name: c.Name})
	}
	for _, g := range e.Gates {
		add(&gates, DeviceConfig{ID: g.ID, Name: g.Name})
	}
	return cams, gates
}

// searchEdge is one edge's part of a search: its cameras (only the one
// searched for, or the alert's camera) with the copies central retrieved,
// its gates, and the alerts and events central holds placed under them.
// ok is false when the search names a camera the edge does not have.
func (es *evidenceSearch) searchEdge(q searchQuery, e EdgeStatus, tree *siteTree, retrieved map[string][]RetrievedRange) (SearchEdge, bool, error) {
	se := SearchEdge{ID: e.ID, SiteID: e.SiteID, Online: e.Online, LastSeen: e.LastSeen, ClockOffsetMS: e.ClockOffsetMS,
		Cameras: []CameraTimeline{}, Gates: []GateTimeline{}, OtherAlerts: []Record{}, OtherEvents: []StoredEvent{}}
	cams, gates := searchDevices(tree, e)
	alerts, err := searchAlerts(es.store, e, q.from, q.to)
	if err != nil {
		return se, false, err
	}
	events, _, err := es.store.Events(EventQuery{From: q.from, To: q.to, Edge: e.ID, Limit: maxSearchEvents})
	if err != nil {
		return se, false, err
	}
	isCam := func(id string) bool {
		return slices.ContainsFunc(cams, func(d DeviceConfig) bool { return d.ID == id })
	}
	if q.camera != "" {
		cams = slices.DeleteFunc(cams, func(d DeviceConfig) bool { return d.ID != q.camera })
		if len(cams) == 0 {
			return se, false, nil
		}
	} else if q.alert != nil && isCam(q.alert.Source) {
		cams = slices.DeleteFunc(cams, func(d DeviceConfig) bool { return d.ID != q.alert.Source })
	}
	for _, c := range cams {
		ct := CameraTimeline{ID: c.ID, Name: c.Name, Alerts: []Record{}, Events: []StoredEvent{}, Retrieved: []RetrievedRange{}}
		for _, rr := range retrieved[e.ID+"\x00"+c.ID] {
			if rr.End.After(q.from) && rr.Start.Before(q.to) {
				ct.Retrieved = append(ct.Retrieved, rr)
			}
		}
		se.Cameras = append(se.Cameras, ct)
	}
	for _, g := range gates {
		se.Gates = append(se.Gates, GateTimeline{ID: g.ID, Name: g.Name, Alerts: []Record{}, Events: []StoredEvent{}})
	}
	for _, a := range alerts {
		switch {
		case placeAlert(se.Cameras, a, func(c *CameraTimeline) (string, *[]Record) { return c.ID, &c.Alerts }):
		case placeAlert(se.Gates, a, func(g *GateTimeline) (string, *[]Record) { return g.ID, &g.Alerts }):
		case q.camera == "" && !isCam(a.Source):
			se.OtherAlerts = append(se.OtherAlerts, a)
		}
	}
	for _, ev := range events {
		switch {
		case placeEvent(se.Cameras, ev, func(c *CameraTimeline) (string, *[]StoredEvent) { return c.ID, &c.Events }):
		case placeEvent(se.Gates, ev, func(g *GateTimeline) (string, *[]StoredEvent) { return g.ID, &g.Events }):
		case q.camera == "" && !isCam(ev.Source):
			se.OtherEvents = append(se.OtherEvents, ev)
		}
	}
	return se, true, nil
}

// askRecordings fills in each camera's recordings: asked from an online
// edge on goroutines wg counts, "edge_offline" at once otherwise.
func (es *evidenceSearch) askRecordings(ctx context.Context, wg *sync.WaitGroup, se *SearchEdge, online bool, from, to time.Time) {
	for ci := range se.Cameras {
		ct := &se.Cameras[ci]
		if !online {
			ct.RecordingsStatus = "edge_offline"
			ct.RecordingsError = "the edge is offline: central shows the alerts, events and retrieved copies it holds"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := es.recordingsOf(ctx, se.ID, ct.ID, from, to)
			var le linkError
			switch {
			case err == nil:
				ct.RecordingsStatus, ct.Recordings = searchRecordingsOK, &rec
			case errors.As(err, &le):
				ct.RecordingsStatus, ct.RecordingsError = "edge_offline", le.msg
			default:
				ct.RecordingsStatus, ct.RecordingsError = "error", err.Error()
			}
		}()
	}
}

func placeAlert[T any](list []T, a Record, key func(*T) (string, *[]Record)) bool {
	for i := range list {
		if id, l := key(&list[i]); id == a.Source {
			*l = append(*l, a)
			return true
		}
	}
	return false
}

func placeEvent[T any](list []T, ev StoredEvent, key func(*T) (string, *[]StoredEvent)) bool {
	for i := range list {
		if id, l := key(&list[i]); id == ev.Source {
			*l = append(*l, ev)
			return true
		}
	}
	return false
}

// searchAlerts lists the edge's alerts whose time lies in [from, to).
func searchAlerts(store evidenceStore, e EdgeStatus, from, to time.Time) ([]Record, error) {
	out := []Record{}
	q := AlertQuery{Limit: maxSearchAlerts, Site: e.SiteID, From: from, To: to}
	for {
		recs, next, err := store.Query(q)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if rec.EdgeID == e.ID {
				out = append(out, rec)
			}
		}
		if next == q.Since || len(out) >= maxSearchAlerts {
			return out, nil
		}
		q.Since = next
		q.Limit = maxSearchAlerts - len(out)
	}
}

// recordingsOf asks the edge for a camera's spans and gaps.
func (es *evidenceSearch) recordingsOf(ctx context.Context, edge, camera string, from, to time.Time) (wire.Recordings, error) {
	b, err := es.retr.call(ctx, edge, wire.Request{Method: wire.MethodRecordings, Camera: camera, From: from, To: to}, searchEdgeTimeout)
	if err != nil {
		return wire.Recordings{}, err
	}
	var rec wire.Recordings
	err = json.Unmarshal(b, &rec)
	return rec, err
}

// retrievedRanges lists the ready items of every request by edge and camera.
func (es *evidenceSearch) retrievedRanges() map[string][]RetrievedRange {
	out := map[string][]RetrievedRange{}
	reqs, err := es.retr.list()
	if err != nil {
		return out
	}
	for _, r := range reqs {
		for i, it := range r.Items {
			if it.Status != RetrievalReady || it.Export == nil {
				continue
			}
			k := it.Edge + "\x00" + it.Camera
			out[k] = append(out[k], RetrievedRange{RequestID: r.ID, CaseNumber: r.CaseNumber, Item: i,
				Start: it.Export.Start, End: it.Export.End, SHA256: it.SHA256})
		}
	}
	return out
}
