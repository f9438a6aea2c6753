package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
)

// `vigil central migrate --from badger --to postgres://…` moves a stopped
// central's data and its audit chain, which `vigil central audit verify`
// then checks in PostgreSQL; a wrong --to is refused without moving
// anything.
func TestCentralMigrateCommand(t *testing.T) {
	dir, data, conf := stoppedCentral(t)
	var out, errOut bytes.Buffer
	if code := Main([]string{"central", "migrate", "--config", conf, "--from", "badger", "--to", "mysql://x/y"}, &out, &errOut); code == 0 {
		t.Fatalf("migrate to mysql: exit 0: %s", out.String())
	}
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "cli")
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"central", "migrate", "--config", conf, "--from", "badger", "--to", url}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "verified in PostgreSQL: 3 entries") {
		t.Fatalf("migrate: %d %q %q", code, out.String(), errOut.String())
	}
	t.Log(out.String())

	moved := filepath.Join(dir, "central-pg.yaml")
	if err := os.WriteFile(moved, []byte("listen: 127.0.0.1:0\ndata_dir: "+data+"\naudit_key_file: "+data+"-audit.key\nstore: "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"central", "audit", "verify", "--config", moved}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "intact: 3 entries") {
		t.Fatalf("verify in PostgreSQL: %d %q %q", code, out.String(), errOut.String())
	}
}
