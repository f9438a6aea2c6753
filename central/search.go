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

// handleEvidenceSearch serves GET /api/v1/evidence/search.
func (api *evidenceAPI) handleEvidenceSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, ok := queryTime(w, r, "from")
	if !ok {
		return
	}
	to, ok := queryTime(w, r, "to")
	if !ok {
		return
	}
	res := SearchResult{Edges: []SearchEdge{}}
	if id := q.Get("alert"); id != "" {
		rec, err := api.store.Get(id)
		if errors.Is(err, ErrNotFound) {
			writeError(w, http.StatusNotFound, "alert", "no alert "+id)
			return
		} else if err != nil {
			api.internalError(w, r, err)
			return
		}
		res.Alert = &rec
		if from.IsZero() {
			from = rec.Time.Add(-searchAlertBefore)
		}
		if to.IsZero() {
			end := rec.Time
			if rec.Ended.After(end) {
				end = rec.Ended
			}
			to = end.Add(searchAlertAfter)
		}
	}
	switch {
	case from.IsZero() || to.IsZero():
		writeError(w, http.StatusBadRequest, "from", "from and to are needed (or an alert)")
		return
	case !to.After(from):
		writeError(w, http.StatusBadRequest, "to", "to must be after from")
		return
	case to.Sub(from) > maxSearchWindow:
		writeError(w, http.StatusBadRequest, "to", "the window may be at most 31 days")
		return
	}
	res.From, res.To = from.UTC(), to.UTC()
	site, entrance, camera := q.Get("site"), q.Get("entrance"), q.Get("camera")
	camEdge := ""
	if e, c, ok := strings.Cut(camera, "/"); ok { // "edge/camera" also names a camera
		camEdge, camera = e, c
	}
	tree := &siteTree{nodes: map[string]*siteNode{}}
	if api.township != nil {
		tree, _ = buildSiteTree(api.township) // checked by Validate
	}
	retrieved := api.retrievedRanges()

	var wg sync.WaitGroup
	for _, e := range api.edges.statuses() {
		switch {
		case entrance != "" && e.SiteID != entrance,
			site != "" && e.SiteID != site && !strings.HasPrefix(e.SiteID, site+"/"),
			res.Alert != nil && e.ID != res.Alert.EdgeID,
			camEdge != "" && e.ID != camEdge:
			continue
		}
		se := SearchEdge{ID: e.ID, SiteID: e.SiteID, Online: e.Online, LastSeen: e.LastSeen, ClockOffsetMS: e.ClockOffsetMS,
			Cameras: []CameraTimeline{}, Gates: []GateTimeline{}, OtherAlerts: []Record{}, OtherEvents: []StoredEvent{}}
		// Cameras and gates: what the edge reports, under the edge's names
		// (devices.go), and any central.yaml still lists at its entrance (deprecated).
		var cams, gates []DeviceConfig
		addDev := func(list *[]DeviceConfig, d DeviceConfig) {
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
				addDev(&cams, c)
			}
			for _, g := range n.Gates {
				addDev(&gates, g)
			}
		}
		for _, c := range e.Cameras {
			addDev(&cams, DeviceConfig{ID: c.ID, Name: c.Name})
		}
		for _, g := range e.Gates {
			addDev(&gates, DeviceConfig{ID: g.ID, Name: g.Name})
		}
		alerts, err := api.searchAlerts(e, from, to)
		if err != nil {
			api.internalError(w, r, err)
			return
		}
		events, _, err := api.store.Events(EventQuery{From: from, To: to, Edge: e.ID, Limit: maxSearchEvents})
		if err != nil {
			api.internalError(w, r, err)
			return
		}
		isCam := func(id string) bool {
			return slices.ContainsFunc(cams, func(d DeviceConfig) bool { return d.ID == id })
		}
		if camera != "" {
			cams = slices.DeleteFunc(cams, func(d DeviceConfig) bool { return d.ID != camera })
			if len(cams) == 0 {
				continue
			}
		} else if res.Alert != nil && isCam(res.Alert.Source) {
			cams = slices.DeleteFunc(cams, func(d DeviceConfig) bool { return d.ID != res.Alert.Source })
		}
		for _, c := range cams {
			ct := CameraTimeline{ID: c.ID, Name: c.Name, Alerts: []Record{}, Events: []StoredEvent{}, Retrieved: []RetrievedRange{}}
			for _, rr := range retrieved[e.ID+"\x00"+c.ID] {
				if rr.End.After(from) && rr.Start.Before(to) {
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
			case camera == "" && !isCam(a.Source):
				se.OtherAlerts = append(se.OtherAlerts, a)
			}
		}
		for _, ev := range events {
			switch {
			case placeEvent(se.Cameras, ev, func(c *CameraTimeline) (string, *[]StoredEvent) { return c.ID, &c.Events }):
			case placeEvent(se.Gates, ev, func(g *GateTimeline) (string, *[]StoredEvent) { return g.ID, &g.Events }):
			case camera == "" && !isCam(ev.Source):
				se.OtherEvents = append(se.OtherEvents, ev)
			}
		}
		res.Edges = append(res.Edges, se)
		idx := len(res.Edges) - 1
		for ci := range se.Cameras {
			ct := &res.Edges[idx].Cameras[ci]
			if !e.Online {
				ct.RecordingsStatus = "edge_offline"
				ct.RecordingsError = "the edge is offline: central shows the alerts, events and retrieved copies it holds"
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec, err := api.recordingsOf(r.Context(), e.ID, ct.ID, from, to)
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
	wg.Wait()
	api.rec.audit(r, "search", "evidence", map[string]any{"query": r.URL.RawQuery, "edges": len(res.Edges)})
	writeJSON(w, http.StatusOK, res)
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
func (api *evidenceAPI) searchAlerts(e EdgeStatus, from, to time.Time) ([]Record, error) {
	out := []Record{}
	q := AlertQuery{Limit: maxSearchAlerts, Site: e.SiteID, From: from, To: to}
	for {
		recs, next, err := api.store.Query(q)
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
func (api *evidenceAPI) recordingsOf(ctx context.Context, edge, camera string, from, to time.Time) (wire.Recordings, error) {
	b, err := api.retr.call(ctx, edge, wire.Request{Method: wire.MethodRecordings, Camera: camera, From: from, To: to}, searchEdgeTimeout)
	if err != nil {
		return wire.Recordings{}, err
	}
	var rec wire.Recordings
	err = json.Unmarshal(b, &rec)
	return rec, err
}

// retrievedRanges lists the ready items of every request by edge and camera.
func (api *evidenceAPI) retrievedRanges() map[string][]RetrievedRange {
	out := map[string][]RetrievedRange{}
	reqs, err := api.retr.list()
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
