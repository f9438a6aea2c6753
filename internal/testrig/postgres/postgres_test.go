package postgres

import (
	"os"
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

// StartCluster (no test owns it) serves a new database, and Close stops
// the server and removes its cluster.
func TestStartClusterOutsideATest(t *testing.T) {
	s, err := StartCluster(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.NewDB("bench")
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	if !strings.HasSuffix(url, "/bench?sslmode=disable") {
		t.Errorf("url %q", url)
	}
	if out, err := s.Exec("SELECT datname FROM pg_database WHERE datname = 'bench'"); err != nil || out != "bench" {
		t.Errorf("database bench: %q %v", out, err)
	}
	root := s.c.root
	s.Close()
	if _, err := s.Exec("SELECT 1"); err == nil {
		t.Error("server answers after Close")
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("cluster directory left behind: %v", err)
	}
}
