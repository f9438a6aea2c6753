package centralcli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
)

const userUsage = `usage: vigil central user add  --config central.yaml --name NAME --role ROLE [--password-file FILE] [--replace]
       vigil central user list --config central.yaml
       vigil central user hash < password   (argon2id hash for central.yaml's users[].password_argon2id)

roles: guard, supervisor, police_liaison, installer, admin
add and list open central's store: run them while central is stopped (or use
the admin page, /admin/, while it runs). Without --password-file, add makes
a password and prints it once.
`

// runCentralUser is `vigil central user ...`.
func runCentralUser(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return errors.New("missing user command")
	}
	fs, _ := cmdtable.NewFlags("central user "+args[0], stderr)
	path := fs.String("config", "central.yaml", "central configuration file (for its data_dir)")
	name := fs.String("name", "", "user name (lower-case letters, digits, . _ -)")
	role := fs.String("role", "", "guard, supervisor, police_liaison, installer or admin")
	pwFile := fs.String("password-file", "", "file holding the password (first line)")
	replace := fs.Bool("replace", false, "change an existing user's role and password")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "hash":
		pw, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		pw = strings.TrimRight(pw, "\r\n")
		if err := central.ValidatePassword(pw); err != nil {
			return err
		}
		fmt.Fprintln(stdout, central.HashPassword(pw))
		return nil
	case "add", "list":
	default:
		fmt.Fprint(stderr, userUsage)
		return fmt.Errorf("unknown user command %q", args[0])
	}
	cfg, err := central.LoadConfig(*path)
	if err != nil {
		return err
	}
	if args[0] == "list" {
		users, err := central.ListUsers(cfg.DataDir)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintf(stdout, "%-20s %-15s created %s by %s\n", u.Name, u.Role, u.CreatedAt.Format("2006-01-02 15:04"), u.CreatedBy)
		}
		return nil
	}
	if *name == "" || *role == "" {
		return errors.New("--name and --role are required")
	}
	pw, generated := "", false
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return err
		}
		pw, _, _ = strings.Cut(string(b), "\n")
		pw = strings.TrimRight(pw, "\r")
	} else {
		pw, generated = central.RandomPassword(), true
	}
	u, err := central.AddUser(cfg.DataDir, *name, *role, pw, "vigil central user add", *replace)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s (%s) saved\n", u.Name, u.Role)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", pw)
	}
	return nil
}
