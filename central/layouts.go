package central

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
)

// Saved live-wall layouts, per user (GET and PUT /api/v1/me/layouts): the
// console keeps a user's walls (a grid of 1, 4, 9 or 16 tiles, each an
// "edge/camera" or "" for an empty tile) and which one is shown, in
// central's store under prefixLayout, so they follow the user to another
// desk.

const (
	prefixLayout  = "ly/" // ly/<user name> → Layouts JSON
	maxLayouts    = 20
	maxLayoutName = 60 // runes
)

// Layout is one saved live wall.
type Layout struct {
	Name  string   `json:"name"`
	Grid  int      `json:"grid"`  // tiles on the wall: 1, 4, 9 or 16
	Tiles []string `json:"tiles"` // "edge/camera" in wall order, "" for an empty tile
}

// Layouts is a user's saved walls and the one shown ("" none).
type Layouts struct {
	Layouts []Layout `json:"layouts"`
	Current string   `json:"current"`
}

// validate checks a user's layouts, naming the field at fault.
func (ls *Layouts) validate() error {
	if ls.Layouts == nil {
		ls.Layouts = []Layout{}
	}
	if len(ls.Layouts) > maxLayouts {
		return fmt.Errorf("layouts: %d layouts, at most %d", len(ls.Layouts), maxLayouts)
	}
	seen := map[string]bool{}
	for i, l := range ls.Layouts {
		at := fmt.Sprintf("layouts[%d]", i)
		if n := utf8.RuneCountInString(l.Name); n == 0 || n > maxLayoutName || strings.TrimSpace(l.Name) != l.Name {
			return fmt.Errorf("%s.name: 1 to %d characters, no leading or trailing space", at, maxLayoutName)
		}
		if seen[l.Name] {
			return fmt.Errorf("%s.name: %q is used twice", at, l.Name)
		}
		seen[l.Name] = true
		if !slices.Contains([]int{1, 4, 9, 16}, l.Grid) {
			return fmt.Errorf("%s.grid: %d; must be 1, 4, 9 or 16", at, l.Grid)
		}
		if len(l.Tiles) > l.Grid {
			return fmt.Errorf("%s.tiles: %d tiles on a grid of %d", at, len(l.Tiles), l.Grid)
		}
		for j, t := range l.Tiles {
			if e, c, ok := strings.Cut(t, "/"); t != "" && (!ok || e == "" || c == "" || strings.Contains(c, "/")) {
				return fmt.Errorf("%s.tiles[%d]: %q is not edge/camera", at, j, t)
			}
		}
		if ls.Layouts[i].Tiles == nil {
			ls.Layouts[i].Tiles = []string{}
		}
	}
	if ls.Current != "" && !seen[ls.Current] {
		return fmt.Errorf("current: %q is not one of the layouts", ls.Current)
	}
	return nil
}

// layoutStore keeps each user's layouts.
type layoutStore interface {
	layouts(user string) (Layouts, error)
	setLayouts(user string, ls Layouts) error
}

// badgerLayouts is the layout store in central's Badger database, below
// its free-space floor.
type badgerLayouts struct {
	db   *badger.DB
	disk *diskGuard
}

func (s badgerLayouts) layouts(user string) (Layouts, error) {
	ls := Layouts{Layouts: []Layout{}}
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixLayout + user))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &ls) })
	})
	if err != nil {
		return ls, fmt.Errorf("central: layouts of %s: %w", user, err)
	}
	return ls, nil
}

func (s badgerLayouts) setLayouts(user string, ls Layouts) error {
	if err := s.disk.Admit(false); err != nil {
		return err
	}
	v, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	defer s.disk.written()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixLayout+user), v) }); err != nil {
		return fmt.Errorf("central: store layouts of %s: %w", user, err)
	}
	return nil
}

// layoutsAPI is the layouts component. New (server.go) builds it.
type layoutsAPI struct {
	store layoutStore
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// handleLayouts serves GET /api/v1/me/layouts: the signed-in user's.
func (la *layoutsAPI) handleLayouts(w http.ResponseWriter, r *http.Request) {
	user, _ := actorOf(r, "")
	ls, err := la.store.layouts(user)
	if err != nil {
		la.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ls)
}

// handlePutLayouts serves PUT /api/v1/me/layouts: replaces the signed-in
// user's layouts with the body's, answering them as stored.
func (la *layoutsAPI) handlePutLayouts(w http.ResponseWriter, r *http.Request) {
	var ls Layouts
	if !readBody(w, r, &ls) {
		return
	}
	if err := ls.validate(); err != nil {
		param, _, _ := strings.Cut(err.Error(), ":")
		writeError(w, http.StatusBadRequest, param, err.Error())
		return
	}
	user, _ := actorOf(r, "")
	if err := la.store.setLayouts(user, ls); err != nil {
		la.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ls)
}
