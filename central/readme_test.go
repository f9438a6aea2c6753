package central

import (
	"os"
	"strings"
	"testing"
)

// The replica example in README.md ("Central on several machines") is a
// valid central.yaml.
func TestReadmeReplicaExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## Central on several machines")
	if !ok {
		t.Fatal(`README.md has no "Central on several machines" section`)
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("the section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	path := t.TempDir() + "/central.yaml"
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("README's replica example does not load: %v", err)
	}
	if !postgresStore(cfg.Store) || cfg.ReplicaURL == "" || cfg.EdgeHub.CertFile == "" {
		t.Fatalf("README's replica example: %+v", cfg)
	}
}
