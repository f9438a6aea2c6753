package uplink

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

var cpT0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func signedCP(key ed25519.PrivateKey, seq uint64, head byte, at time.Time) wire.AuditCheckpoint {
	cp := wire.AuditCheckpoint{Seq: seq, Head: strings.Repeat(string("0123456789abcdef"[head%16]), 64), Time: at}
	cp.Sign(key)
	return cp
}

func noKey() ed25519.PublicKey { return nil }

// The edge keeps the newest checkpoint on disk, across a restart, and an
// older one never replaces it.
func TestCheckpointKeepsNewest(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), CheckpointFile)
	c, err := loadCheckpoints(path, noKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.get(); ok {
		t.Fatal("a fresh edge holds a checkpoint")
	}
	if kept, err := c.accept(signedCP(priv, 10, 1, cpT0), "gate-north", cpT0); !kept || err != nil {
		t.Fatalf("first: %v %v", kept, err)
	}
	if kept, err := c.accept(signedCP(priv, 12, 2, cpT0.Add(time.Minute)), "gate-north", cpT0); !kept || err != nil {
		t.Fatalf("newer: %v %v", kept, err)
	}
	if kept, err := c.accept(signedCP(priv, 11, 3, cpT0.Add(2*time.Minute)), "gate-north", cpT0); kept || !errors.Is(err, errOlderCheckpoint) {
		t.Fatalf("older seq accepted: %v %v", kept, err)
	}
	// Same seq, another head: the first is kept (it is the evidence).
	if kept, err := c.accept(signedCP(priv, 12, 4, cpT0.Add(3*time.Minute)), "gate-north", cpT0); kept || err == nil {
		t.Fatalf("conflicting head accepted: %v %v", kept, err)
	}
	// Same seq and head signed later: refreshed.
	if kept, err := c.accept(signedCP(priv, 12, 2, cpT0.Add(4*time.Minute)), "gate-north", cpT0); !kept || err != nil {
		t.Fatalf("re-signed: %v %v", kept, err)
	}
	if kept, _ := c.accept(signedCP(priv, 12, 2, cpT0.Add(time.Minute)), "gate-north", cpT0); kept {
		t.Fatal("an earlier signature of the same head replaced a later one")
	}

	// Restart: the file holds seq 12 and an older one is still refused.
	c, err = loadCheckpoints(path, noKey)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := c.get()
	if !ok || h.Seq != 12 || h.EdgeID != "gate-north" || !h.Time.Equal(cpT0.Add(4*time.Minute)) || h.Verified {
		t.Fatalf("after restart: %+v %v", h, ok)
	}
	if !h.AuditCheckpoint.Verify(priv.Public().(ed25519.PublicKey)) {
		t.Fatal("the stored checkpoint no longer verifies")
	}
	if kept, err := c.accept(signedCP(priv, 5, 5, cpT0.Add(time.Hour)), "gate-north", cpT0); kept || err == nil {
		t.Fatalf("older after restart: %v %v", kept, err)
	}
	if h2, _ := c.get(); h2.Seq != 12 {
		t.Fatalf("held %d", h2.Seq)
	}
	// Only the file is left in the directory: no temporary files.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory: %v", ents)
	}
	var onDisk wire.HeldAuditCheckpoint
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &onDisk); err != nil || onDisk.Seq != 12 {
		t.Fatalf("file: %s %v", b, err)
	}
}

// With central's key known, a checkpoint not signed by it is refused.
func TestCheckpointForgeryRefused(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	c, _ := loadCheckpoints(filepath.Join(t.TempDir(), CheckpointFile), func() ed25519.PublicKey { return pub })
	if kept, err := c.accept(signedCP(priv, 3, 1, cpT0), "e", cpT0); !kept || err != nil {
		t.Fatalf("genuine: %v %v", kept, err)
	}
	if h, _ := c.get(); !h.Verified {
		t.Fatal("not marked verified")
	}
	forged := signedCP(other, 99, 2, cpT0.Add(time.Hour))
	if kept, err := c.accept(forged, "e", cpT0); kept || err == nil {
		t.Fatalf("forged accepted: %v %v", kept, err)
	}
	tampered := signedCP(priv, 4, 2, cpT0.Add(time.Hour))
	tampered.Seq = 400
	if kept, err := c.accept(tampered, "e", cpT0); kept || err == nil {
		t.Fatalf("tampered accepted: %v %v", kept, err)
	}
	unsigned := signedCP(priv, 5, 2, cpT0.Add(time.Hour))
	unsigned.Signature = nil
	if kept, err := c.accept(unsigned, "e", cpT0); kept || err == nil {
		t.Fatalf("unsigned accepted: %v %v", kept, err)
	}
	if h, _ := c.get(); h.Seq != 3 {
		t.Fatalf("held seq %d after forgeries", h.Seq)
	}
}

// A damaged file is reported and replaced by the next checkpoint.
func TestCheckpointDamagedFile(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), CheckpointFile)
	os.WriteFile(path, []byte("{not json"), 0o600)
	c, err := loadCheckpoints(path, noKey)
	if err == nil {
		t.Fatal("a damaged file loaded")
	}
	if kept, err := c.accept(signedCP(priv, 1, 1, cpT0), "e", cpT0); !kept || err != nil {
		t.Fatalf("after damage: %v %v", kept, err)
	}
}
