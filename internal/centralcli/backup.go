package centralcli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
)

const backupUsage = `usage: vigil central backup  --config central.yaml --out FILE   (central stopped)
       vigil central restore --config central.yaml --from FILE  (into an empty data_dir)

A running central is backed up by an admin with
  curl -H "Authorization: Bearer $ADMIN_TOKEN" -o backup.zip http://CENTRAL/api/v1/admin/backup
`

// runCentralBackup is `vigil central backup|restore ...`.
func runCentralBackup(cmd string, args []string, stdout, stderr io.Writer) error {
	fs, _ := cmdtable.NewFlags("central "+cmd, stderr)
	path := fs.String("config", "central.yaml", "central configuration file (for its data_dir)")
	out := fs.String("out", "", "backup: file to write (must not exist)")
	from := fs.String("from", "", "restore: backup file to read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := central.LoadConfig(*path)
	if err != nil {
		return err
	}
	switch cmd {
	case "backup":
		if *out == "" {
			fmt.Fprint(stderr, backupUsage)
			return errors.New("backup: --out is required")
		}
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if err := central.BackupStopped(cfg.DataDir, central.AuditKeyPath(cfg), f); err != nil {
			f.Close()
			os.Remove(*out)
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backup of %s written to %s\n", cfg.DataDir, *out)
	case "restore":
		if *from == "" {
			fmt.Fprint(stderr, backupUsage)
			return errors.New("restore: --from is required")
		}
		if err := central.RestoreBackup(*from, cfg.DataDir, central.AuditKeyPath(cfg)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored %s into %s; start central\n", *from, cfg.DataDir)
	}
	return nil
}
