package central

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Bookmarks and live-wall layouts in PostgreSQL, shared by the replicas:
// a bookmark made through one is listed through any, a user's walls
// follow them to whichever replica the load balancer picks. Neither is
// held in memory, so no replica needs telling of another's writes.

// pgBookmarks is the bookmark store of a PostgreSQL central.
type pgBookmarks struct{ s *PGStore }

var _ bookmarkStore = pgBookmarks{}

func (b pgBookmarks) addBookmark(m Bookmark) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := pgCtx()
	defer cancel()
	_, err = b.s.pool.Exec(ctx, `INSERT INTO bookmarks (at_ns, id, edge, camera, body) VALUES ($1, $2, $3, $4, $5)`,
		max(m.At.UnixNano(), 0), m.ID, []byte(m.Edge), []byte(m.Camera), v)
	if err != nil {
		return fmt.Errorf("central: store bookmark: %w", pgErr(err))
	}
	return nil
}

// bookmarks answers as badgerBookmarks does: newest moment first (ties
// by ID, descending, as Badger's reverse key order), the moment in
// [From, To), the note matched case-insensitively in Go (strings.ToLower,
// not the database's collation).
func (b pgBookmarks) bookmarks(q bookmarkQuery) ([]Bookmark, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	to := int64(1<<63 - 1)
	if !q.To.IsZero() {
		to = max(q.To.UnixNano(), 0)
	}
	var from int64
	if !q.From.IsZero() {
		from = q.From.UnixNano()
	}
	rows, err := b.s.pool.Query(ctx, `SELECT body FROM bookmarks
		WHERE at_ns < $1 AND at_ns >= $2 AND (length($3::bytea) = 0 OR edge = $3::bytea) AND (length($4::bytea) = 0 OR camera = $4::bytea)
		ORDER BY at_ns DESC, id DESC LIMIT $5`, to, from, []byte(q.Edge), []byte(q.Camera), scanBudget)
	if err != nil {
		return nil, fmt.Errorf("central: list bookmarks: %w", err)
	}
	out := []Bookmark{}
	var v []byte
	_, err = pgx.ForEachRow(rows, []any{&v}, func() error {
		if len(out) >= q.Limit {
			return nil
		}
		var m Bookmark
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		if q.matches(&m) {
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("central: list bookmarks: %w", err)
	}
	return out, nil
}

// pgLayouts is the layout store of a PostgreSQL central.
type pgLayouts struct{ s *PGStore }

var _ layoutStore = pgLayouts{}

func (l pgLayouts) layouts(user string) (Layouts, error) {
	ls := Layouts{Layouts: []Layout{}}
	ctx, cancel := pgCtx()
	defer cancel()
	var v []byte
	err := l.s.pool.QueryRow(ctx, `SELECT body FROM console_layouts WHERE user_name = $1`, user).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return ls, nil
	}
	if err == nil {
		err = json.Unmarshal(v, &ls)
	}
	if err != nil {
		return ls, fmt.Errorf("central: layouts of %s: %w", user, err)
	}
	return ls, nil
}

func (l pgLayouts) setLayouts(user string, ls Layouts) error {
	v, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	ctx, cancel := pgCtx()
	defer cancel()
	_, err = l.s.pool.Exec(ctx, `INSERT INTO console_layouts (user_name, body) VALUES ($1, $2)
		ON CONFLICT (user_name) DO UPDATE SET body = excluded.body`, user, v)
	if err != nil {
		return fmt.Errorf("central: store layouts of %s: %w", user, pgErr(err))
	}
	return nil
}
