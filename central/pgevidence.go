package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-perimeter/vigil/central/evidence"
)

// Evidence requests and retrieved files in PostgreSQL, shared by the
// replicas. A request is one row, changed under its row lock; a video is
// kept as the pieces the retrieval verified, one row each (its bytes as
// bytea, at most the retrieval's chunk size, 4 MiB by default), written
// as each piece is verified: the replica that holds the edge's
// connection retrieves, and one that takes the edge over resumes from
// the last verified piece. Any replica serves the video and builds the
// bundle from the same rows. Size: a 10-minute 2 Mbit/s camera is 150
// MB, 150 rows; PostgreSQL keeps bytea out of line (TOAST) and holds a
// few TB as well as any file system it sits on, which the operator sizes
// for the evidence kept (ARCHITECTURE.md, "One machine or many").

var (
	_ requestStore  = (*PGStore)(nil)
	_ evidenceFiles = (*PGStore)(nil)
)

func (s *PGStore) getRequest(id string) (EvidenceRequest, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	return pgRequest(ctx, s.pool, id, "")
}

func pgRequest(ctx context.Context, q pgQuerier, id, lock string) (EvidenceRequest, error) {
	var b []byte
	var r EvidenceRequest
	err := q.QueryRow(ctx, `SELECT body FROM evidence_requests WHERE id = $1`+lock, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(b, &r) // before the return reads r
	return r, err
}

func (s *PGStore) addRequest(r EvidenceRequest) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := pgCtx()
	defer cancel()
	_, err = s.pool.Exec(ctx, `INSERT INTO evidence_requests (id, created, body) VALUES ($1, $2, $3)`, r.ID, r.CreatedAt, v)
	if err == nil {
		// The replica holding one of its edges starts on it.
		_, err = s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, pgEvidenceChannel, r.ID)
	}
	return pgErr(err)
}

func (s *PGStore) listRequests() ([]EvidenceRequest, error) {
	out := []EvidenceRequest{}
	err := pgBodies(s, `SELECT body FROM evidence_requests ORDER BY created`, func(r EvidenceRequest) { out = append(out, r) })
	return out, err
}

func (s *PGStore) changeRequest(id string, f func(*EvidenceRequest) error) (EvidenceRequest, error) {
	var r EvidenceRequest
	err := s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if r, err = pgRequest(ctx, tx, id, " FOR UPDATE"); err != nil {
			return err
		}
		if err := f(&r); err != nil {
			return err
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE evidence_requests SET body = $2 WHERE id = $1`, id, v)
		return err
	})
	return r, err
}

// pgEvidenceChannel announces a new evidence request (its ID).
const pgEvidenceChannel = "vigil_evidence"

// watchEvidence wakes rt's workers for the edges of requests other
// replicas create, and after every (re)connection for all unfinished
// work, until ctx ends.
func (s *PGStore) watchEvidence(ctx context.Context, rt *retrieval) {
	s.listen(ctx, pgEvidenceChannel, rt.start, func(id string) {
		r, err := s.getRequest(id)
		if err != nil {
			return
		}
		for _, it := range r.Items {
			rt.ensure(it.Edge)
		}
	})
}

// Files: the partial copy of path is kept as path + ".part".
const pgPartSuffix = ".part"

func (s *PGStore) partial(path string) (partialFile, error) {
	return &pgPartial{s: s, path: path + pgPartSuffix}, nil
}

// keep replaces path by its partial copy in one transaction.
func (s *PGStore) keep(path string) error {
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM evidence_pieces WHERE path = $1`, path); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE evidence_pieces SET path = $1 WHERE path = $2`, path, path+pgPartSuffix)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("evidence: %s: nothing retrieved to keep", path)
		}
		return err
	})
}

func (s *PGStore) put(path string, data []byte) error {
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM evidence_pieces WHERE path = $1`, path); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO evidence_pieces (path, off, data) VALUES ($1, 0, $2)`, path, data)
		return err
	})
}

func (s *PGStore) open(path string) (evidence.File, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var size *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(off + length(data)) FROM evidence_pieces WHERE path = $1`, path).Scan(&size); err != nil {
		return nil, err
	}
	if size == nil {
		return nil, fmt.Errorf("evidence: %s: %w", path, fs.ErrNotExist)
	}
	return &pgFile{s: s, path: path, size: *size}, nil
}

// pgPartial is a video being retrieved: each piece is a row, written
// whole at its offset (the retrieval writes pieces at multiples of its
// chunk size, and truncates at one).
type pgPartial struct {
	s    *PGStore
	path string
}

func (p *pgPartial) WriteAt(b []byte, off int64) (int, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	_, err := p.s.pool.Exec(ctx, `INSERT INTO evidence_pieces (path, off, data) VALUES ($1, $2, $3)
		ON CONFLICT (path, off) DO UPDATE SET data = excluded.data`, p.path, off, b)
	if err != nil {
		return 0, pgErr(err)
	}
	return len(b), nil
}

func (p *pgPartial) Truncate(size int64) error {
	ctx, cancel := pgCtx()
	defer cancel()
	_, err := p.s.pool.Exec(ctx, `DELETE FROM evidence_pieces WHERE path = $1 AND off >= $2`, p.path, size)
	return err
}

// Sync: every piece is committed as it is written.
func (p *pgPartial) Sync() error { return nil }

func (p *pgPartial) Close() error { return nil }

func (p *pgPartial) Reader() (interface{ Read([]byte) (int, error) }, error) {
	return &pgFile{s: p.s, path: p.path, size: -1}, nil
}

// pgFile reads a file's pieces in order, one row at a time, keeping the
// row it is in. size -1: read until the pieces end (a partial copy).
type pgFile struct {
	s      *PGStore
	path   string
	size   int64
	pos    int64
	at     int64 // offset of piece
	piece  []byte
	closed bool
}

func (f *pgFile) Size() int64 { return f.size }

func (f *pgFile) Close() error { f.closed, f.piece = true, nil; return nil }

func (f *pgFile) Read(b []byte) (int, error) {
	n, err := f.ReadAt(b, f.pos)
	f.pos += int64(n)
	return n, err
}

// ReadAt reads from the pieces covering [off, off+len(b)).
func (f *pgFile) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		if f.size >= 0 && off >= f.size {
			return n, io.EOF
		}
		if f.piece == nil || off < f.at || off >= f.at+int64(len(f.piece)) {
			if err := f.load(off); err != nil {
				return n, err
			}
		}
		c := copy(b[n:], f.piece[off-f.at:])
		n += c
		off += int64(c)
	}
	return n, nil
}

// load fetches the piece holding off (io.EOF past the last; a gap is an
// error: a partial copy with a hole fails its check).
func (f *pgFile) load(off int64) error {
	ctx, cancel := pgCtx()
	defer cancel()
	var at int64
	var data []byte
	err := f.s.pool.QueryRow(ctx, `SELECT off, data FROM evidence_pieces WHERE path = $1 AND off <= $2 ORDER BY off DESC LIMIT 1`,
		f.path, off).Scan(&at, &data)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && off >= at+int64(len(data))) {
		if f.size < 0 {
			return io.EOF
		}
		return fmt.Errorf("evidence: %s: no piece holds byte %d", f.path, off)
	}
	if err != nil {
		return err
	}
	f.at, f.piece = at, data
	return nil
}
