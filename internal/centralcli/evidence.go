package centralcli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
)

const evidenceUsage = `usage: vigil evidence verify BUNDLE.zip --key PUBKEY
       vigil evidence pubkey --key-file central-evidence.key [--create]

verify  checks an evidence bundle offline with only central's public key
        (PEM or "ed25519:<base64>"): the signature over manifest.json,
        every file's size and SHA-256, the manifest's consistency, each
        MP4's index, the chain of custody and the zip itself. Exit 0 and a
        summary when it holds; exit 1 naming the file at fault otherwise.
pubkey  prints central's evidence public key (PEM, the one-line form and
        its SHA-256 fingerprint) for the court; --create makes the key
        file (mode 0600) if there is none.
`

func runEvidence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, evidenceUsage)
		return flag.ErrHelp
	}
	err := evidenceCommands.Run(ctx, args, stdout, stderr)
	var unknown *cmdtable.UnknownError
	if errors.As(err, &unknown) {
		fmt.Fprint(stderr, evidenceUsage)
		return fmt.Errorf("unknown subcommand %q", unknown.Name)
	}
	return err
}

// evidenceCommands are `vigil evidence`'s subcommands.
var evidenceCommands = cmdtable.Table{Commands: []cmdtable.Command{
	{Names: []string{"verify"}, Run: runEvidenceVerify},
	{Names: []string{"pubkey"}, Run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		return runEvidencePubkey(args, stdout, stderr)
	}},
	{Names: []string{"-h", "--help", "help"}, Run: func(_ context.Context, _ []string, stdout, _ io.Writer) error {
		fmt.Fprint(stdout, evidenceUsage)
		return flag.ErrHelp
	}},
}}

// parseInterspersed parses flags before and after positional arguments
// (`verify bundle.zip --key k` and `verify --key k bundle.zip`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func runEvidenceVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("evidence verify", stderr)
	key := fs.String("key", "", "central's evidence public key file (PEM or ed25519:<base64>)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *key == "" {
		fmt.Fprint(stderr, evidenceUsage)
		return errors.New("verify needs one bundle and --key")
	}
	pub, err := evidence.ReadPublicKey(*key)
	if err != nil {
		return err
	}
	res, err := evidence.VerifyFile(ctx, pos[0], pub)
	if err != nil {
		var ve *evidence.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("%s: verification FAILED: %s: %s", pos[0], ve.File, ve.Reason)
		}
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	fmt.Fprint(stdout, evidence.Summary(res))
	return nil
}

func runEvidencePubkey(args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("evidence pubkey", stderr)
	path := fs.String("key-file", "central-evidence.key", "central's evidence private key file")
	create := fs.Bool("create", false, "generate the key file (mode 0600) if it does not exist")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var (
		priv    ed25519.PrivateKey
		created bool
		err     error
	)
	if *create {
		k, c, e := evidence.LoadOrGenerateKey(*path)
		priv, created, err = k, c, e
	} else {
		k, e := evidence.LoadKey(*path)
		priv, err = k, e
	}
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stderr, "created %s (mode 0600): keep it secret and backed up\n", *path)
	}
	pub := priv.Public().(ed25519.PublicKey)
	fmt.Fprint(stdout, string(evidence.PublicKeyPEM(pub)))
	fmt.Fprintln(stdout, evidence.FormatPublicKey(pub))
	fmt.Fprintln(stdout, "sha256:"+evidence.Fingerprint(pub))
	return nil
}
