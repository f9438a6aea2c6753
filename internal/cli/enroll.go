package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
)

// runEdgeCommand is `vigil edge ...`: `vigil edge enroll` trades a token
// for a credential; anything else runs the edge node.
func runEdgeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return edgeCommands.Run(ctx, args, stdout, stderr)
}

var edgeCommands = cmdtable.Table{
	Commands: []cmdtable.Command{{Names: []string{"enroll"}, Run: runEdgeEnroll}},
	Default: &cmdtable.Command{Names: []string{"edge"}, Run: func(ctx context.Context, args []string, _, stderr io.Writer) error {
		return runEdge(ctx, args, stderr)
	}},
}

// runEdgeEnroll is `vigil edge enroll --central https://host:port --token T`.
func runEdgeEnroll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("edge enroll", stderr)
	central := fs.String("central", "", "central's edge hub, https://host:port")
	token := fs.String("token", "", "one-time enrolment token from the administrator (or set VIGIL_ENROL_TOKEN)")
	out := fs.String("out", "edge-credential.json", "where to write this edge's credential (mode 0600)")
	force := fs.Bool("force", false, "replace an existing credential file")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: vigil edge enroll --central https://HOST:PORT --token TOKEN [--out FILE] [--force]\n\n"+
			"Makes this box's key pair, registers its public half at central with a one-time token\n"+
			"(TLS pinned to the certificate key named in the token) and writes the credential.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv("VIGIL_ENROL_TOKEN")
	}
	if *central == "" || *token == "" {
		fs.Usage()
		return errors.New("--central and --token are required")
	}
	path, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil && !*force {
		return fmt.Errorf("%s exists: this box is enrolled already (use --force to enrol it again and replace it)", path)
	}
	cred, err := uplink.Enroll(ctx, uplink.EnrolOptions{Central: *central, Token: *token, Software: edge.Software, Hostname: uplink.Hostname()})
	if err != nil {
		return err
	}
	if err := cred.Save(path); err != nil {
		return fmt.Errorf("enrolled, but writing %s failed (enrol again with a new token): %w", path, err)
	}
	fmt.Fprintf(stdout, `Enrolled as edge %q at site %q; credential written to %s (mode 0600).
Central's certificate key is pinned: %s

Put this in edge.yaml:

edge_id: %s
site_id: %s
central:
  url: %s
  token_file: %s
`, cred.EdgeID, cred.SiteID, path, cred.CentralPin, cred.EdgeID, cred.SiteID, cred.EdgeURL(), path)
	return nil
}
