package central

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// runUplink runs a real edge uplink for cred with its data in dir.
func runUplink(t *testing.T, cred uplink.Credential, dir string) *uplink.Uplink {
	t.Helper()
	box, err := outbox.Open(filepath.Join(dir, "outbox"), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	up := uplink.New(uplink.Config{Credential: &cred, EdgeID: cred.EdgeID, SiteID: cred.SiteID, Software: "test", DataDir: dir,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 300 * time.Millisecond}, box, nil, nil, testLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); up.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; box.Close() })
	return up
}

func auditN(t *testing.T, s *Server, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.AuditLog().Append(context.Background(), audit.Entry{Actor: audit.Actor{User: "ann", Role: RoleGuard},
			Action: audit.ActionView, Target: fmt.Sprintf("cam-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func checkpointOf(v auditVerifyOut, edge string) *AuditCheckpointCheck {
	for i := range v.Checkpoints {
		if v.Checkpoints[i].Edge == edge {
			return &v.Checkpoints[i]
		}
	}
	return nil
}

// Central hands a signed checkpoint to an edge when it connects and on
// its ticker; GET /api/v1/audit/verify asks the edge for it: ok while the
// log has the entry it names, truncated once the newest entries are
// dropped and the head record put back as it was, which neither the hash
// chain nor the MACs can see.
func TestAuditCheckpointPushedAndTruncationFound(t *testing.T) {
	s := startServer(t)
	cred := enrol(t, s, "gate-east", siteID)
	auditN(t, s, 5)
	edgeDir := t.TempDir()
	up := runUplink(t, cred, edgeDir)
	eventually(t, "the edge holds the checkpoint pushed after welcome", func() bool {
		h, ok := up.AuditCheckpoint()
		seq, _ := s.AuditLog().Head()
		return ok && h.Seq == seq
	})
	h, _ := up.AuditCheckpoint()
	if !h.Verified || !h.AuditCheckpoint.Verify(s.EvidencePublicKey()) || h.EdgeID != "gate-east" {
		t.Fatalf("held checkpoint: %+v", h)
	}
	if _, err := os.Stat(filepath.Join(edgeDir, uplink.CheckpointFile)); err != nil {
		t.Fatalf("not kept on disk: %v", err)
	}

	// The head record now: what an insider saves to put back later.
	var savedHead []byte
	s.store.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(auditPrefix + "head"))
		if err != nil {
			return err
		}
		savedHead, err = item.ValueCopy(nil)
		return err
	})
	keep, _ := s.AuditLog().Head()

	auditN(t, s, 4)
	s.checkpoints.broadcast(s.checkpoints.sign()) // the ticker's work
	last, lastHash := s.AuditLog().Head()
	eventually(t, "the edge holds the newer checkpoint", func() bool {
		h, ok := up.AuditCheckpoint()
		return ok && h.Seq == last && h.Head == lastHash
	})

	var v auditVerifyOut
	if resp := getJSON(t, s, "/api/v1/audit/verify", &v); resp.StatusCode != http.StatusOK || !v.OK || !v.MACs {
		t.Fatalf("verify: %d %+v", resp.StatusCode, v)
	}
	c := checkpointOf(v, "gate-east")
	if c == nil || c.Status != checkpointOK || c.Seq != last || c.LogEnd != last {
		t.Fatalf("gate-east: %+v in %+v", c, v.Checkpoints)
	}
	if c := checkpointOf(v, northID); c == nil || c.Status != checkpointUnreachable {
		t.Fatalf("offline gate-north: %+v", c)
	}
	if v.Checkpoint == nil || v.Checkpoint.Seq != last {
		t.Fatalf("latest signed checkpoint: %+v", v.Checkpoint)
	}

	// Drop the newest entries and put the old head record back.
	err := s.store.db.Update(func(txn *badger.Txn) error {
		for seq := keep + 1; seq <= last; seq++ {
			if err := txn.Delete(binary.BigEndian.AppendUint64([]byte(auditPrefix+"e/"), seq)); err != nil {
				return err
			}
		}
		return txn.Set([]byte(auditPrefix+"head"), savedHead)
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.AuditLog().Verify(context.Background()); err != nil || rep.Last != keep {
		t.Fatalf("the truncated log should pass the chain and MAC checks: %+v %v", rep, err)
	}
	resp := getJSON(t, s, "/api/v1/audit/verify", &v)
	c = checkpointOf(v, "gate-east")
	if resp.StatusCode != http.StatusConflict || v.OK || v.Break == nil || v.Break.Kind != audit.BreakTruncated || v.Break.Seq != keep+1 {
		t.Fatalf("verify after truncation: %d %+v %+v", resp.StatusCode, v, v.Break)
	}
	if c == nil || c.Status != checkpointTruncated || c.LogEnd != keep || c.Seq != last {
		t.Fatalf("gate-east after truncation: %+v", c)
	}
	want := fmt.Sprintf("audit log TRUNCATED: checkpoint held by edge gate-east (signed %s) covers seq %d, the log ends at seq %d",
		c.Signed.UTC().Format(time.RFC3339), last, keep)
	if v.Error != want {
		t.Fatalf("error %q\nwant  %q", v.Error, want)
	}
}

// The raw client used by other tests sees the checkpoint after welcome.
func TestAuditCheckpointAfterWelcome(t *testing.T) {
	s := startServer(t)
	auditN(t, s, 3)
	e := connectEdge(t, s, northID, northToken)
	e.send(wire.TypeAlert, testAlert(northID, "a-1"))
	e.expectAck("a-1")
	if len(e.checkpoints) != 1 {
		t.Fatalf("checkpoints after welcome: %d", len(e.checkpoints))
	}
	cp := e.checkpoints[0]
	seq, head := s.AuditLog().Head()
	if !cp.Verify(s.EvidencePublicKey()) || cp.Seq != seq || cp.Head != head {
		t.Fatalf("checkpoint %+v, head %d %s", cp, seq, head)
	}
	cp.Seq++
	if cp.Verify(s.EvidencePublicKey()) {
		t.Fatal("a changed checkpoint still verifies")
	}
}

// The audit key lives outside the Badger directory, and one that others
// may read is refused.
func TestAuditKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "central")
	cfg := testConfig(dir)
	s := newServer(t, cfg)
	path := auditKeyPath(cfg)
	if pathInside(path, dir) || path != dir+"-audit.key" {
		t.Fatalf("audit key at %s, inside the store %s", path, dir)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	if _, err := New(cfg, testLogger()); err == nil || !strings.Contains(err.Error(), "audit_key_file") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 audit key: %v", err)
	}
	os.Chmod(path, 0o600)

	bad := testConfig(t.TempDir())
	bad.AuditKeyFile = filepath.Join(bad.DataDir, "audit.key")
	bad.AuditCheckpointInterval = 0
	if _, err := New(bad, testLogger()); err == nil || !strings.Contains(err.Error(), "audit_key_file") {
		t.Fatalf("a key inside data_dir: %v", err)
	}
	bad = testConfig(t.TempDir())
	bad.AuditCheckpointInterval = 1
	if _, err := New(bad, testLogger()); err == nil || !strings.Contains(err.Error(), "audit_checkpoint_interval") {
		t.Fatalf("a 1ns interval: %v", err)
	}
}

// An edge that is connected but holds nothing, or answers nothing, is
// reported without failing the check.
func TestAuditVerifyEdgeWithoutCheckpoint(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, southID, southToken)
	done := make(chan error, 1)
	go func() {
		env := e.read()
		var req wire.Request
		if env.Type != wire.TypeRequest || wire.DecodeBody(env, &req) != nil || req.Method != wire.MethodAuditCheckpoint {
			done <- errors.New("want an audit_checkpoint request, got " + env.Type)
			return
		}
		frame, _ := wire.Marshal(wire.TypeResponse, wire.Response{ID: req.ID, Status: wire.StatusNotAvailable, Error: "none held", Final: true})
		done <- e.ws.WriteMessage(1, frame)
	}()
	var v auditVerifyOut
	if resp := getJSON(t, s, "/api/v1/audit/verify", &v); resp.StatusCode != http.StatusOK || !v.OK {
		t.Fatalf("verify: %d %+v", resp.StatusCode, v)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := checkpointOf(v, southID); c == nil || c.Status != checkpointNone {
		t.Fatalf("gate-south: %+v", c)
	}
}
