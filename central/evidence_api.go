package central

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/central/evidence"
)

// Evidence API (roles in routes.go's routeTable):
//
//	GET  /api/v1/evidence/search                        timelines (search.go)
//	POST /api/v1/evidence/requests                      {case_number, reason, cameras: [{edge, camera}], from, to}
//	GET  /api/v1/evidence/requests                      every request, newest first
//	GET  /api/v1/evidence/requests/{id}                 one request and its items' status
//	GET  /api/v1/evidence/requests/{id}/items/{item}/video.mp4   a retrieved, verified MP4 (an item per part of a camera's range)
//	GET  /api/v1/evidence/requests/{id}/bundle.zip      the signed bundle (central/evidence)
//	POST /api/v1/evidence/requests/{id}/share           {users: [name]}: requester or admin
//
// A request, its items, videos and bundle are seen only by its requester,
// the users it was shared with, supervisors and admins (canSeeEvidence);
// to anyone else it does not exist (404), and the list leaves it out.

const (
	maxCaseNumber      = 100
	maxReason          = 2000
	maxRequestCameras  = 32
	maxRequestDuration = 2 * time.Hour // the edge's longest export
	futureSlack        = 5 * time.Second
)

// rolesEvidence may search and read requests (each request only as
// canSeeEvidence allows: a supervisor every one, for oversight); rolesExport
// may also make and share requests.
var (
	rolesEvidence = []string{RoleSupervisor, RolePolice, RoleAdmin}
	rolesExport   = []string{RolePolice, RoleAdmin}
)

// evidenceAPI is the evidence component: requests, their videos
// and signed bundles, sharing, and the evidence public key. It holds only
// what those handlers use; New (server.go) builds it.
type evidenceAPI struct {
	files    evidenceFiles   // where retrieved videos and contact sheets lie
	township *TownshipConfig // site and entrance names (nil: none)
	devices  *deviceBook     // camera and gate names the edges reported
	store    evidenceStore
	edges    evidenceEdges
	users    userLookup
	retr     *retrieval         // the retrieval queue (retrieval.go)
	key      ed25519.PrivateKey // signs bundles (evidence_key.go)
	auditLog *audit.Log         // a bundle's chain of custody
	rec      auditRecorder      // entries for what the handlers do
	log      *slog.Logger
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// evidenceStore is what the evidence API reads from the alert store.
type evidenceStore interface {
	Get(id string) (Record, error)
	Query(q AlertQuery) ([]Record, uint64, error)
	Events(q EventQuery) ([]StoredEvent, time.Time, error)
}

// evidenceEdges is what the evidence API knows of edges: the registry's
// records and the hub's live status.
type evidenceEdges interface {
	get(id string) (EdgeRecord, bool)
	statuses() []EdgeStatus
}

// userLookup finds a console user by name.
type userLookup interface {
	get(name string) (User, bool)
}

// auditRecorder records a request's principal's actions in the audit log
// (audit_hooks.go); auditOrRefuse answers 503 when the entry cannot be
// written.
type auditRecorder interface {
	audit(r *http.Request, action, target string, details any) error
	auditOrRefuse(w http.ResponseWriter, r *http.Request, action, target string, details any) bool
}

// evidenceEdgeSource joins the registry and the edge hub for evidenceEdges.
type evidenceEdgeSource struct {
	reg *registry
	hub *edgeHub
}

func (e evidenceEdgeSource) get(id string) (EdgeRecord, bool) { return e.reg.get(id) }
func (e evidenceEdgeSource) statuses() []EdgeStatus           { return e.hub.statuses() }

// maxShareUsers bounds one request's shared_with list.
const maxShareUsers = 32

// canSeeEvidence reports whether p may see req: supervisors and admins see
// every request, anyone else only those they made or that were shared
// with them.
func canSeeEvidence(p *principal, req EvidenceRequest) bool {
	if p == nil {
		return false
	}
	if p.Role == RoleAdmin || p.Role == RoleSupervisor {
		return true
	}
	return p.Name != "" && (p.Name == req.Requester || slices.Contains(req.SharedWith, p.Name))
}

// evidenceRequestBody is POST /api/v1/evidence/requests.
type evidenceRequestBody struct {
	CaseNumber string `json:"case_number"`
	Reason     string `json:"reason"`
	Cameras    []struct {
		Edge   string `json:"edge"`
		Camera string `json:"camera"`
	} `json:"cameras"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// handleCreateEvidenceRequest serves POST /api/v1/evidence/requests.
func (api *evidenceAPI) handleCreateEvidenceRequest(w http.ResponseWriter, r *http.Request) {
	var body evidenceRequestBody
	if !readBody(w, r, &body) {
		return
	}
	body.CaseNumber, body.Reason = strings.TrimSpace(body.CaseNumber), strings.TrimSpace(body.Reason)
	now := time.Now()
	var errFrom, errTo error
	if !body.From.IsZero() {
		body.From, errFrom = boundTime("from", timeStart, body.From, now)
	}
	if !body.To.IsZero() {
		body.To, errTo = boundTime("to", timeEnd, body.To, now)
	}
	switch {
	case errFrom != nil:
		writeError(w, http.StatusBadRequest, "from", errFrom.Error())
		return
	case errTo != nil:
		writeError(w, http.StatusBadRequest, "to", errTo.Error())
		return
	case body.CaseNumber == "" || utf8.RuneCountInString(body.CaseNumber) > maxCaseNumber:
		writeError(w, http.StatusBadRequest, "case_number", "case_number is needed (at most 100 characters)")
		return
	case body.Reason == "" || utf8.RuneCountInString(body.Reason) > maxReason:
		writeError(w, http.StatusBadRequest, "reason", "reason is needed (at most 2000 characters)")
		return
	case len(body.Cameras) == 0 || len(body.Cameras) > maxRequestCameras:
		writeError(w, http.StatusBadRequest, "cameras", "cameras: 1 to 32 {edge, camera}")
		return
	case body.From.IsZero() || body.To.IsZero() || !body.To.After(body.From):
		writeError(w, http.StatusBadRequest, "to", "from and to are needed, from before to")
		return
	case body.To.Sub(body.From) > maxRequestDuration:
		writeError(w, http.StatusBadRequest, "to", "a request may cover at most 2 hours; make several")
		return
	case body.To.After(now.Add(futureSlack)):
		writeError(w, http.StatusBadRequest, "to", "to lies in the future")
		return
	}
	p := principalOf(r)
	req := EvidenceRequest{CaseNumber: body.CaseNumber, Reason: body.Reason, From: body.From.UTC(), To: body.To.UTC(), Items: []RetrievalItem{}}
	if p != nil {
		req.Requester, req.RequesterRole = p.Name, p.Role
	}
	for i, c := range body.Cameras {
		rec, ok := api.edges.get(c.Edge)
		if !ok || c.Camera == "" {
			writeError(w, http.StatusBadRequest, "cameras", "cameras["+strconv.Itoa(i)+"]: unknown edge or empty camera")
			return
		}
		if slices.ContainsFunc(req.Items, func(it RetrievalItem) bool { return it.Edge == c.Edge && it.Camera == c.Camera }) {
			writeError(w, http.StatusBadRequest, "cameras", "cameras["+strconv.Itoa(i)+"]: named twice")
			return
		}
		req.Items = append(req.Items, RetrievalItem{Edge: c.Edge, Camera: c.Camera, SiteID: rec.SiteID})
	}
	// The chain of custody first: a request whose entry cannot be written
	// is refused before it exists.
	req.ID = newEvidenceID(now)
	if !api.rec.auditOrRefuse(w, r, "export", req.ID, map[string]any{"case_number": req.CaseNumber, "reason": req.Reason,
		"from": req.From, "to": req.To, "cameras": body.Cameras}) {
		return
	}
	created, err := api.retr.create(req)
	if err != nil {
		api.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, created.view())
}

// handleEvidenceRequests serves GET /api/v1/evidence/requests.
func (api *evidenceAPI) handleEvidenceRequests(w http.ResponseWriter, r *http.Request) {
	reqs, err := api.retr.list()
	if err != nil {
		api.internalError(w, r, err)
		return
	}
	p := principalOf(r)
	out := make([]EvidenceRequest, 0, len(reqs))
	for i := len(reqs) - 1; i >= 0; i-- {
		if canSeeEvidence(p, reqs[i]) {
			out = append(out, reqs[i].view())
		}
	}
	api.rec.audit(r, "view", "evidence_requests", nil)
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
}

// handleEvidenceRequest serves GET /api/v1/evidence/requests/{id}.
func (api *evidenceAPI) handleEvidenceRequest(w http.ResponseWriter, r *http.Request) {
	req, ok := api.evidenceRequest(w, r)
	if !ok {
		return
	}
	api.rec.audit(r, "view", req.ID, nil)
	writeJSON(w, http.StatusOK, req.view())
}

// evidenceRequest reads the request the path names, answering 404 when it
// does not exist or the principal may not see it (the same answer, so its
// existence is not revealed).
func (api *evidenceAPI) evidenceRequest(w http.ResponseWriter, r *http.Request) (EvidenceRequest, bool) {
	req, err := api.retr.get(r.PathValue("id"))
	if errors.Is(err, ErrNotFound) || (err == nil && !canSeeEvidence(principalOf(r), req)) {
		writeError(w, http.StatusNotFound, "", "no evidence request "+r.PathValue("id"))
		return EvidenceRequest{}, false
	} else if err != nil {
		api.internalError(w, r, err)
		return req, false
	}
	return req, true
}

// handleShareEvidence serves POST /api/v1/evidence/requests/{id}/share
// with {"users": ["name", ...]}: the requester or an admin lets those
// users (police liaisons; supervisors and admins see every request anyway)
// see the request. Sharing is recorded in the audit log before it applies.
func (api *evidenceAPI) handleShareEvidence(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Users []string `json:"users"`
	}
	if !readBody(w, r, &body) {
		return
	}
	req, ok := api.evidenceRequest(w, r)
	if !ok {
		return
	}
	p := principalOf(r)
	if p == nil || (p.Role != RoleAdmin && p.Name != req.Requester) {
		writeError(w, http.StatusForbidden, "", "only the requester ("+req.Requester+") or an admin may share this request")
		return
	}
	if len(body.Users) == 0 || len(body.Users) > maxShareUsers {
		writeError(w, http.StatusBadRequest, "users", "users: 1 to 32 user names")
		return
	}
	var add []string
	for _, raw := range body.Users {
		name := strings.ToLower(strings.TrimSpace(raw))
		u, ok := api.users.get(name)
		switch {
		case !ok:
			writeError(w, http.StatusBadRequest, "users", "no user "+strconv.Quote(raw))
			return
		case !slices.Contains(rolesEvidence, u.Role):
			writeError(w, http.StatusBadRequest, "users", name+" is a "+u.Role+", whose role may not read evidence")
			return
		}
		if name != req.Requester && !slices.Contains(req.SharedWith, name) && !slices.Contains(add, name) {
			add = append(add, name)
		}
	}
	if len(req.SharedWith)+len(add) > maxShareUsers {
		writeError(w, http.StatusBadRequest, "users", "a request may be shared with at most 32 users")
		return
	}
	if len(add) > 0 && !api.rec.auditOrRefuse(w, r, auditActionShare, req.ID, map[string]any{"case_number": req.CaseNumber, "users": add}) {
		return
	}
	if len(add) > 0 {
		var err error
		req, err = api.retr.share(req.ID, add)
		if err != nil {
			api.internalError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, req.view())
}

// handleEvidenceVideo serves GET /api/v1/evidence/requests/{id}/items/{item}/video.mp4.
func (api *evidenceAPI) handleEvidenceVideo(w http.ResponseWriter, r *http.Request) {
	req, ok := api.evidenceRequest(w, r)
	if !ok {
		return
	}
	i, err := strconv.Atoi(r.PathValue("item"))
	if err != nil || i < 0 || i >= len(req.Items) {
		writeError(w, http.StatusNotFound, "item", "no such item in "+req.ID)
		return
	}
	it := req.Items[i]
	if it.Status != RetrievalReady {
		writeError(w, http.StatusConflict, "item", "the video is not at central yet ("+it.Status+")")
		return
	}
	f, err := api.files.open(it.File)
	if err != nil {
		api.internalError(w, r, err)
		return
	}
	defer f.Close()
	if !api.rec.auditOrRefuse(w, r, "download", req.ID+"/"+strconv.Itoa(i), map[string]any{"edge": it.Edge, "camera": it.Camera, "sha256": it.SHA256}) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", `attachment; filename="`+filepath.Base(it.File)+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Vigil-SHA256", it.SHA256)
	http.ServeContent(w, r, "", it.ReadyAt, io.NewSectionReader(f, 0, f.Size()))
}

// handleEvidenceBundle serves GET /api/v1/evidence/requests/{id}/bundle.zip:
// the signed bundle of a ready request, streamed after the download's
// audit entry is written (so the custody includes it).
func (api *evidenceAPI) handleEvidenceBundle(w http.ResponseWriter, r *http.Request) {
	req, ok := api.evidenceRequest(w, r)
	if !ok {
		return
	}
	if req.Status != RetrievalReady {
		writeError(w, http.StatusConflict, "", "the request is not ready ("+req.Status+")")
		return
	}
	api.serveBundle(w, r, req) // evidence_key.go
}

// bundleCamera is what the bundle writer (central/evidence) needs for one
// retrieved camera; its fields match evidence.Camera one for one, except
// that ClockOffset here is central minus edge (the wire's convention) and
// evidence.Camera's is edge minus central: negate it.
type bundleCamera struct {
	SiteID, SiteName         string
	EntranceID, EntranceName string
	CameraID, CameraName     string
	EdgeID                   string
	RequestedStart           time.Time
	RequestedEnd             time.Time
	ActualStart, ActualEnd   time.Time
	ClockOffset              time.Duration // central − edge, as the edge measured it
	ClockOffsetSource        string
	TimeSource               string // rtcp or arrival
	Codec                    string
	Width, Height            int
	Frames                   int
	SHA256                   string
	VideoPath                string            // absolute path of the verified MP4
	ContactSheetPath         string            // absolute path of the edge's contact sheet, if any
	ContactSheetNote         string            // why there is none
	Alerts                   []json.RawMessage // Record JSON with its workflow history
	GateEvents               []json.RawMessage // StoredEvent JSON
}

// bundleCameras gathers a ready request's cameras for its bundle: the
// verified video, the manifest facts the edge stated, and the alerts and
// gate events of the edge in the actual range with their workflow. A
// camera whose range came in parts (it changed codec or picture size)
// has one entry per part, in time order, each with its own actual range,
// codec and size; the request's range is the requested one of each.
func (api *evidenceAPI) bundleCameras(req EvidenceRequest) ([]bundleCamera, error) {
	tree := api.bundleSiteTree()
	// Cameras in the order requested, each camera's parts together.
	var order []int
	listed := map[int]bool{}
	for i := range req.Items {
		if !listed[i] {
			for _, k := range req.parts(i) {
				listed[k] = true
				order = append(order, k)
			}
		}
	}
	var out []bundleCamera
	for _, i := range order {
		it := req.Items[i]
		if it.Status != RetrievalReady || it.Export == nil {
			return nil, errors.New("evidence: " + it.Edge + "/" + it.Camera + " is not retrieved (" + it.Status + ")")
		}
		m := it.Export
		c := bundleCamera{EntranceID: it.SiteID, CameraID: it.Camera, CameraName: it.Camera, EdgeID: it.Edge,
			RequestedStart: req.From, RequestedEnd: req.To, ActualStart: m.Start, ActualEnd: m.End,
			ClockOffset: time.Duration(m.ClockOffsetMS) * time.Millisecond, ClockOffsetSource: m.ClockOffsetSource, TimeSource: m.TimeSource,
			Codec: strings.ToLower(m.Codec), Width: m.Width, Height: m.Height, Frames: m.Frames, SHA256: it.SHA256,
			VideoPath: it.File, Alerts: []json.RawMessage{}, GateEvents: []json.RawMessage{}}
		tree.nameCamera(&c, it)
		switch {
		case it.ContactSheet != "":
			c.ContactSheetPath = it.ContactSheet
		case it.ContactSheetNote != "":
			c.ContactSheetNote = it.ContactSheetNote
		default:
			c.ContactSheetNote = "retrieved before central kept the edge's contact sheets"
		}
		from, to := bundleWindow(&req, i)
		if err := api.linkRecords(&c, it, from, to); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// bundleWindow is the time range whose alerts and gate events go with
// item i's video: the video's actual range, widened to the requested
// start for the camera's first part and to the requested end for its
// last, so what happened in the window asked for is in the bundle even
// where the video starts late or ends early (nothing was recorded then).
// Parts in between keep their own ranges, so no event is listed twice.
func bundleWindow(req *EvidenceRequest, i int) (time.Time, time.Time) {
	m := req.Items[i].Export
	from, to := m.Start, m.End
	parts := req.parts(i)
	if parts[0] == i && req.From.Before(from) {
		from = req.From
	}
	if parts[len(parts)-1] == i && req.To.After(to) {
		to = req.To
	}
	return from, to
}

// gateKindPrefix starts the kind of every gate event (gates/edgewire):
// passages and every gate alert (forced, held open, SOS, closed …), which
// edges also log as events.
const gateKindPrefix = "gate."

// linkRecords lists in c the alerts of item it's edge in [from, to) with
// their workflow, and every gate event of the edge in the range, whatever
// its kind; it sets c's time source from the camera's own alerts.
func (api *evidenceAPI) linkRecords(c *bundleCamera, it RetrievalItem, from, to time.Time) error {
	alerts, err := searchAlerts(api.store, EdgeStatus{ID: it.Edge, SiteID: it.SiteID}, from, to)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		b, _ := json.Marshal(a)
		c.Alerts = append(c.Alerts, b)
		if c.TimeSource == "" && a.Source == it.Camera {
			c.TimeSource = a.TimeSource
		}
	}
	if c.TimeSource == "" {
		c.TimeSource = "arrival" // the edge's clock: the weaker claim
	}
	events, _, err := api.store.Events(EventQuery{From: from, To: to, Edge: it.Edge, Limit: maxSearchEvents})
	if err != nil {
		return err
	}
	for _, e := range events {
		if !strings.HasPrefix(e.Kind, gateKindPrefix) {
			continue // not a gate's: the manifest's list is gate_events
		}
		b, _ := json.Marshal(e)
		c.GateEvents = append(c.GateEvents, b)
	}
	return nil
}

// bundleNames names the places and cameras in bundles: sites and
// entrances from the township's tree, cameras as their edges name them.
type bundleNames struct {
	tree    *siteTree
	devices *deviceBook
}

// bundleSiteTree is the township's site tree and the edges' device names,
// for names in bundles.
func (api *evidenceAPI) bundleSiteTree() bundleNames {
	return newBundleNames(api.township, api.devices)
}

// newBundleNames is the bundle names of township's tree and the edges'
// device names (devices may be nil).
func newBundleNames(township *TownshipConfig, devices *deviceBook) bundleNames {
	tree := &siteTree{nodes: map[string]*siteNode{}}
	if township != nil {
		tree, _ = buildSiteTree(township) // checked by Validate
	}
	return bundleNames{tree: tree, devices: devices}
}

// nameCamera fills c's site, entrance and camera names (and site ID) for
// the retrieved item it: the camera's name is the one its edge reported
// last (devices.go), else its ID.
func (b bundleNames) nameCamera(c *bundleCamera, it RetrievalItem) {
	tree := b.tree
	if b.devices != nil {
		if name := b.devices.name(it.Edge, it.SiteID, DeviceCamera, it.Camera); name != "" {
			c.CameraName = name
		}
	}
	if n := tree.nodes[it.SiteID]; n != nil {
		c.EntranceName = n.Name
		// The site is the entrance's village.
		for p := tree.nodes[n.Parent]; p != nil; p = tree.nodes[p.Parent] {
			if p.Level == LevelVillage {
				c.SiteID, c.SiteName = p.ID, p.Name
			}
		}
	}
	if c.SiteID == "" {
		c.SiteID = it.SiteID
	}
}

// buildBundle writes the signed bundle of a ready request to w with
// central/evidence: the verified videos, the facts the edge stated, the
// linked alerts and gate events, and as chain of custody the audit log
// from the request's first entry to its head. key is central's evidence
// key and log its audit log; the bundle endpoint calls it once the
// server holds both.
func (api *evidenceAPI) buildBundle(ctx context.Context, w io.Writer, req EvidenceRequest, key ed25519.PrivateKey, log *audit.Log) (*evidence.Manifest, error) {
	cams, err := api.bundleCameras(req)
	if err != nil {
		return nil, err
	}
	first := uint64(1)
	if es, err := log.List(ctx, audit.Filter{Target: req.ID, Limit: 1}); err == nil && len(es) > 0 {
		first = es[0].Seq
	}
	var custody bytes.Buffer
	if _, err := log.Export(ctx, &custody, first, 0); err != nil {
		return nil, fmt.Errorf("evidence: chain of custody: %w", err)
	}
	er := evidence.Request{BundleID: req.ID, CaseNumber: req.CaseNumber, Reason: req.Reason,
		Requester: audit.Actor{User: req.Requester, Role: req.RequesterRole}, Software: bundleSoftware,
		Key: key, Custody: custody.Bytes(), Open: api.files.open}
	for _, c := range cams {
		er.Cameras = append(er.Cameras, evidence.Camera{
			SiteID: c.SiteID, SiteName: c.SiteName, EntranceID: c.EntranceID, EntranceName: c.EntranceName,
			CameraID: c.CameraID, CameraName: c.CameraName, EdgeID: c.EdgeID,
			Requested: evidence.Range{Start: c.RequestedStart, End: c.RequestedEnd},
			Actual:    evidence.Range{Start: c.ActualStart, End: c.ActualEnd},
			// The bundle states edge minus central; the wire central minus edge.
			ClockOffset: -c.ClockOffset, ClockSource: c.TimeSource,
			Codec: c.Codec, Width: c.Width, Height: c.Height, VideoPath: c.VideoPath,
			ContactSheetPath: c.ContactSheetPath, ContactSheetNote: c.ContactSheetNote,
			Alerts: c.Alerts, GateEvents: c.GateEvents,
		})
	}
	return evidence.Build(ctx, w, er)
}

// bundleSoftware names central in a bundle's manifest.
const bundleSoftware = "vigil-central/0.1"
