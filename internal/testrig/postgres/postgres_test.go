package postgres

import (
	"strings"
	"testing"
)

// A test cluster answers SQL on 127.0.0.1 and keeps committed rows across
// a crash (SIGKILL) and a clean restart.
func TestClusterSurvivesKillAndRestart(t *testing.T) {
	db := Start(t)
	if v := db.SQL("SHOW server_version"); !strings.HasPrefix(v, "1") {
		t.Fatalf("server_version %q", v)
	}
	db.SQL("CREATE TABLE alerts (seq bigserial PRIMARY KEY, id text UNIQUE NOT NULL); INSERT INTO alerts (id) VALUES ('a1'), ('a2')")
	db.Kill()
	db.Start()
	if got := db.SQL("SELECT string_agg(id, ',' ORDER BY seq) FROM alerts"); got != "a1,a2" {
		t.Fatalf("after a crash: %q", got)
	}
	db.Stop()
	db.Start()
	db.SQL("INSERT INTO alerts (id) VALUES ('a3')")
	if got := db.SQL("SELECT count(*) FROM alerts"); got != "3" {
		t.Fatalf("after a restart: %q rows", got)
	}
	if user := db.SQL("SELECT current_user"); user != Superuser {
		t.Fatalf("current_user %q", user)
	}
}
