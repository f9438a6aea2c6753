package central

import (
	"cmp"
	"net/http"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// siteOut is one node of GET /api/v1/sites.
type siteOut struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Level    string        `json:"level"`
	Colour   wire.Severity `json:"colour"`
	Open     OpenCounts    `json:"open"`
	Children []siteOut     `json:"children,omitempty"`
	Edges    []siteEdge    `json:"edges,omitempty"`
	Cameras  []cameraOut   `json:"cameras,omitempty"`
	Gates    []gateOut     `json:"gates,omitempty"`
}

// cameraOut and gateOut are a device's name (as its edge reports it,
// devices.go) and live state.
type cameraOut struct {
	Name string `json:"name,omitempty"`
	wire.CameraStatus
}

type gateOut struct {
	Name string `json:"name,omitempty"`
	wire.GateStatus
}

// siteEdge is an edge under its entrance.
type siteEdge struct {
	ID       string    `json:"id"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Revoked  bool      `json:"revoked,omitempty"`
}

// statusAPI is the overview component: the site tree with its colours,
// edges and devices, and the health probe. New (server.go) builds it.
type statusAPI struct {
	wr      *writer       // the site colours and open counts it owns; consoles connected
	edges   edgeStatuser  // the edges' live state (edgehub.go)
	edgeIDs func() int    // edges enrolled or configured (the registry)
	lastSeq func() uint64 // the alert store's newest seq
}

// edgeStatuser is what the overview knows of the connected edges.
type edgeStatuser interface {
	statuses() []EdgeStatus
	online() int
}

// handleHealthz serves GET /api/v1/healthz.
func (st *statusAPI) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"status":             "ok",
		"time":               time.Now().UTC(),
		"edges_online":       st.edges.online(),
		"edges_configured":   st.edgeIDs(),
		"consoles_connected": st.wr.consoles(),
		"last_seq":           st.lastSeq(),
	})
}

// handleSites serves GET /api/v1/sites: the hierarchy township › village ›
// zone › entrance, each node with its colour (its worst open alert) and
// open counts; entrances with their edges (online, last seen) and their
// cameras and gates (the edges' names and live state from heartbeats).
func (st *statusAPI) handleSites(w http.ResponseWriter, r *http.Request) {
	view, ok := st.wr.sites()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "", "central is shutting down")
		return
	}
	bySite := map[string][]EdgeStatus{}
	for _, e := range st.edges.statuses() {
		bySite[e.SiteID] = append(bySite[e.SiteID], e)
	}
	var build func(id string) siteOut
	build = func(id string) siteOut {
		n := view.nodes[id]
		c := view.colours[id]
		out := siteOut{ID: id, Name: n.Name, Level: n.Level, Colour: c.Colour, Open: c.Open}
		for _, ch := range n.Children {
			out.Children = append(out.Children, build(ch))
		}
		out.Cameras, out.Gates = devices(n, bySite[id])
		for _, e := range bySite[id] {
			out.Edges = append(out.Edges, siteEdge{ID: e.ID, Online: e.Online, LastSeen: e.LastSeen, Revoked: !e.RevokedAt.IsZero()})
		}
		return out
	}
	sites := []siteOut{}
	for _, root := range view.roots {
		sites = append(sites, build(root))
	}
	// Edges at a site no alert has named yet still show, as their own roots.
	for site, edges := range bySite {
		if _, ok := view.nodes[site]; ok || site == "" {
			continue
		}
		out := siteOut{ID: site, Name: site, Level: LevelSite, Colour: wire.Green}
		out.Cameras, out.Gates = devices(siteNode{}, edges)
		for _, e := range edges {
			out.Edges = append(out.Edges, siteEdge{ID: e.ID, Online: e.Online, LastSeen: e.LastSeen, Revoked: !e.RevokedAt.IsZero()})
		}
		sites = append(sites, out)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": sites})
}

// devices lists an entrance's cameras and gates as its edges report them,
// named by the edges (EdgeStatus carries the names, devices.go). Devices
// central.yaml still lists under the entrance (deprecated) come first,
// offline until reported, under the edge's name once it has given one.
func devices(n siteNode, edges []EdgeStatus) ([]cameraOut, []gateOut) {
	cams := map[string]wire.CameraStatus{}
	gates := map[string]wire.GateStatus{}
	var camOrder, gateOrder []string
	for _, e := range edges {
		for _, c := range e.Cameras {
			if _, ok := cams[c.ID]; !ok {
				camOrder = append(camOrder, c.ID)
			}
			cams[c.ID] = c
		}
		for _, g := range e.Gates {
			if _, ok := gates[g.ID]; !ok {
				gateOrder = append(gateOrder, g.ID)
			}
			gates[g.ID] = g
		}
	}
	var outC []cameraOut
	var outG []gateOut
	named := map[string]bool{}
	for _, d := range n.Cameras {
		named[d.ID] = true
		c, ok := cams[d.ID]
		if !ok {
			c = wire.CameraStatus{ID: d.ID}
		}
		outC = append(outC, cameraOut{Name: cmp.Or(c.Name, d.Name), CameraStatus: c})
	}
	for _, id := range camOrder {
		if !named[id] {
			outC = append(outC, cameraOut{Name: cams[id].Name, CameraStatus: cams[id]})
		}
	}
	for _, d := range n.Gates {
		named[d.ID] = true
		g, ok := gates[d.ID]
		if !ok {
			g = wire.GateStatus{ID: d.ID, State: "unknown"}
		}
		outG = append(outG, gateOut{Name: cmp.Or(g.Name, d.Name), GateStatus: g})
	}
	for _, id := range gateOrder {
		if !named[id] {
			outG = append(outG, gateOut{Name: gates[id].Name, GateStatus: gates[id]})
		}
	}
	return outC, outG
}
