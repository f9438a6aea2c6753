package central

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/wire"
)

// The alert history through GET /api/v1/alerts: camera= (source or a
// linked camera), gate= (source or gate state), handled_by= (a workflow
// step by that user), and order=desc paged with before=next to 0.
func TestAlertHistoryFilters(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	send := func(id, source string, links []string, gate string) {
		a := testAlert(northID, id)
		a.Source = source
		for _, l := range links {
			a.Links = append(a.Links, wire.Link{Camera: l})
		}
		if gate != "" {
			a.Gate = &wire.GateState{Gate: gate, Door: "closed"}
		}
		e.sendAlert(a)
	}
	send("a-1", "cam-a", nil, "")
	send("a-2", "barrier", []string{"cam-a"}, "")
	send("a-3", "cam-b", nil, "barrier")
	send("a-4", "cam-b", nil, "")
	send("a-5", "cam-a", nil, "")
	ann := signIn(t, s, "ann", RoleGuard)
	bob := signIn(t, s, "bob", RoleSupervisor)
	for who, id := range map[*browser]string{ann: "a-2", bob: "a-4"} {
		if resp, body := who.do(http.MethodPost, "/api/v1/alerts/"+id+"/acknowledge", map[string]string{}); resp.StatusCode != http.StatusOK {
			t.Fatalf("acknowledge %s: %d %s", id, resp.StatusCode, body)
		}
	}
	list := func(query string) (string, uint64) {
		t.Helper()
		var page alertsPage
		resp, body := ann.do(http.MethodGet, "/api/v1/alerts?"+query, nil)
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/alerts?%s: %d %s", query, resp.StatusCode, body)
		}
		return strings.Join(ids(page.Alerts), " "), page.Next
	}
	for q, want := range map[string]string{
		"camera=cam-a":                "a-1 a-2 a-5",
		"camera=cam-a&order=desc":     "a-5 a-2 a-1",
		"gate=barrier":                "a-2 a-3",
		"handled_by=ann":              "a-2",
		"handled_by=bob&state=open":   "a-4",
		"camera=cam-b&handled_by=ann": "",
	} {
		if got, _ := list(q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
	var pages []string
	next := uint64(0)
	for range 4 {
		q := "order=desc&limit=2"
		if next != 0 {
			q += fmt.Sprint("&before=", next)
		}
		var got string
		got, next = list(q)
		pages = append(pages, got)
		if next == 0 {
			break
		}
	}
	if strings.Join(pages, " | ") != "a-5 a-4 | a-3 a-2 | a-1" {
		t.Errorf("newest first, two a page: %q", strings.Join(pages, " | "))
	}
	for _, q := range []string{"before=3", "order=sideways", "order=desc&before=x"} {
		resp, body := ann.do(http.MethodGet, "/api/v1/alerts?"+q, nil)
		var e apiError
		if json.Unmarshal(body, &e); resp.StatusCode != http.StatusBadRequest || e.Param == "" {
			t.Errorf("%s: %d %s, want 400 naming the parameter", q, resp.StatusCode, body)
		}
	}
}
