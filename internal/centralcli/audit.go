package centralcli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
)

const auditUsage = `usage: vigil central audit verify --config central.yaml [--checkpoint FILE ...]   (central stopped)

Checks central's audit log from the first entry to the head: every
entry's hash and its link to the one before, that no entry is missing or
moved, and every entry's MAC with the audit key (audit_key_file), so a
log rewritten and rehashed without the key is reported forged.

Each --checkpoint is an audit checkpoint copied from an edge's data
directory (audit-checkpoint.json): central's signed statement of the
log's head at some time. It is checked with central's evidence key and
against the log, which shows entries dropped from the end (TRUNCATED) or
rewritten by someone who also held the audit key.

Exits 0 with a summary, or 1 naming what is broken. A running central is
checked by an admin with GET /api/v1/audit/verify, which also asks every
connected edge for its checkpoint.
`

// runCentralAudit is `vigil central audit verify ...`.
func runCentralAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		return errors.New("audit: the only subcommand is verify")
	}
	fs, _ := cmdtable.NewFlags("central audit verify", stderr)
	path := fs.String("config", "central.yaml", "central configuration file (for its data_dir, audit_key_file and evidence_key_file)")
	var checkpoints cmdtable.List
	fs.Var(&checkpoints, "checkpoint", "an audit checkpoint file copied from an edge (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := central.LoadConfig(*path)
	if err != nil {
		return err
	}
	v, err := central.VerifyAuditOffline(ctx, cfg, checkpoints)
	var be *audit.BreakError
	chainBroken := errors.As(err, &be)
	if err != nil && !chainBroken {
		return err
	}
	if chainBroken {
		fmt.Fprintf(stdout, "audit log BROKEN at seq %d: %s: %s\n", be.Seq, be.Kind, be.Detail)
	} else {
		macs := "MACs not checked"
		if v.MACs {
			macs = "every MAC checked with the audit key"
		}
		fmt.Fprintf(stdout, "audit log chain intact: %d entries, head seq %d, hash %s; %s\n", v.Entries, v.Last, v.Head, macs)
	}
	for _, c := range v.Checkpoints {
		fmt.Fprintln(stdout, c.Summary())
	}
	switch {
	case chainBroken:
		return fmt.Errorf("audit log verification failed at seq %d (%s)", be.Seq, be.Kind)
	case !v.OK && v.Break != nil:
		return fmt.Errorf("audit log verification failed: %s", v.Break.Kind)
	case !v.OK:
		return errors.New("audit log verification failed")
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries, head seq %d, hash %s, %d checkpoint(s) ok\n", v.Entries, v.Last, v.Head, len(v.Checkpoints))
	return nil
}
