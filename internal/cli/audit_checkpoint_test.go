package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

func auditEntryKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte("audit/e/"), seq) }

// withStore opens a stopped central's Badger store for f.
func withStore(t *testing.T, data string, f func(txn *badger.Txn) error) {
	t.Helper()
	db, err := kv.Open(kv.Options{Dir: data, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
}

func getVal(t *testing.T, txn *badger.Txn, key []byte) []byte {
	t.Helper()
	item, err := txn.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := item.ValueCopy(nil)
	return v
}

// appendAudit starts central on cfg, appends entries for targets and
// stops it; it returns the entries.
func appendAudit(t *testing.T, cfg central.Config, targets ...string) []audit.Entry {
	t.Helper()
	s, err := central.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []audit.Entry
	for _, target := range targets {
		e, err := s.AuditLog().Append(context.Background(), audit.Entry{Actor: audit.Actor{User: "ann", Role: "guard"}, Action: audit.ActionView, Target: target})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// writeCheckpoint writes the file an edge keeps, signed by key.
func writeCheckpoint(t *testing.T, path, edge string, key ed25519.PrivateKey, seq uint64, head string) {
	t.Helper()
	h := wire.HeldAuditCheckpoint{AuditCheckpoint: wire.AuditCheckpoint{Seq: seq, Head: head, Time: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		EdgeID: edge, Received: time.Now().UTC(), Verified: true}
	h.Sign(key)
	b, _ := json.Marshal(h)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func runVerify(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(append([]string{"central", "audit", "verify"}, args...), &out, &errOut)
	t.Logf("exit %d:\n%s%s", code, out.String(), errOut.String())
	return code, out.String() + errOut.String()
}

// `vigil central audit verify --checkpoint` finds the newest entries
// dropped (with the head record put back as it was, which the chain and
// the MACs accept), and refuses a checkpoint not signed by central.
func TestCentralAuditVerifyCheckpoints(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "central.yaml")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:0\ndata_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := central.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	es := appendAudit(t, cfg, "a-1", "a-2")
	var head2 []byte
	withStore(t, data, func(txn *badger.Txn) error { head2 = getVal(t, txn, []byte("audit/head")); return nil })
	es = append(es, appendAudit(t, cfg, "a-3", "a-4")...)

	key, err := evidence.LoadKey(filepath.Join(data, "central-evidence.key"))
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "gate-north.json")
	writeCheckpoint(t, cp, "gate-north", key, 4, es[3].Hash)
	if code, out := runVerify(t, "--config", conf, "--checkpoint", cp); code != 0 ||
		!strings.Contains(out, "every MAC checked") || !strings.Contains(out, "edge gate-north (signed 2026-12-01T08:00:00Z) at seq 4: the log has that entry (ok)") {
		t.Fatalf("intact: %d", code)
	}

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged := filepath.Join(dir, "forged.json")
	writeCheckpoint(t, forged, "gate-south", other, 2, es[1].Hash)
	if code, out := runVerify(t, "--config", conf, "--checkpoint", cp, "--checkpoint", forged); code != 1 ||
		!strings.Contains(out, "edge gate-south is FORGED") {
		t.Fatalf("forged checkpoint: %d", code)
	}

	// Drop seq 3 and 4, put the head record of seq 2 back.
	withStore(t, data, func(txn *badger.Txn) error {
		txn.Delete(auditEntryKey(3))
		txn.Delete(auditEntryKey(4))
		return txn.Set([]byte("audit/head"), head2)
	})
	if code, out := runVerify(t, "--config", conf); code != 0 || !strings.Contains(out, "intact: 2 entries") {
		t.Fatalf("without a checkpoint the truncation is invisible: %d", code)
	}
	code, out := runVerify(t, "--config", conf, "--checkpoint", cp)
	if code != 1 || !strings.Contains(out, "audit log TRUNCATED: checkpoint held by edge gate-north (signed 2026-12-01T08:00:00Z) covers seq 4, the log ends at seq 2") {
		t.Fatalf("truncated: %d", code)
	}
}

// An entry edited and every later hash and the head recomputed passes
// the public chain but not the MACs; a world-readable key is refused.
func TestCentralAuditVerifyForged(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "central.yaml")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:0\ndata_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := central.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	appendAudit(t, cfg, "a-1", "a-2", "a-3", "a-4")
	withStore(t, data, func(txn *badger.Txn) error {
		var prev string
		for seq := uint64(2); seq <= 4; seq++ {
			var e audit.Entry
			if err := json.Unmarshal(getVal(t, txn, auditEntryKey(seq)), &e); err != nil {
				return err
			}
			if seq == 2 {
				e.Target = "a-9"
			} else {
				e.Prev = prev
			}
			e.Hash = audit.ComputeHash(e)
			prev = e.Hash
			v, _ := json.Marshal(e)
			if err := txn.Set(auditEntryKey(seq), v); err != nil {
				return err
			}
		}
		var h map[string]any
		json.Unmarshal(getVal(t, txn, []byte("audit/head")), &h)
		h["hash"] = prev
		v, _ := json.Marshal(h)
		return txn.Set([]byte("audit/head"), v)
	})
	code, out := runVerify(t, "--config", conf)
	if code != 1 || !strings.Contains(out, "BROKEN at seq 2: forged") {
		t.Fatalf("rehashed rewrite: %d", code)
	}
	keyFile := data + "-audit.key"
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runVerify(t, "--config", conf); code != 1 || !strings.Contains(out, "chmod 600") {
		t.Fatalf("a 0644 key: %d", code)
	}
}
