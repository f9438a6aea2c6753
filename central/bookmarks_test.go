package central

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Bookmarks: made by the signed-in user and audited (who, camera,
// moment, note), refused with the field named when malformed, found by
// note text (any case), edge, camera and time, newest moment first.
func TestBookmarks(t *testing.T) {
	s := startServer(t)
	ann := signIn(t, s, "ann", RoleGuard)
	pol := signIn(t, s, "pol", RolePolice)
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	mark := func(b *browser, edge, cam string, m int, note string) Bookmark {
		t.Helper()
		resp, body := b.do(http.MethodPost, "/api/v1/bookmarks", map[string]any{"edge": edge, "camera": cam, "at": at(m), "note": note})
		var bm Bookmark
		if json.Unmarshal(body, &bm); resp.StatusCode != http.StatusCreated || bm.ID == "" || !bm.At.Equal(at(m)) || bm.Created.IsZero() {
			t.Fatalf("bookmark %q: %d %s", note, resp.StatusCode, body)
		}
		return bm
	}
	first := mark(ann, northID, "gate-cam", 1, "White VAN at the barrier")
	mark(ann, northID, "yard-cam", 2, "dog in the yard")
	mark(pol, southID, "gate-cam", 3, "the van again, south")
	mark(ann, northID, "gate-cam", 4, "  person climbs the fence ")
	if first.User != "ann" || first.Edge != northID || first.Camera != "gate-cam" {
		t.Errorf("bookmark: %+v", first)
	}
	find := func(query string) string {
		t.Helper()
		var page struct {
			Bookmarks []Bookmark `json:"bookmarks"`
		}
		resp, body := ann.do(http.MethodGet, "/api/v1/bookmarks?"+query, nil)
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("search %s: %d %s", query, resp.StatusCode, body)
		}
		var notes []string
		for _, b := range page.Bookmarks {
			notes = append(notes, b.Note)
		}
		return strings.Join(notes, "|")
	}
	for q, want := range map[string]string{
		"":                        "person climbs the fence|the van again, south|dog in the yard|White VAN at the barrier",
		"q=van":                   "the van again, south|White VAN at the barrier",
		"q=VAN&edge=" + northID:   "White VAN at the barrier",
		"camera=gate-cam&limit=2": "person climbs the fence|the van again, south",
		"edge=" + southID:         "the van again, south",
		"from=" + rfc(at(2)) + "&to=" + rfc(at(4)): "the van again, south|dog in the yard",
		"q=nothing-like-it":                        "",
	} {
		if got := find(q); got != want {
			t.Errorf("search %q: %q, want %q", q, got, want)
		}
	}
	for name, body := range map[string]map[string]any{
		"no note":      {"edge": northID, "camera": "c", "at": at(1), "note": "  "},
		"long note":    {"edge": northID, "camera": "c", "at": at(1), "note": strings.Repeat("é", maxBookmarkNote+1)},
		"unknown edge": {"edge": "nowhere", "camera": "c", "at": at(1), "note": "x"},
		"no camera":    {"edge": northID, "at": at(1), "note": "x"},
		"future":       {"edge": northID, "camera": "c", "at": time.Now().Add(time.Hour), "note": "x"},
	} {
		if resp, b := ann.do(http.MethodPost, "/api/v1/bookmarks", body); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"param"`) {
			t.Errorf("%s: %d %s, want 400 naming the field", name, resp.StatusCode, b)
		}
	}
	if resp, _ := ann.do(http.MethodPost, "/api/v1/bookmarks", map[string]any{"edge": northID, "camera": "c", "at": at(1), "note": strings.Repeat("é", maxBookmarkNote)}); resp.StatusCode != http.StatusCreated {
		t.Errorf("a note of %d characters: %d", maxBookmarkNote, resp.StatusCode)
	}
	es := auditEntries(t, s, "action="+actionBookmark)
	wantEntry(t, es, actionBookmark, "ann", RoleGuard, northID+"/gate-cam", map[string]any{"at": at(1).Format(time.RFC3339Nano), "note": "White VAN at the barrier"})
	wantEntry(t, es, actionBookmark, "pol", RolePolice, southID+"/gate-cam", map[string]any{"note": "the van again, south"})
	if len(es) != 5 {
		t.Errorf("%d bookmark entries, want 5 (refused ones are not recorded)", len(es))
	}
}

// The store's scan is newest moment first across many bookmarks, and a
// range ends the scan at its start.
func TestBookmarkStoreOrder(t *testing.T) {
	st, err := OpenStoreWith(StoreOptions{Dir: t.TempDir(), Log: testLogger(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bs := badgerBookmarks{db: st.db, disk: st.diskGuard}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range []int{5, 1, 9, 3, 7} {
		if err := bs.addBookmark(Bookmark{ID: fmt.Sprint("b", m), Edge: northID, Camera: "c", At: t0.Add(time.Duration(m) * time.Minute), Note: fmt.Sprint("note ", m)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := bs.bookmarks(bookmarkQuery{From: t0.Add(3 * time.Minute), To: t0.Add(9 * time.Minute), Limit: 10})
	if err != nil || len(got) != 3 || got[0].ID != "b7" || got[1].ID != "b5" || got[2].ID != "b3" {
		t.Fatalf("[3, 9) minutes: %+v, %v", got, err)
	}
}
