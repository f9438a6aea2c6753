package centralcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
)

const migrateUsage = `usage: vigil central migrate --config central.yaml --from badger --to postgres://user@host:5432/vigil   (central stopped)

Moves a single-machine central's data from its embedded store (data_dir)
into an empty PostgreSQL database, for several centrals on one database:
alerts with their change log, snapshots and events, console users and
their sessions (nobody is signed out), the edge registry and enrolment
tokens, evidence requests with their retrieved videos, bookmarks, live
wall layouts, device names, sensor history, and the audit chain byte for
byte. The audit chain is verified
(hashes and MACs, audit_key_file) before anything moves and again in
PostgreSQL; a chain that does not verify is not moved. Everything but
the audit log moves in one transaction.

Then set store: to the same connection string in central.yaml and start
central (the replicas: README, "Central on several machines").
`

// runCentralMigrate is `vigil central migrate ...`.
func runCentralMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := cmdtable.NewFlags("central migrate", stderr)
	path := fs.String("config", "central.yaml", "central configuration file (for its data_dir and audit_key_file)")
	from := fs.String("from", "badger", "the store to move from: badger (the data_dir)")
	to := fs.String("to", "", "the PostgreSQL database to move to (postgres://…), empty")
	fs.Usage = func() { fmt.Fprint(stderr, migrateUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from != "badger" || *to == "" {
		fmt.Fprint(stderr, migrateUsage)
		return errors.New("migrate: --from badger and --to postgres://… are required")
	}
	cfg, err := central.LoadConfig(*path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := central.MigrateToPostgres(ctx, cfg, *to, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit chain verified before: %d entries, head %s\n", rep.AuditBefore.Entries, rep.AuditBefore.Head)
	fmt.Fprintf(stdout, "moved: %d alerts, %d changes, %d snapshots, %d events, %d users, %d sessions, %d edges, %d enrolment tokens\n",
		rep.Alerts, rep.Changes, rep.Snapshots, rep.Events, rep.Users, rep.Sessions, rep.Edges, rep.Tokens)
	fmt.Fprintf(stdout, "moved: %d evidence requests, %d evidence files (%d bytes)\n", rep.EvidenceRequests, rep.EvidenceFiles, rep.EvidenceBytes)
	fmt.Fprintf(stdout, "moved: %d bookmarks, %d live wall layouts, %d edges' device names, %d sensor readings, %d sensor minutes\n",
		rep.Bookmarks, rep.Layouts, rep.DeviceLists, rep.SensorReadings, rep.SensorMinutes)
	fmt.Fprintf(stdout, "audit chain verified in PostgreSQL: %d entries, head %s (the same)\n", rep.AuditAfter.Entries, rep.AuditAfter.Head)
	if len(rep.Kept) > 0 {
		var kept []string
		for what, n := range rep.Kept {
			kept = append(kept, fmt.Sprintf("%d %s", n, what))
		}
		slices.Sort(kept)
		fmt.Fprintf(stdout, "kept in %s: %s\n", cfg.DataDir, strings.Join(kept, ", "))
	}
	fmt.Fprintln(stdout, "now set store: to this connection string in central.yaml and start central")
	return nil
}
