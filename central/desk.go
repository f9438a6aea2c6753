package central

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Console mute bounds.
const (
	maxMuteMinutes    = 60
	actionConsoleMute = "console_mute" // audit actions allow only a-z, 0-9 and _ (central/audit)
)

// deskAPI is what the alarm desk needs besides the alerts: the console's
// mute (the browser holds it; central records who muted and until when,
// the audit rule in routes.go) and the installers' view of self-tests,
// which never enter a guard's queue.
type deskAPI struct {
	now       func() time.Time
	selfTests func() ([]Record, error) // the latest self-test alert of each edge
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// muteAnswer is the body of POST /api/v1/console/mute.
type muteAnswer struct {
	Until *time.Time `json:"until"` // null: not muted (unmuted)
	By    string     `json:"by"`
}

// handleMute serves POST /api/v1/console/mute {"minutes": 1..60, 0 to
// unmute} and answers {"until": time, "by": user}. The console keeps the
// mute (per browser); this records it (the route's audit rule).
func (d *deskAPI) handleMute(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Minutes *int `json:"minutes"`
	}
	if !readBody(w, r, &b) {
		return
	}
	if b.Minutes == nil || *b.Minutes < 0 || *b.Minutes > maxMuteMinutes {
		writeError(w, http.StatusBadRequest, "minutes", "minutes must be 1..60 (0 unmutes)")
		return
	}
	by, err := actorOf(r, "")
	if err != nil {
		writeError(w, http.StatusUnauthorized, "", err.Error())
		return
	}
	ans := muteAnswer{By: by}
	if *b.Minutes > 0 {
		until := d.now().UTC().Add(time.Duration(*b.Minutes) * time.Minute).Truncate(time.Second)
		ans.Until = &until
	}
	writeJSON(w, http.StatusOK, ans)
}

// handleSelfTests serves GET /api/v1/selftests: the latest self-test
// alert of each edge that has sent one ({"selftests": [records]}, by edge
// ID), for installers and admins. Self-tests (kind system.selftest) are
// kept out of the guards' alert listing and console feed.
func (d *deskAPI) handleSelfTests(w http.ResponseWriter, r *http.Request) {
	recs, err := d.selfTests()
	if err != nil {
		d.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"selftests": recs})
}

// selfTests reads the t/ index (each edge's latest self-test alert) and
// the records it names, by edge ID.
func (s *Store) selfTests() ([]Record, error) {
	db := s.db
	out := []Record{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte(prefixSelfTest)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			rec, err := getRecordByID(txn, string(id))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			rec.normalise()
			out = append(out, rec)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].EdgeID < out[j].EdgeID })
	return out, err
}
