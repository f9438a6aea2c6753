package central

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Sessions outlive a restart of central (an upgrade at 3 a.m. must not sign
// the night shift out): each is kept in the store under the SHA-256 of its
// token, with its user, role and times. The last-seen time is written at
// most once per sessionSaveEvery, so a busy console does not write per
// request; after a restart a session is at most that much older than it
// was.
const (
	prefixSession    = "sess/"
	sessionSaveEvery = time.Minute
)

type storedSession struct {
	User     string    `json:"user"`
	Role     string    `json:"role"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
}

// save writes s; called with ss.mu held.
func (ss *sessions) save(s *session) {
	if ss.db == nil {
		return
	}
	v, _ := json.Marshal(storedSession{User: s.user, Role: s.role, Created: s.created.UTC(), LastSeen: s.lastSeen.UTC()})
	if err := ss.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixSession+s.key), v) }); err == nil {
		s.saved = s.lastSeen
	}
}

// forget removes a session that ended; called with ss.mu held.
func (ss *sessions) forget(key string) {
	if ss.db == nil {
		return
	}
	_ = ss.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(prefixSession + key)) })
}

// restore loads the sessions kept in db that are still valid for a user
// who still exists with the same role, drops the rest, and keeps db for
// the sessions to come.
func (ss *sessions) restore(db *badger.DB, us *users, now time.Time) (int, error) {
	var stale [][]byte
	n := 0
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixSession), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := string(item.Key()[len(prefixSession):])
			var st storedSession
			err := item.Value(func(v []byte) error { return json.Unmarshal(v, &st) })
			u, ok := us.get(st.User)
			if err != nil || !ok || u.Role != st.Role || now.Sub(st.LastSeen) > ss.idle || now.Sub(st.Created) > ss.absolute {
				stale = append(stale, item.KeyCopy(nil))
				continue
			}
			s := &session{key: key, user: st.User, role: st.Role, created: st.Created, lastSeen: st.LastSeen, saved: st.LastSeen, done: make(chan struct{})}
			ss.mu.Lock()
			ss.m[key] = s
			s.timer = time.AfterFunc(st.Created.Add(ss.absolute).Sub(now), func() { ss.end(s) })
			ss.mu.Unlock()
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(stale) > 0 {
		err = db.Update(func(txn *badger.Txn) error {
			for _, k := range stale {
				if err := txn.Delete(k); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
					return err
				}
			}
			return nil
		})
	}
	ss.mu.Lock()
	ss.db = db
	ss.mu.Unlock()
	return n, err
}
