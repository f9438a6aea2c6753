package central

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
)

// Bookmarks: a guard marks a moment of a camera's recording with a note
// (POST /api/v1/bookmarks, audited by the route table), and finds it
// again by text, edge, camera and time (GET /api/v1/bookmarks, newest
// moment first); a playback timeline shows a camera's bookmarks in its
// range. They live in central's store under prefixBookmark, keyed by the
// moment, so a time range is one key range.

const (
	prefixBookmark       = "bk/"      // bk/<at, big-endian ns><id> → Bookmark JSON
	actionBookmark       = "bookmark" // audit action: a bookmark was made
	maxBookmarkNote      = 500        // runes
	defaultBookmarkLimit = 100
	maxBookmarkLimit     = 1000
)

// Bookmark is a noted moment of one camera.
type Bookmark struct {
	ID      string    `json:"id"`
	Edge    string    `json:"edge"`
	Camera  string    `json:"camera"`
	At      time.Time `json:"at"`
	Note    string    `json:"note"`
	User    string    `json:"user"`
	Created time.Time `json:"created"`
}

// bookmarkQuery selects bookmarks; empty fields select all.
type bookmarkQuery struct {
	Text     string    // a case-insensitive substring of the note
	Edge     string    // one edge
	Camera   string    // one camera
	From, To time.Time // the moment in [From, To)
	Limit    int
}

func (q *bookmarkQuery) matches(b *Bookmark) bool {
	switch {
	case q.Edge != "" && b.Edge != q.Edge, q.Camera != "" && b.Camera != q.Camera,
		!q.From.IsZero() && b.At.Before(q.From),
		q.Text != "" && !strings.Contains(strings.ToLower(b.Note), strings.ToLower(q.Text)):
		return false
	}
	return true
}

// bookmarkStore keeps bookmarks.
type bookmarkStore interface {
	addBookmark(b Bookmark) error
	// bookmarks lists up to q.Limit matching bookmarks, newest moment first.
	bookmarks(q bookmarkQuery) ([]Bookmark, error)
}

// badgerBookmarks is the bookmark store in central's Badger database,
// below its free-space floor (a person's write: refused when full).
type badgerBookmarks struct {
	db   *badger.DB
	disk *diskGuard
}

func bookmarkKey(b Bookmark) []byte {
	k := binary.BigEndian.AppendUint64([]byte(prefixBookmark), uint64(max(b.At.UnixNano(), 0)))
	return append(k, b.ID...)
}

func (s badgerBookmarks) addBookmark(b Bookmark) error {
	if err := s.disk.Admit(false); err != nil {
		return err
	}
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	defer s.disk.written()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(bookmarkKey(b), v) }); err != nil {
		return fmt.Errorf("central: store bookmark: %w", err)
	}
	return nil
}

func (s badgerBookmarks) bookmarks(q bookmarkQuery) ([]Bookmark, error) {
	out := []Bookmark{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Reverse: true, Prefix: []byte(prefixBookmark)})
		defer it.Close()
		seek := binary.BigEndian.AppendUint64([]byte(prefixBookmark), uint64(1<<63-1))
		if !q.To.IsZero() {
			// Keys at To itself are longer than this one: past it in reverse.
			seek = binary.BigEndian.AppendUint64([]byte(prefixBookmark), uint64(max(q.To.UnixNano(), 0)))
		}
		examined := 0
		for it.Seek(seek); it.Valid() && len(out) < q.Limit && examined < scanBudget; it.Next() {
			examined++
			var b Bookmark
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &b) }); err != nil {
				return fmt.Errorf("bookmark %q: %w", it.Item().Key(), err)
			}
			if !q.From.IsZero() && b.At.Before(q.From) {
				return nil // older than the range: done
			}
			if q.matches(&b) {
				out = append(out, b)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("central: list bookmarks: %w", err)
	}
	return out, nil
}

// bookmarksAPI is the bookmark component. New (server.go) builds it.
type bookmarksAPI struct {
	store bookmarkStore
	edges interface{ statuses() []EdgeStatus } // the edges a bookmark may name
	now   func() time.Time
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// bookmarkIn is the body of POST /api/v1/bookmarks.
type bookmarkIn struct {
	Edge   string    `json:"edge"`
	Camera string    `json:"camera"`
	At     time.Time `json:"at"`
	Note   string    `json:"note"`
}

// handleCreateBookmark serves POST /api/v1/bookmarks: 201 with the
// bookmark, made by the signed-in user.
func (ba *bookmarksAPI) handleCreateBookmark(w http.ResponseWriter, r *http.Request) {
	var in bookmarkIn
	if !readBody(w, r, &in) {
		return
	}
	in.Note = strings.TrimSpace(in.Note)
	now := ba.now().UTC()
	param, msg := "", ""
	switch n := utf8.RuneCountInString(in.Note); {
	case in.Edge == "" || !knownEdge(ba.edges, in.Edge):
		param, msg = "edge", fmt.Sprintf("edge %q is not an edge central knows", in.Edge)
	case in.Camera == "":
		param, msg = "camera", "camera is needed"
	case in.At.IsZero() || in.At.Before(minAPITime) || in.At.After(now.Add(time.Minute)):
		param, msg = "at", "at must be an RFC 3339 time from 1970 until now"
	case n == 0 || n > maxBookmarkNote:
		param, msg = "note", fmt.Sprintf("note must have 1 to %d characters (has %d)", maxBookmarkNote, n)
	}
	if param != "" {
		writeError(w, http.StatusBadRequest, param, msg)
		return
	}
	actor, _ := actorOf(r, "")
	b := Bookmark{ID: newBookmarkID(), Edge: in.Edge, Camera: in.Camera, At: in.At.UTC(), Note: in.Note, User: actor, Created: now}
	if err := ba.store.addBookmark(b); err != nil {
		ba.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}

// handleBookmarks serves GET /api/v1/bookmarks?q=&edge=&camera=&from=&to=&limit=.
func (ba *bookmarksAPI) handleBookmarks(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := bookmarkQuery{Text: v.Get("q"), Edge: v.Get("edge"), Camera: v.Get("camera")}
	var ok bool
	if q.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if q.To, ok = queryTime(w, r, "to"); !ok {
		return
	}
	limit, ok := queryUint(w, r, "limit", defaultBookmarkLimit, 1, maxBookmarkLimit)
	if !ok {
		return
	}
	q.Limit = int(limit)
	bs, err := ba.store.bookmarks(q)
	if err != nil {
		ba.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bookmarks": bs})
}

// bookmarkAudit is the route table's audit rule of a new bookmark: who
// (the entry's actor), which camera, which moment, the note.
func bookmarkAudit(r *http.Request, status int, body []byte) (string, any, bool) {
	var in bookmarkIn
	_ = json.Unmarshal(body, &in)
	return in.Edge + "/" + in.Camera, map[string]any{"at": in.At.UTC().Format(time.RFC3339Nano), "note": strings.TrimSpace(in.Note)}, ok2xx(status)
}

// knownEdge reports whether id is an edge central knows.
func knownEdge(edges interface{ statuses() []EdgeStatus }, id string) bool {
	for _, e := range edges.statuses() {
		if e.ID == id {
			return true
		}
	}
	return false
}

func newBookmarkID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "bm-" + hex.EncodeToString(b)
}
