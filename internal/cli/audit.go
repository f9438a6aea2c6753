package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/audit"
)

const auditUsage = `usage: vigil central audit verify --config central.yaml   (central stopped)

Checks central's hash-chained audit log from the first entry to the head:
every entry's hash, its link to the one before, that no entry is missing
or moved. Exits 0 with a summary, or 1 naming the first broken entry.
A running central is checked by an admin with GET /api/v1/audit/verify.
`

// runCentralAudit is `vigil central audit verify ...`.
func runCentralAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		return errors.New("audit: the only subcommand is verify")
	}
	fs, _ := newFlags("central audit verify", stderr)
	path := fs.String("config", "central.yaml", "central configuration file (for its data_dir)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := central.LoadConfig(*path)
	if err != nil {
		return err
	}
	rep, err := central.VerifyAuditStopped(ctx, cfg.DataDir)
	var be *audit.BreakError
	if errors.As(err, &be) {
		fmt.Fprintf(stdout, "audit log BROKEN at seq %d: %s: %s\n", be.Seq, be.Kind, be.Detail)
		return fmt.Errorf("audit log verification failed at seq %d (%s)", be.Seq, be.Kind)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries, head seq %d, hash %s\n", rep.Entries, rep.Last, rep.Head)
	return nil
}
