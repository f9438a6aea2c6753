package central

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Saved live walls are each user's own, survive as stored, and a wall
// that breaks a rule is refused naming the field.
func TestLayouts(t *testing.T) {
	s := startServer(t)
	ann := signIn(t, s, "ann", RoleGuard)
	ivan := signIn(t, s, "ivan", RoleInstaller)
	var got Layouts
	if code := getAs(t, ann, "/api/v1/me/layouts", &got); code != http.StatusOK || got.Layouts == nil || len(got.Layouts) != 0 || got.Current != "" {
		t.Fatalf("no layouts yet: %d %+v", code, got)
	}
	walls := Layouts{Layouts: []Layout{
		{Name: "Gates", Grid: 4, Tiles: []string{northID + "/gate-cam", "", southID + "/gate-cam"}},
		{Name: "Yard", Grid: 1, Tiles: []string{northID + "/yard-cam"}},
	}, Current: "Yard"}
	if resp, body := ann.do(http.MethodPut, "/api/v1/me/layouts", walls); resp.StatusCode != http.StatusOK {
		t.Fatalf("put: %d %s", resp.StatusCode, body)
	}
	if code := getAs(t, ann, "/api/v1/me/layouts", &got); code != http.StatusOK || got.Current != "Yard" || len(got.Layouts) != 2 ||
		got.Layouts[0].Tiles[2] != southID+"/gate-cam" || got.Layouts[1].Grid != 1 {
		t.Fatalf("stored: %d %+v", code, got)
	}
	if code := getAs(t, ivan, "/api/v1/me/layouts", &got); code != http.StatusOK || len(got.Layouts) != 0 {
		t.Fatalf("another user sees %+v", got)
	}
	var many []Layout
	for i := range maxLayouts + 1 {
		many = append(many, Layout{Name: fmt.Sprint("wall ", i), Grid: 1})
	}
	for param, bad := range map[string]Layouts{
		"layouts":             {Layouts: many},
		"layouts[0].name":     {Layouts: []Layout{{Name: "", Grid: 1}}},
		"layouts[1].name":     {Layouts: []Layout{{Name: "a", Grid: 1}, {Name: "a", Grid: 4}}},
		"layouts[0].grid":     {Layouts: []Layout{{Name: strings.Repeat("n", maxLayoutName), Grid: 6}}},
		"layouts[0].tiles":    {Layouts: []Layout{{Name: "a", Grid: 1, Tiles: []string{"e/c", "e/d"}}}},
		"layouts[0].tiles[1]": {Layouts: []Layout{{Name: "a", Grid: 4, Tiles: []string{"e/c", "no-slash"}}}},
		"current":             {Layouts: []Layout{{Name: "a", Grid: 1}}, Current: "b"},
	} {
		resp, body := ann.do(http.MethodPut, "/api/v1/me/layouts", bad)
		var e apiError
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusBadRequest || e.Param != param {
			t.Errorf("%s: %d %s, want 400 naming %s", param, resp.StatusCode, body, param)
		}
	}
	if resp, body := ann.do(http.MethodPut, "/api/v1/me/layouts", Layouts{Layouts: []Layout{{Name: strings.Repeat("n", maxLayoutName+1), Grid: 1}}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a 61-character name: %d %s", resp.StatusCode, body)
	}
	if code := getAs(t, ann, "/api/v1/me/layouts", &got); code != http.StatusOK || got.Current != "Yard" {
		t.Fatalf("a refused put changed the layouts: %+v", got)
	}
}

// FuzzLayouts: any body a console PUTs is either refused naming a field
// or stored within the rules.
func FuzzLayouts(f *testing.F) {
	f.Add([]byte(`{"layouts":[{"name":"Gates","grid":4,"tiles":["a/b","","c/d"]}],"current":"Gates"}`))
	f.Add([]byte(`{"layouts":[{"name":" x","grid":16,"tiles":null}],"current":""}`))
	f.Add([]byte(`{"layouts":[{"name":"a","grid":1,"tiles":["a/b/c"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ls Layouts
		if json.Unmarshal(data, &ls) != nil {
			return
		}
		if err := ls.validate(); err != nil {
			if !strings.HasPrefix(err.Error(), "layouts") && !strings.HasPrefix(err.Error(), "current") {
				t.Fatalf("an error that names no field: %v", err)
			}
			return
		}
		if len(ls.Layouts) > maxLayouts || ls.Layouts == nil {
			t.Fatalf("accepted %d layouts", len(ls.Layouts))
		}
		for _, l := range ls.Layouts {
			if len(l.Tiles) > l.Grid || l.Tiles == nil || l.Name == "" {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}
