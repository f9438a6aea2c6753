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

// sessionBook is where sessions are kept beyond memory: central's Badger
// database (badgerSessions), or PostgreSQL shared by replicas (pgauth.go).
type sessionBook interface {
	saveSession(key string, st storedSession) error
	forgetSession(key string) error
	// loadSessions calls f for every kept session (restore).
	loadSessions(f func(key string, st storedSession)) error
	deleteSessions(keys []string) error
}

// sharedSessionBook is a sessionBook other replicas write too: a session
// another replica made is looked up on its first use here, and one ended
// anywhere ends here (auth.onNotice).
type sharedSessionBook interface {
	sessionBook
	session(key string) (storedSession, bool, error)
}

// badgerSessions keeps sessions in central's Badger database.
type badgerSessions struct{ db *badger.DB }

func (b badgerSessions) saveSession(key string, st storedSession) error {
	v, _ := json.Marshal(st)
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixSession+key), v) })
}

func (b badgerSessions) forgetSession(key string) error {
	return b.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(prefixSession + key)) })
}

func (b badgerSessions) loadSessions(f func(key string, st storedSession)) error {
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixSession), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var st storedSession
			if it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &st) }) != nil {
				st = storedSession{} // unreadable: restore drops it
			}
			f(string(it.Item().Key()[len(prefixSession):]), st)
		}
		return nil
	})
}

func (b badgerSessions) deleteSessions(keys []string) error {
	return b.db.Update(func(txn *badger.Txn) error {
		for _, k := range keys {
			if err := txn.Delete([]byte(prefixSession + k)); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
		}
		return nil
	})
}

// save writes s; called with ss.mu held.
func (ss *sessions) save(s *session) {
	if ss.book == nil {
		return
	}
	if ss.book.saveSession(s.key, storedSession{User: s.user, Role: s.role, Created: s.created.UTC(), LastSeen: s.lastSeen.UTC()}) == nil {
		s.saved = s.lastSeen
	}
}

// forget removes a session that ended; called with ss.mu held.
func (ss *sessions) forget(key string) {
	if ss.book != nil {
		_ = ss.book.forgetSession(key)
	}
}

// valid reports whether a kept session may go on: its user still exists
// with the same role and it is neither idle nor too old.
func (ss *sessions) valid(st storedSession, us *users, now time.Time) bool {
	u, ok := us.get(st.User)
	return ok && st.User != "" && u.Role == st.Role && now.Sub(st.LastSeen) <= ss.idle && now.Sub(st.Created) <= ss.absolute
}

// adoptLocked makes a kept session live in memory; called with ss.mu held.
func (ss *sessions) adoptLocked(key string, st storedSession, now time.Time) *session {
	s := &session{key: key, user: st.User, role: st.Role, created: st.Created, lastSeen: st.LastSeen, saved: st.LastSeen, done: make(chan struct{})}
	ss.m[key] = s
	s.timer = time.AfterFunc(st.Created.Add(ss.absolute).Sub(now), func() { ss.end(s) })
	return s
}

// restore loads the sessions kept in book that are still valid for a
// user who still exists with the same role, drops the rest, and keeps
// book for the sessions to come. With a shared book nothing is loaded:
// sessions are looked up as they are used (lookupLocked).
func (ss *sessions) restore(book sessionBook, us *users, now time.Time) (int, error) {
	ss.mu.Lock()
	ss.book, ss.users = book, us
	ss.mu.Unlock()
	if _, shared := book.(sharedSessionBook); shared {
		return 0, nil
	}
	var stale []string
	n := 0
	err := book.loadSessions(func(key string, st storedSession) {
		if !ss.valid(st, us, now) {
			stale = append(stale, key)
			return
		}
		ss.mu.Lock()
		ss.adoptLocked(key, st, now)
		ss.mu.Unlock()
		n++
	})
	if err != nil {
		return 0, err
	}
	if len(stale) > 0 {
		err = book.deleteSessions(stale)
	}
	return n, err
}

// lookupLocked finds a session another replica made or used last (shared
// book only): a miss in memory, or a copy here that looks idle while the
// console has been busy on another replica. Called with ss.mu held.
func (ss *sessions) lookupLocked(key string, now time.Time) *session {
	shared, ok := ss.book.(sharedSessionBook)
	if !ok || ss.users == nil {
		return nil
	}
	st, found, err := shared.session(key)
	if err != nil || !found || !ss.valid(st, ss.users, now) {
		return nil
	}
	if s := ss.m[key]; s != nil {
		s.lastSeen, s.saved = st.LastSeen, st.LastSeen
		return s
	}
	return ss.adoptLocked(key, st, now)
}
