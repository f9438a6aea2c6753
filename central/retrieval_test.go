package central

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Retrieval through a real edge (chunks corrupted, the link cut, central
// restarted mid-fetch, a camera changing inside the range) is tested end
// to end in e2e/retrieval_test.go; these tests are central's own.

// Every role against every evidence endpoint, enforced by central.
func TestEvidenceRoles(t *testing.T) {
	s := startServer(t)
	now := time.Now().UTC()
	create := map[string]any{"case_number": "C-7", "reason": "test", "from": now.Add(-time.Minute), "to": now.Add(-30 * time.Second),
		"cameras": []map[string]string{{"edge": northID, "camera": "gate-cam"}}}
	// An existing request for the read endpoints (the edge is offline: it waits).
	admin := signIn(t, s, "root", RoleAdmin)
	resp, b := admin.do(http.MethodPost, "/api/v1/evidence/requests", create)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin create: %d %s", resp.StatusCode, b)
	}
	var r EvidenceRequest
	_ = json.Unmarshal(b, &r)
	if r.Status != RetrievalWaiting || r.Requester != "root" {
		t.Errorf("created: %+v", r)
	}
	search := "/api/v1/evidence/search?from=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(now.Format(time.RFC3339))
	type call struct {
		method, path string
		body         any
		ok           int
	}
	calls := []call{
		{http.MethodGet, search, nil, http.StatusOK},
		{http.MethodPost, "/api/v1/evidence/requests", create, http.StatusCreated},
		{http.MethodGet, "/api/v1/evidence/requests", nil, http.StatusOK},
		{http.MethodGet, "/api/v1/evidence/requests/" + r.ID, nil, http.StatusOK},
		{http.MethodGet, "/api/v1/evidence/requests/" + r.ID + "/items/0/video.mp4", nil, http.StatusConflict}, // not fetched yet
		{http.MethodGet, "/api/v1/evidence/requests/" + r.ID + "/bundle.zip", nil, http.StatusConflict},
	}
	allowed := map[string][]bool{ // per call above
		RoleGuard:      {false, false, false, false, false, false},
		RoleSupervisor: {true, false, true, true, true, true}, // reads every request; makes none
		RolePolice:     {true, true, true, true, true, true},
		RoleInstaller:  {false, false, false, false, false, false},
		RoleAdmin:      {true, true, true, true, true, true},
	}
	for _, role := range Roles {
		br := signIn(t, s, "u-"+strings.ReplaceAll(role, "_", "-"), role)
		for i, c := range calls {
			want := http.StatusForbidden
			if allowed[role][i] {
				want = c.ok
			}
			if role == RolePolice && strings.Contains(c.path, r.ID) {
				want = http.StatusNotFound // the admin's request is not the liaison's to see
			}
			resp, b := br.do(c.method, c.path, c.body)
			if resp.StatusCode != want {
				t.Errorf("%s: %s %s: %d %s, want %d", role, c.method, c.path, resp.StatusCode, b, want)
			}
		}
	}
	for _, c := range calls {
		req, _ := http.NewRequest(c.method, "http://"+s.Addr()+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("no session: %s %s: %d, want 401", c.method, c.path, resp.StatusCode)
		}
	}
	// Bad requests name what is wrong.
	for _, bad := range []map[string]any{
		{"reason": "x", "from": now.Add(-time.Minute), "to": now, "cameras": create["cameras"]},
		{"case_number": "C", "reason": "x", "from": now, "to": now.Add(-time.Minute), "cameras": create["cameras"]},
		{"case_number": "C", "reason": "x", "from": now.Add(-3 * time.Hour), "to": now, "cameras": create["cameras"]},
		{"case_number": "C", "reason": "x", "from": now.Add(-time.Minute), "to": now, "cameras": []map[string]string{{"edge": "nobody", "camera": "c"}}},
	} {
		if resp, b := admin.do(http.MethodPost, "/api/v1/evidence/requests", bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("bad request %v: %d %s", bad, resp.StatusCode, b)
		}
	}
}

// The parts of a camera's range as the worker sees them: a later part is
// added once (describing the first again only moves a part not yet
// described), takes its own range and file, and a part at central waits
// for the others before its pins go. Items stored before parts existed
// ask for the request's range.
func TestRetrievalParts(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r := EvidenceRequest{ID: "ev-1", From: at(5), To: at(15), Items: []RetrievalItem{
		{Edge: northID, Camera: "gate-cam", Status: RetrievalFetching},
		{Edge: northID, Camera: "yard-cam", Status: RetrievalQueued},
	}}
	if from, to := r.itemRange(&r.Items[0]); !from.Equal(at(5)) || !to.Equal(at(15)) {
		t.Errorf("an item stored before parts asks for %v..%v", from, to)
	}
	r.addPart(0, at(9), at(15))
	r.addPart(0, at(10), at(15)) // described again: the same part, moved
	if len(r.Items) != 3 || r.Items[2].Part != 1 || !r.Items[2].From.Equal(at(10)) || r.Items[2].Camera != "gate-cam" {
		t.Fatalf("items after adding a part: %+v", r.Items)
	}
	r.Items[2].Export = &wire.ExportManifest{Start: at(10), End: at(15)}
	r.addPart(0, at(11), at(15)) // a described part stays as it is
	if !r.Items[2].From.Equal(at(10)) {
		t.Errorf("a described part moved to %v", r.Items[2].From)
	}
	if from, to := r.itemRange(&r.Items[2]); !from.Equal(at(10)) || !to.Equal(at(15)) {
		t.Errorf("the second part asks for %v..%v", from, to)
	}
	if got := r.parts(2); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("parts of the camera: %v", got)
	}
	if a, b := itemPath(r.ID, &r.Items[0]), itemPath(r.ID, &r.Items[2]); a == b || !strings.HasSuffix(b, "--gate-cam+part2.mp4") {
		t.Errorf("files %s and %s", a, b)
	}
	// The first part at central waits for the second before its pins go.
	r.Items[0].Status, r.Items[0].Export = RetrievalReady, &wire.ExportManifest{Start: at(4), End: at(10), Next: at(10)}
	if r.workable(0) || !r.workable(2) || r.partsReady(0) {
		t.Errorf("with the second part to fetch: workable %v/%v, parts ready %v", r.workable(0), r.workable(2), r.partsReady(0))
	}
	r.Items[2].Status = RetrievalReady
	if !r.workable(0) || !r.workable(2) || !r.partsReady(0) || r.overall() == RetrievalReady {
		t.Errorf("both parts at central: workable %v/%v, parts ready %v, request %s", r.workable(0), r.workable(2), r.partsReady(0), r.overall())
	}
	r.Items[0].PinsReleased, r.Items[2].PinsReleased = true, true
	if r.workable(0) || r.workable(2) {
		t.Error("released parts are still worked on")
	}
	// A failed part: the other one is not worked on again.
	r.Items[0].PinsReleased, r.Items[2].Status = false, RetrievalFailed
	if r.workable(0) || r.overall() != RetrievalFailed {
		t.Errorf("with the second part failed: workable %v, request %s", r.workable(0), r.overall())
	}
}
