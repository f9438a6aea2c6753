package central

import (
	"context"
	"fmt"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
)

// TestPostgresAlertStoreContract runs the AlertStore contract against the
// PostgreSQL store on a real PostgreSQL server (Debian's, a throwaway
// cluster): each subtest gets a database of its own.
func TestPostgresAlertStoreContract(t *testing.T) {
	pg := postgres.Start(t)
	n := 0
	testAlertStoreContract(t, func(t *testing.T) AlertStore {
		n++
		return openTestPGStore(t, pg, n)
	})
}

// openTestPGStore opens a PostgreSQL store on a new database of pg.
func openTestPGStore(t *testing.T, pg *postgres.Server, n int) *PGStore {
	t.Helper()
	url := pg.CreateDB(t, fmt.Sprintf("store%d", n))
	s, err := OpenPGStore(context.Background(), url, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
