package central

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// pgMigrations are the PostgreSQL store's schema versions, applied in
// order at start (pgMigrate); version N is pgMigrations[N-1]. A released
// version is never edited: a change is a new version.
//
// Everything an edge names (alert, update, batch and edge IDs, sites,
// sources) is bytea, not text: wire bounds their length, not their
// bytes, and PostgreSQL's text refuses NUL and invalid UTF-8 — an edge's
// odd ID must not become a batch the store can never take. Records are
// the same JSON the Badger store keeps (bytea: jsonb refuses \u0000 in a
// summary); the columns beside them are what queries and operators need.
var pgMigrations = []string{
	// 1: alerts, their change log and indexes, snapshots, edge events.
	`CREATE TABLE alert_seq (
		one  boolean PRIMARY KEY DEFAULT true CHECK (one),
		last bigint NOT NULL -- the newest change's sequence number
	);
	INSERT INTO alert_seq VALUES (true, 0);
	CREATE TABLE alerts (
		seq      bigint PRIMARY KEY, -- creation sequence number
		id       bytea NOT NULL UNIQUE,
		edge_id  bytea NOT NULL,
		site_id  bytea NOT NULL,
		kind     bytea NOT NULL,
		state    text NOT NULL,
		rev      bigint NOT NULL,
		record   bytea NOT NULL -- Record JSON, its current state
	);
	CREATE TABLE alert_changes (
		seq   bigint PRIMARY KEY,
		frame bytea NOT NULL -- the console message of the change
	);
	CREATE TABLE alert_open (
		seq     bigint PRIMARY KEY REFERENCES alerts (seq),
		rank    smallint NOT NULL,
		site_id bytea NOT NULL
	);
	CREATE TABLE alert_snapshots (
		alert_id  bytea NOT NULL,
		update_id bytea NOT NULL, -- empty: the alert's own snapshot
		jpeg      bytea NOT NULL,
		PRIMARY KEY (alert_id, update_id)
	);
	CREATE TABLE alert_update_ids (
		id  bytea PRIMARY KEY,
		seq bigint NOT NULL -- the change it made; 0: its alert was unknown
	);
	CREATE TABLE alert_redirects (
		id     bytea PRIMARY KEY, -- an edge's alert ID
		target bytea NOT NULL     -- the successor its updates go to
	);
	CREATE TABLE alert_selftests (
		edge_id  bytea PRIMARY KEY,
		alert_id bytea NOT NULL
	);
	CREATE TABLE alert_tamper_clear (
		edge_id bytea NOT NULL,
		camera  bytea NOT NULL,
		seq     bigint NOT NULL,
		PRIMARY KEY (edge_id, camera)
	);
	CREATE TABLE edge_event_batches (id bytea PRIMARY KEY);
	CREATE TABLE edge_events (
		t_ns    bigint NOT NULL,
		edge_id bytea NOT NULL,
		batch   bytea NOT NULL,
		idx     integer NOT NULL,
		site_id bytea NOT NULL,
		event   bytea NOT NULL, -- StoredEvent JSON
		PRIMARY KEY (t_ns, edge_id, batch, idx)
	);`,
	// 2: which replica holds each edge's connection (replicas.go).
	`CREATE TABLE edge_presence (
		edge_id bytea PRIMARY KEY,
		replica text NOT NULL, -- the holding process's random ID
		url     text NOT NULL, -- its console URL, where others forward
		since   timestamptz NOT NULL
	);`,
	// 3: console users and sessions (pgauth.go).
	`CREATE TABLE console_users (
		name text PRIMARY KEY,
		body bytea NOT NULL -- User JSON, with the password hash
	);
	CREATE TABLE console_sessions (
		key       text PRIMARY KEY, -- SHA-256 of the token, hex
		user_name text NOT NULL,
		role      text NOT NULL,
		created   timestamptz NOT NULL,
		last_seen timestamptz NOT NULL
	);`,
	// 4: the edge registry and enrolment tokens (pgedges.go).
	`CREATE TABLE edges (
		id   text PRIMARY KEY,
		body bytea NOT NULL -- EdgeRecord JSON
	);
	CREATE TABLE enrol_tokens (
		hash    text PRIMARY KEY, -- SHA-256 of the secret, hex
		body    bytea NOT NULL,   -- enrolToken JSON
		keep_to timestamptz NOT NULL
	);`,
	// 5: the audit log (central/audit owns its layout; its later steps
	// are appended here in their order).
	audit.PGSchema[0],
	// 6: evidence requests and retrieved files (pgevidence.go).
	`CREATE TABLE evidence_requests (
		id      text PRIMARY KEY,
		created timestamptz NOT NULL,
		body    bytea NOT NULL -- EvidenceRequest JSON
	);
	CREATE TABLE evidence_pieces (
		path text NOT NULL,   -- RetrievalItem.File (and its .part while retrieved)
		off  bigint NOT NULL, -- where the piece starts in the file
		data bytea NOT NULL,
		PRIMARY KEY (path, off)
	);`,
	// 7: what the replica holding an edge last reported of it, for the
	// others' fleet and site views.
	`ALTER TABLE edge_presence ADD COLUMN status bytea;`,
	// 8: recorded playback sessions (pgplayback.go).
	`CREATE TABLE playback_sessions (
		id        text PRIMARY KEY,
		user_name text NOT NULL,
		body      bytea NOT NULL, -- PlaybackSession JSON
		expires   timestamptz NOT NULL
	);
	CREATE INDEX playback_sessions_user ON playback_sessions (user_name, expires);`,
	// 9: bookmarks and live-wall layouts (pgbookmarks.go), device names
	// (pgdevices.go), sensor readings (pgsensors.go).
	`CREATE TABLE bookmarks (
		at_ns  bigint NOT NULL, -- the moment, ns since 1970
		id     text NOT NULL,
		edge   bytea NOT NULL,
		camera bytea NOT NULL,
		body   bytea NOT NULL, -- Bookmark JSON
		PRIMARY KEY (at_ns, id)
	);
	CREATE TABLE console_layouts (
		user_name text PRIMARY KEY,
		body      bytea NOT NULL -- Layouts JSON
	);
	CREATE TABLE edge_devices (
		edge_id text PRIMARY KEY,
		body    bytea NOT NULL -- EdgeDevices JSON
	);
	CREATE TABLE sensor_raw (
		edge_id bytea NOT NULL,
		sensor  bytea NOT NULL,
		t_ns    bigint NOT NULL,
		value   double precision NOT NULL,
		keep_to timestamptz NOT NULL,
		PRIMARY KEY (edge_id, sensor, t_ns)
	);
	CREATE TABLE sensor_minutes (
		edge_id bytea NOT NULL,
		sensor  bytea NOT NULL,
		t_ns    bigint NOT NULL, -- the minute
		sum     double precision NOT NULL,
		lo      double precision NOT NULL,
		hi      double precision NOT NULL,
		n       bigint NOT NULL,
		keep_to timestamptz NOT NULL,
		PRIMARY KEY (edge_id, sensor, t_ns)
	);
	CREATE TABLE sensor_batches (
		edge_id bytea NOT NULL,
		batch   bytea NOT NULL,
		part    integer NOT NULL,
		keep_to timestamptz NOT NULL,
		PRIMARY KEY (edge_id, batch, part)
	);`,
}

// pgSchemaLock is the advisory lock replicas take while migrating, so
// two starting at once apply each version once.
const pgSchemaLock = 0x76696769_6c000001

// pgMigrate brings the database to the newest schema version, one
// transaction per version, and returns the version it is at. A database
// newer than this build is refused: an older replica must not write a
// layout it does not know.
func pgMigrate(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(pgSchemaLock)); err != nil {
		return 0, err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(pgSchemaLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS vigil_schema (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return 0, err
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM vigil_schema`).Scan(&have); err != nil {
		return 0, err
	}
	if have > len(pgMigrations) {
		return have, fmt.Errorf("the database's schema is version %d, newer than this central's %d: upgrade central", have, len(pgMigrations))
	}
	for v := have + 1; v <= len(pgMigrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, pgMigrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO vigil_schema (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return have, fmt.Errorf("schema version %d: %w", v, err)
		}
		have = v
	}
	return have, nil
}
