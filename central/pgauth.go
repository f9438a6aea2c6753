package central

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Console users and sessions in PostgreSQL, shared by the replicas: a
// guard logged in on one is logged in on all (a load balancer may send
// each request elsewhere), and a logout, a deleted user or a new
// password ends the sessions on every replica at once: each change is
// announced on pgAuthChannel and every replica's auth acts on it
// (auth.onNotice).
const pgAuthChannel = "vigil_auth"

var (
	_ userBook          = (*PGStore)(nil)
	_ sharedSessionBook = (*PGStore)(nil)
)

// Notices on pgAuthChannel: "u:<unix ns>:<name>" a user changed or was
// deleted at that time; "s:<key>" a session ended.
func userNotice(name string, at time.Time) string {
	return "u:" + strconv.FormatInt(at.UnixNano(), 10) + ":" + name
}

func (s *PGStore) loadUsers(f func(User)) error {
	return pgBodies(s, `SELECT body FROM console_users`, f)
}

// user reads one user (found false: none).
func (s *PGStore) user(name string) (User, bool, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var b []byte
	var x User
	err := s.pool.QueryRow(ctx, `SELECT body FROM console_users WHERE name = $1`, name).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return x, false, nil
	}
	if err != nil {
		return x, false, err
	}
	err = json.Unmarshal(b, &x) // before the return reads x
	return x, err == nil, err
}

func (s *PGStore) putUser(x User) error {
	v, _ := json.Marshal(x)
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO console_users (name, body) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET body = excluded.body`, x.Name, v)
		if err == nil {
			// A new role or password: every session of the user ends,
			// including those no replica holds in memory now.
			_, err = tx.Exec(ctx, `DELETE FROM console_sessions WHERE user_name = $1`, x.Name)
		}
		if err == nil {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, pgAuthChannel, userNotice(x.Name, time.Now()))
		}
		return err
	})
}

func (s *PGStore) deleteUser(name string) error {
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM console_users WHERE name = $1`, name)
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM console_sessions WHERE user_name = $1`, name)
		}
		if err == nil {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, pgAuthChannel, userNotice(name, time.Now()))
		}
		return err
	})
}

func (s *PGStore) authTx(f func(context.Context, pgx.Tx) error) error {
	ctx, cancel := pgCtx()
	defer cancel()
	return pgErr(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return f(ctx, tx) }))
}

// saveSession keeps the later last-seen time of the replicas'.
func (s *PGStore) saveSession(key string, st storedSession) error {
	ctx, cancel := pgCtx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO console_sessions (key, user_name, role, created, last_seen) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO UPDATE SET last_seen = greatest(console_sessions.last_seen, excluded.last_seen)`,
		key, st.User, st.Role, st.Created, st.LastSeen)
	return pgErr(err)
}

// forgetSession deletes a session and tells every replica it ended.
func (s *PGStore) forgetSession(key string) error {
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE key = $1`, key)
		if err == nil {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, pgAuthChannel, "s:"+key)
		}
		return err
	})
}

func (s *PGStore) loadSessions(f func(key string, st storedSession)) error {
	ctx, cancel := pgCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT key, user_name, role, created, last_seen FROM console_sessions`)
	if err != nil {
		return err
	}
	var key string
	var st storedSession
	_, err = pgx.ForEachRow(rows, []any{&key, &st.User, &st.Role, &st.Created, &st.LastSeen}, func() error {
		f(key, st)
		return nil
	})
	return err
}

func (s *PGStore) deleteSessions(keys []string) error {
	ctx, cancel := pgCtx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `DELETE FROM console_sessions WHERE key = ANY($1)`, keys)
	return err
}

func (s *PGStore) session(key string) (storedSession, bool, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var st storedSession
	err := s.pool.QueryRow(ctx, `SELECT user_name, role, created, last_seen FROM console_sessions WHERE key = $1`, key).
		Scan(&st.User, &st.Role, &st.Created, &st.LastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, false, nil
	}
	st.Created, st.LastSeen = st.Created.UTC(), st.LastSeen.UTC()
	return st, err == nil, err
}

// watchAuth runs a's part of the replicas' auth until ctx ends: every
// notice on pgAuthChannel, and after each (re)connection a full reload
// of the users (what changed while nobody listened).
func (s *PGStore) watchAuth(ctx context.Context, a *auth) {
	s.listen(ctx, pgAuthChannel, func() {
		known := a.users.list() // before reading: one looked up meanwhile is not gone
		var all []User
		if err := s.loadUsers(func(x User) { all = append(all, x) }); err != nil {
			s.log.Error("reloading users failed", "err", err)
			return
		}
		a.usersReloaded(all, known)
	}, func(payload string) {
		kind, rest, _ := strings.Cut(payload, ":")
		switch kind {
		case "s":
			a.sessions.endedElsewhere(rest)
		case "u":
			ns, name, _ := strings.Cut(rest, ":")
			n, _ := strconv.ParseInt(ns, 10, 64)
			x, found, err := s.user(name)
			if err != nil {
				s.log.Error("reloading a user failed", "user", name, "err", err)
				return
			}
			a.userChanged(name, x, found, time.Unix(0, n))
		}
	})
}
