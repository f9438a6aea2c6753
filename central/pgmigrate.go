package central

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// MigrationReport is what MigrateToPostgres moved.
type MigrationReport struct {
	Alerts, Changes, Snapshots, Events int
	Users, Sessions, Edges, Tokens     int
	Bookmarks, Layouts, DeviceLists    int
	EvidenceRequests, EvidenceFiles    int
	EvidenceBytes                      int64
	SensorReadings, SensorMinutes      int
	// AuditBefore and AuditAfter are the audit chain verified in Badger
	// before and in PostgreSQL after the move: the same entries and head.
	AuditBefore, AuditAfter audit.Report
	// Kept are the records that stay in the data directory, by kind:
	// what central keeps there also with a PostgreSQL store.
	Kept map[string]int
}

// keptLocal are the Badger prefixes migrate leaves in the data
// directory, by what they hold (none today: every store has its table).
var keptLocal = map[string]string{}

// MigrateToPostgres moves a stopped single-machine central's data from
// its Badger store (cfg.DataDir) to the empty PostgreSQL database at url:
// alerts with their change log, snapshots and events, users and
// sessions, the edge registry and enrolment tokens, evidence requests
// and their files, bookmarks, layouts, device names and sensor history,
// and the audit chain, byte for byte. The chain is verified (hashes and MACs) before, and
// again in PostgreSQL after; a chain that does not verify is not moved.
// Everything but the audit log goes in one transaction: a failed move
// leaves the database as it was.
func MigrateToPostgres(ctx context.Context, cfg Config, url string, log *slog.Logger) (MigrationReport, error) {
	var rep MigrationReport
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !postgresStore(url) {
		return rep, fmt.Errorf("central: migrate: --to must be a PostgreSQL connection string (postgres://…)")
	}
	src, err := OpenStoreWith(StoreOptions{Dir: cfg.DataDir, Log: log, MinFree: -1})
	if err != nil {
		return rep, fmt.Errorf("central: migrate: %w (stop central first)", err)
	}
	defer src.Close()
	key, err := audit.LoadKey(auditKeyPath(cfg))
	if err != nil {
		return rep, fmt.Errorf("central: migrate: the audit chain is verified with the audit key: %w", err)
	}
	srcLog, err := audit.Open(src.db, auditPrefix, audit.Options{Key: key, NoBackfill: true, Log: log})
	if err != nil {
		return rep, err
	}
	defer srcLog.Close()
	if rep.AuditBefore, err = srcLog.Verify(ctx); err != nil {
		return rep, fmt.Errorf("central: migrate: the audit chain in %s does not verify, nothing moved: %w", cfg.DataDir, err)
	}

	dst, err := OpenPGStore(ctx, url, log)
	if err != nil {
		return rep, err
	}
	defer dst.Close()
	if err := dst.empty(ctx); err != nil {
		return rep, err
	}
	err = pgx.BeginFunc(ctx, dst.pool, func(tx pgx.Tx) error {
		if err := src.db.View(func(txn *badger.Txn) error { return copyBadger(ctx, txn, tx, &rep) }); err != nil {
			return err
		}
		return copyEvidenceFiles(ctx, tx, cfg.DataDir, &rep)
	})
	if err != nil {
		return rep, fmt.Errorf("central: migrate: nothing moved: %w", err)
	}
	dstLog, err := audit.OpenPG(ctx, dst.pool, audit.Options{Key: key, NoBackfill: true, Log: log})
	if err != nil {
		return rep, err
	}
	defer dstLog.Close()
	if _, err := srcLog.CopyTo(ctx, dstLog); err != nil {
		return rep, fmt.Errorf("central: migrate: the audit chain: %w", err)
	}
	if rep.AuditAfter, err = dstLog.Verify(ctx); err != nil {
		return rep, fmt.Errorf("central: migrate: the audit chain does not verify in PostgreSQL: %w", err)
	}
	if rep.AuditAfter.Entries != rep.AuditBefore.Entries || rep.AuditAfter.Head != rep.AuditBefore.Head {
		return rep, fmt.Errorf("central: migrate: the audit chain in PostgreSQL (%d entries, head %s) is not the one moved (%d, %s)",
			rep.AuditAfter.Entries, rep.AuditAfter.Head, rep.AuditBefore.Entries, rep.AuditBefore.Head)
	}
	return rep, nil
}

// empty refuses a database that holds a central's data already.
func (s *PGStore) empty(ctx context.Context) error {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT (SELECT last FROM alert_seq) + (SELECT count(*) FROM console_users)
		+ (SELECT count(*) FROM edges) + (SELECT count(*) FROM audit_entries)`).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return errors.New("central: migrate: the PostgreSQL database holds a central's data already; migrate into an empty one")
	}
	return nil
}

// copyBadger copies the records of txn's store into tx's tables.
func copyBadger(ctx context.Context, txn *badger.Txn, tx pgx.Tx, rep *MigrationReport) error {
	rep.Kept = map[string]int{}
	b := &pgBatch{ctx: ctx, tx: tx}
	var last uint64
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := string(it.Item().Key())
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if seq, ok := strings.CutPrefix(k, prefixChange); ok && len(seq) == 8 {
			last = max(last, binary.BigEndian.Uint64([]byte(seq)))
		}
		if err := copyRecord(b, k, v, it.Item().ExpiresAt(), rep); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		if err := b.flush(false); err != nil {
			return err
		}
	}
	if err := b.flush(true); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE alert_seq SET last = $1`, int64(last))
	return err
}

// copyRecord queues one Badger record's row: the first rule whose prefix
// the key has decides (the keys' layouts: store.go, and each component's).
func copyRecord(b *pgBatch, k string, v []byte, expires uint64, rep *MigrationReport) error {
	for _, r := range migrateRules {
		if rest, ok := strings.CutPrefix(k, r.prefix); ok {
			return r.copy(b, rest, v, expires, rep)
		}
	}
	for p, what := range keptLocal {
		if strings.HasPrefix(k, p) {
			rep.Kept[what]++
		}
	}
	return nil // the audit log (copied apart), the schema mark, the floor's state
}

// migrateRules are every rule copyRecord applies.
var migrateRules = slices.Concat(copyRules, sideCopyRules)

// copyRule moves the records under one prefix.
type copyRule struct {
	prefix string
	copy   func(b *pgBatch, rest string, v []byte, expires uint64, rep *MigrationReport) error
}

func beSeq(s string) int64 { return int64(binary.BigEndian.Uint64([]byte(s))) }

// seqRule is a rule for keys <prefix><seq, 8 bytes> (others are skipped).
func seqRule(prefix string, f func(b *pgBatch, seq int64, v []byte, rep *MigrationReport) error) copyRule {
	return copyRule{prefix, func(b *pgBatch, rest string, v []byte, _ uint64, rep *MigrationReport) error {
		if len(rest) != 8 {
			return nil
		}
		return f(b, beSeq(rest), v, rep)
	}}
}

var copyRules = []copyRule{
	seqRule(prefixSeq, func(b *pgBatch, seq int64, v []byte, rep *MigrationReport) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		rep.Alerts++
		b.add(`INSERT INTO alerts (seq, id, edge_id, site_id, kind, state, rev, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			seq, []byte(r.ID), []byte(r.EdgeID), []byte(r.SiteID), []byte(r.Kind), r.State, int64(max(r.Rev, r.Seq)), v)
		return nil
	}),
	seqRule(prefixChange, func(b *pgBatch, seq int64, v []byte, rep *MigrationReport) error {
		rep.Changes++
		b.add(`INSERT INTO alert_changes (seq, frame) VALUES ($1, $2)`, seq, v)
		return nil
	}),
	seqRule(prefixOpen, func(b *pgBatch, seq int64, v []byte, _ *MigrationReport) error {
		if len(v) > 0 { // after the alerts it refers to
			b.later(`INSERT INTO alert_open (seq, rank, site_id) VALUES ($1, $2, $3)`, seq, int16(v[0]), v[1:])
		}
		return nil
	}),
	{prefixSnapshot, func(b *pgBatch, id string, v []byte, _ uint64, rep *MigrationReport) error {
		rep.Snapshots++
		b.add(`INSERT INTO alert_snapshots (alert_id, update_id, jpeg) VALUES ($1, '', $2)`, []byte(id), v)
		return nil
	}},
	{prefixUpdSnap, func(b *pgBatch, rest string, v []byte, _ uint64, rep *MigrationReport) error {
		id, upd, _ := strings.Cut(rest, "\x00")
		rep.Snapshots++
		b.add(`INSERT INTO alert_snapshots (alert_id, update_id, jpeg) VALUES ($1, $2, $3)`, []byte(id), []byte(upd), v)
		return nil
	}},
	{prefixUpdateID, func(b *pgBatch, id string, v []byte, _ uint64, _ *MigrationReport) error {
		if len(v) == 8 {
			b.add(`INSERT INTO alert_update_ids (id, seq) VALUES ($1, $2)`, []byte(id), beSeq(string(v)))
		}
		return nil
	}},
	{prefixRedirect, func(b *pgBatch, id string, v []byte, _ uint64, _ *MigrationReport) error {
		b.add(`INSERT INTO alert_redirects (id, target) VALUES ($1, $2)`, []byte(id), v)
		return nil
	}},
	{prefixBatchID, func(b *pgBatch, id string, _ []byte, _ uint64, _ *MigrationReport) error {
		b.add(`INSERT INTO edge_event_batches (id) VALUES ($1)`, []byte(id))
		return nil
	}},
	{prefixEvent, copyEvent},
	{prefixSelfTest, func(b *pgBatch, edge string, v []byte, _ uint64, _ *MigrationReport) error {
		b.add(`INSERT INTO alert_selftests (edge_id, alert_id) VALUES ($1, $2)`, []byte(edge), v)
		return nil
	}},
	{prefixTamperClear, func(b *pgBatch, rest string, v []byte, _ uint64, _ *MigrationReport) error {
		if len(v) == 8 {
			edge, cam, _ := strings.Cut(rest, "\x00")
			b.add(`INSERT INTO alert_tamper_clear (edge_id, camera, seq) VALUES ($1, $2, $3)`, []byte(edge), []byte(cam), beSeq(string(v)))
		}
		return nil
	}},
	{prefixUser, func(b *pgBatch, name string, v []byte, _ uint64, rep *MigrationReport) error {
		rep.Users++
		b.add(`INSERT INTO console_users (name, body) VALUES ($1, $2)`, name, v)
		return nil
	}},
	{prefixSession, func(b *pgBatch, key string, v []byte, _ uint64, rep *MigrationReport) error {
		var st storedSession
		if json.Unmarshal(v, &st) != nil || st.User == "" {
			return nil // unreadable: it would be dropped at the next start anyway
		}
		rep.Sessions++
		b.add(`INSERT INTO console_sessions (key, user_name, role, created, last_seen) VALUES ($1, $2, $3, $4, $5)`,
			key, st.User, st.Role, st.Created, st.LastSeen)
		return nil
	}},
	{prefixEdge, func(b *pgBatch, id string, v []byte, _ uint64, rep *MigrationReport) error {
		rep.Edges++
		b.add(`INSERT INTO edges (id, body) VALUES ($1, $2)`, id, v)
		return nil
	}},
	{prefixToken, func(b *pgBatch, hash string, v []byte, expires uint64, rep *MigrationReport) error {
		keep := time.Now().Add(24 * time.Hour)
		if expires > 0 {
			keep = time.Unix(int64(expires), 0)
		}
		rep.Tokens++
		b.add(`INSERT INTO enrol_tokens (hash, body, keep_to) VALUES ($1, $2, $3)`, hash, v, keep)
		return nil
	}},
}

// The console's and the sensors' stores (pgbookmarks.go, pgdevices.go,
// pgsensors.go); a reading or minute already past its keeping time is
// not moved.
var sideCopyRules = []copyRule{
	{prefixBookmark, func(b *pgBatch, _ string, v []byte, _ uint64, rep *MigrationReport) error {
		var m Bookmark
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		rep.Bookmarks++
		b.add(`INSERT INTO bookmarks (at_ns, id, edge, camera, body) VALUES ($1, $2, $3, $4, $5)`,
			max(m.At.UnixNano(), 0), m.ID, []byte(m.Edge), []byte(m.Camera), v)
		return nil
	}},
	{prefixLayout, func(b *pgBatch, user string, v []byte, _ uint64, rep *MigrationReport) error {
		rep.Layouts++
		b.add(`INSERT INTO console_layouts (user_name, body) VALUES ($1, $2)`, user, v)
		return nil
	}},
	{prefixDevices, func(b *pgBatch, edge string, v []byte, _ uint64, rep *MigrationReport) error {
		rep.DeviceLists++
		b.add(`INSERT INTO edge_devices (edge_id, body) VALUES ($1, $2)`, edge, v)
		return nil
	}},
	{prefixEvidence, func(b *pgBatch, id string, v []byte, _ uint64, rep *MigrationReport) error {
		var r EvidenceRequest
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		rep.EvidenceRequests++
		b.add(`INSERT INTO evidence_requests (id, created, body) VALUES ($1, $2, $3)`, id, r.CreatedAt, v)
		return nil
	}},
	{prefixSensorRaw, func(b *pgBatch, rest string, v []byte, expires uint64, rep *MigrationReport) error {
		edge, sensor, at, ok := sensorKeyParts(rest)
		if !ok || len(v) != 8 || expired(expires) {
			return nil
		}
		rep.SensorReadings++
		b.add(`INSERT INTO sensor_raw (edge_id, sensor, t_ns, value, keep_to) VALUES ($1, $2, $3, $4, $5)`,
			[]byte(edge), []byte(sensor), at, math.Float64frombits(binary.BigEndian.Uint64(v)), time.Unix(int64(expires), 0))
		return nil
	}},
	{prefixSensorMinute, func(b *pgBatch, rest string, v []byte, expires uint64, rep *MigrationReport) error {
		edge, sensor, at, ok := sensorKeyParts(rest)
		m, err := decodeMinute(v)
		if !ok || err != nil || expired(expires) {
			return nil
		}
		rep.SensorMinutes++
		b.add(`INSERT INTO sensor_minutes (edge_id, sensor, t_ns, sum, lo, hi, n, keep_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			[]byte(edge), []byte(sensor), at, m.sum, m.lo, m.hi, int64(m.n), time.Unix(int64(expires), 0))
		return nil
	}},
	{prefixSensorBatch, func(b *pgBatch, rest string, _ []byte, expires uint64, _ *MigrationReport) error {
		edge, tail, _ := strings.Cut(rest, "\x00")
		i := strings.LastIndexByte(tail, 0)
		part, err := strconv.Atoi(tail[i+1:])
		if i < 0 || err != nil || expired(expires) {
			return nil
		}
		b.add(`INSERT INTO sensor_batches (edge_id, batch, part, keep_to) VALUES ($1, $2, $3, $4)`,
			[]byte(edge), []byte(tail[:i]), part, time.Unix(int64(expires), 0))
		return nil
	}},
}

// copyEvidenceFiles moves the retrieved videos and contact sheets (and
// the partial copies of retrievals under way, which then resume from
// their last verified piece) into evidence_pieces, by the paths the
// requests name, in pieces of migratePiece bytes.
func copyEvidenceFiles(ctx context.Context, tx pgx.Tx, dataDir string, rep *MigrationReport) error {
	root := filepath.Join(dataDir, "evidence")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dataDir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, migratePiece)
		for off := int64(0); ; {
			n, err := io.ReadFull(f, buf)
			if n > 0 {
				if _, err := tx.Exec(ctx, `INSERT INTO evidence_pieces (path, off, data) VALUES ($1, $2, $3)`, filepath.ToSlash(rel), off, buf[:n]); err != nil {
					return err
				}
				off += int64(n)
				rep.EvidenceBytes += int64(n)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				return err
			}
		}
		rep.EvidenceFiles++
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no evidence retrieved yet
	}
	return err
}

// migratePiece is the size of the pieces migrate cuts a file into (the
// retrieval's default chunk; any size reads back the same).
const migratePiece = 4 << 20

// sensorKeyParts splits <edge>\0<sensor>\0<time ns, 8 bytes>.
func sensorKeyParts(rest string) (edge, sensor string, at int64, ok bool) {
	if len(rest) < 8+2 {
		return "", "", 0, false
	}
	edge, sensor, ok = strings.Cut(rest[:len(rest)-9], "\x00")
	return edge, sensor, beSeq(rest[len(rest)-8:]), ok && rest[len(rest)-9] == 0
}

// expired reports whether a Badger entry's expiry (unix seconds, 0:
// none) has passed: it would be gone at the next read.
func expired(at uint64) bool { return at > 0 && time.Unix(int64(at), 0).Before(time.Now()) }

// copyEvent moves an edge event: e/<time ns, 8 bytes><edge>\0<batch>\0<idx, 2 bytes>.
func copyEvent(b *pgBatch, rest string, v []byte, _ uint64, rep *MigrationReport) error {
	if len(rest) <= 8+2 {
		return nil
	}
	var e StoredEvent
	if err := json.Unmarshal(v, &e); err != nil {
		return err
	}
	edge, tail, _ := strings.Cut(rest[8:], "\x00")
	batch := tail[:max(len(tail)-3, 0)]
	idx := binary.BigEndian.Uint16([]byte(tail[len(tail)-2:]))
	rep.Events++
	b.add(`INSERT INTO edge_events (t_ns, edge_id, batch, idx, site_id, event) VALUES ($1, $2, $3, $4, $5, $6)`,
		beSeq(rest[:8]), []byte(edge), []byte(batch), int32(idx), []byte(e.SiteID), v)
	return nil
}

// pgBatch sends queued statements in pgx batches; later ones go after
// all others (the open index refers to the alerts).
type pgBatch struct {
	ctx   context.Context
	tx    pgx.Tx
	b     pgx.Batch
	after pgx.Batch
}

func (p *pgBatch) add(sql string, args ...any)   { p.b.Queue(sql, args...) }
func (p *pgBatch) later(sql string, args ...any) { p.after.Queue(sql, args...) }

// flush sends the queue once it is long (or at the end, with the later
// statements).
func (p *pgBatch) flush(end bool) error {
	if p.b.Len() >= 500 || (end && p.b.Len() > 0) {
		if err := p.tx.SendBatch(p.ctx, &p.b).Close(); err != nil {
			return err
		}
		p.b = pgx.Batch{}
	}
	if end && p.after.Len() > 0 {
		if err := p.tx.SendBatch(p.ctx, &p.after).Close(); err != nil {
			return err
		}
		p.after = pgx.Batch{}
	}
	return nil
}
