package central

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// The audit log is protected twice (ARCHITECTURE.md, Audit):
//
//   - every entry carries a MAC under the audit key, a file outside the
//     store (audit_key_file), so an entry rewritten and rehashed by
//     someone who can write the store but lacks the key is "forged";
//   - central signs checkpoints (seq, head hash, time) of the log with its
//     evidence key, every audit_checkpoint_interval and whenever an edge
//     connects, and hands them to the edges, which keep the newest. The
//     log's end can be moved back without any key (drop the newest
//     entries, put back an old head record); a checkpoint held on an edge
//     still covers the dropped entries, and the verifiers ask for it.

const (
	defaultAuditCheckpointInterval = 5 * time.Minute
	// auditCheckpointAsk bounds how long verify waits for each edge's
	// checkpoint.
	auditCheckpointAsk = 3 * time.Second
)

// Per-checkpoint verdicts in GET /api/v1/audit/verify and the CLI.
const (
	checkpointOK          = "ok"          // the log has the entry the checkpoint names
	checkpointMismatch    = "mismatch"    // the entry at its seq has another hash: rewritten
	checkpointTruncated   = "truncated"   // the log ends before its seq
	checkpointForged      = "forged"      // not signed by central's evidence key
	checkpointNone        = "none"        // the edge holds no checkpoint yet
	checkpointUnreachable = "unreachable" // the edge is offline or did not answer
)

// auditKeyPath is where the audit key lives: audit_key_file, or next to
// the Badger directory (data_dir is that directory: a file inside it
// would travel with the store it protects).
// AuditKeyPath is where cfg keeps its audit key (audit_key_file, or next
// to data_dir as <data_dir>-audit.key).
func AuditKeyPath(cfg Config) string { return auditKeyPath(cfg) }

func auditKeyPath(cfg Config) string {
	if cfg.AuditKeyFile != "" {
		return cfg.AuditKeyFile
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = filepath.Clean(cfg.DataDir)
	}
	return dir + "-audit.key"
}

// pathInside reports whether path is dir or lies under it.
func pathInside(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// evidenceKeyPath is where central's evidence key lives.
func evidenceKeyPath(cfg Config) string {
	if cfg.EvidenceKeyFile != "" {
		return cfg.EvidenceKeyFile
	}
	return filepath.Join(cfg.DataDir, evidenceKeyFile)
}

// loadAuditKey loads (or on first start makes) the audit key.
func loadAuditKey(cfg Config, log interface{ Info(string, ...any) }) ([]byte, error) {
	path := auditKeyPath(cfg)
	key, created, err := audit.LoadOrCreateKey(path)
	if err != nil {
		return nil, fmt.Errorf("central: audit key (audit_key_file): %w", err)
	}
	if created {
		log.Info("audit key created; back it up apart from the store", "file", path)
	}
	return key, nil
}

// checkpointer signs audit checkpoints, hands them to the edges (every
// interval, and to each edge as it is welcomed), and asks the edges for
// the ones they hold when the log is verified.
type checkpointer struct {
	log   *audit.Log
	key   ed25519.PrivateKey // central's evidence key (evidence_key.go)
	edges checkpointEdges
	every time.Duration

	mu     sync.Mutex
	latest *wire.AuditCheckpoint
	done   chan struct{} // closed when the ticker goroutine has returned
}

// checkpointEdges is what the checkpointer needs of the edges: the ones
// registered (asked at verify), the ones connected (handed checkpoints),
// and a request down one's connection.
type checkpointEdges interface {
	active() []string
	connections() []*edgeConn
	request(ctx context.Context, edgeID string, req wire.Request) (<-chan wire.Response, func(), error)
}

// hubEdges joins the registry and the edge hub for checkpointEdges.
type hubEdges struct {
	reg *registry
	*edgeHub
}

// active lists the registered edges that are not revoked.
func (e hubEdges) active() []string {
	var ids []string
	for _, rec := range e.reg.list() {
		if !rec.Revoked() {
			ids = append(ids, rec.ID)
		}
	}
	return ids
}

func newCheckpointer(l *audit.Log, key ed25519.PrivateKey, edges checkpointEdges, every time.Duration) *checkpointer {
	if every <= 0 {
		every = defaultAuditCheckpointInterval
	}
	return &checkpointer{log: l, key: key, edges: edges, every: every}
}

// sign signs the log's head now and keeps it as the latest.
func (c *checkpointer) sign() wire.AuditCheckpoint {
	seq, head := c.log.Head()
	cp := wire.AuditCheckpoint{Seq: seq, Head: head, Time: time.Now().UTC().Round(0)}
	cp.Sign(c.key)
	c.mu.Lock()
	if c.latest == nil || !c.latest.Time.After(cp.Time) {
		c.latest = &cp
	}
	c.mu.Unlock()
	return cp
}

// latestSigned is the last checkpoint signed (nil before the first).
func (c *checkpointer) latestSigned() *wire.AuditCheckpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// start signs a checkpoint now and then every interval, sending each to
// every connected edge, until ctx ends (then wait returns).
func (c *checkpointer) start(ctx context.Context) {
	c.done = make(chan struct{})
	c.sign()
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.broadcast(c.sign())
			}
		}
	}()
}

// wait waits for the ticker goroutine (after its context ended).
func (c *checkpointer) wait() {
	if c != nil && c.done != nil {
		<-c.done
	}
}

// pushTo hands a freshly signed checkpoint to an edge that has just been
// welcomed (the edge hub's onWelcome).
func (c *checkpointer) pushTo(ec *edgeConn) {
	frame, err := wire.Marshal(wire.TypeAuditCheckpoint, c.sign())
	if err != nil {
		panic("central: audit checkpoint does not marshal: " + err.Error())
	}
	if !ec.trySend(frame) {
		ec.log.Warn("audit checkpoint not sent: the edge's queue is full")
	}
}

// broadcast hands cp to every connected edge; an edge whose queue is full
// gets the next one.
func (c *checkpointer) broadcast(cp wire.AuditCheckpoint) {
	frame, err := wire.Marshal(wire.TypeAuditCheckpoint, cp)
	if err != nil {
		panic("central: audit checkpoint does not marshal: " + err.Error())
	}
	for _, ec := range c.edges.connections() {
		if !ec.trySend(frame) {
			ec.log.Warn("audit checkpoint not sent: the edge's queue is full")
		}
	}
}

// connections lists the live edge connections.
func (h *edgeHub) connections() []*edgeConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*edgeConn, 0, len(h.conns))
	for _, c := range h.conns {
		out = append(out, c)
	}
	return out
}

// trySend queues a frame for the writer without waiting.
func (c *edgeConn) trySend(frame []byte) bool {
	select {
	case c.out <- frame:
		return true
	default:
		return false
	}
}

// AuditCheckpointCheck is one checkpoint held by an edge, checked against
// the log.
type AuditCheckpointCheck struct {
	Edge     string    `json:"edge"`
	Source   string    `json:"source,omitempty"` // the file it was read from (CLI)
	Status   string    `json:"status"`           // ok, mismatch, truncated, forged, none, unreachable
	Seq      uint64    `json:"seq,omitempty"`
	Head     string    `json:"head,omitempty"`
	Signed   time.Time `json:"signed,omitzero"`
	Received time.Time `json:"received,omitzero"`
	LogEnd   uint64    `json:"log_end"`
	Detail   string    `json:"detail,omitempty"`
}

// failed reports whether the check shows the log was tampered with (an
// edge that holds nothing or cannot be reached proves nothing either way).
func (c AuditCheckpointCheck) failed() bool {
	switch c.Status {
	case checkpointMismatch, checkpointTruncated, checkpointForged:
		return true
	}
	return false
}

// Summary is the check in one line, for logs and the CLI.
func (c AuditCheckpointCheck) Summary() string {
	who := "checkpoint held by edge " + c.Edge
	if c.Edge == "" {
		who = "checkpoint " + c.Source
	}
	signed := c.Signed.UTC().Format(time.RFC3339)
	switch c.Status {
	case checkpointOK:
		return fmt.Sprintf("%s (signed %s) at seq %d: the log has that entry (ok)", who, signed, c.Seq)
	case checkpointTruncated:
		return fmt.Sprintf("audit log TRUNCATED: %s (signed %s) covers seq %d, the log ends at seq %d", who, signed, c.Seq, c.LogEnd)
	case checkpointMismatch:
		return fmt.Sprintf("audit log REWRITTEN: %s (signed %s): %s", who, signed, c.Detail)
	case checkpointForged:
		return fmt.Sprintf("%s is FORGED: %s", who, c.Detail)
	}
	return fmt.Sprintf("%s: %s %s", who, c.Status, c.Detail)
}

// checkHeldCheckpoint checks one checkpoint: central's signature, then
// the log's entry at its seq.
func checkHeldCheckpoint(ctx context.Context, l *audit.Log, pub ed25519.PublicKey, h wire.HeldAuditCheckpoint) AuditCheckpointCheck {
	out := AuditCheckpointCheck{Edge: h.EdgeID, Seq: h.Seq, Head: h.Head, Signed: h.Time, Received: h.Received}
	end, err := l.End()
	out.LogEnd = end
	if err != nil {
		out.Status, out.Detail = checkpointUnreachable, "reading the log: "+err.Error()
		return out
	}
	if !h.AuditCheckpoint.Verify(pub) {
		out.Status, out.Detail = checkpointForged, "its signature is not by central's evidence key"
		return out
	}
	_, err = l.CheckCheckpoint(ctx, h.Seq, h.Head)
	var be *audit.BreakError
	switch {
	case err == nil:
		out.Status = checkpointOK
	case errors.As(err, &be) && be.Kind == audit.BreakTruncated:
		out.Status, out.Detail = checkpointTruncated, be.Detail
	case errors.As(err, &be):
		out.Status, out.Detail = checkpointMismatch, be.Detail
	default:
		out.Status, out.Detail = checkpointUnreachable, "reading the log: "+err.Error()
	}
	return out
}

// askAll asks every registered edge for the checkpoint it holds and
// checks each; offline and silent edges are unreachable.
func (c *checkpointer) askAll(ctx context.Context) []AuditCheckpointCheck {
	pub := c.key.Public().(ed25519.PublicKey)
	ids := c.edges.active()
	out := make([]AuditCheckpointCheck, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, status, detail := c.ask(ctx, id)
			if status != "" {
				end, _ := c.log.End()
				out[i] = AuditCheckpointCheck{Edge: id, Status: status, Detail: detail, LogEnd: end}
				return
			}
			out[i] = checkHeldCheckpoint(ctx, c.log, pub, h)
			out[i].Edge = id // who answered, whatever the file says
		}()
	}
	wg.Wait()
	return out
}

// ask fetches one edge's checkpoint over its connection; a non-empty
// status says why there is none.
func (c *checkpointer) ask(ctx context.Context, edgeID string) (wire.HeldAuditCheckpoint, string, string) {
	var h wire.HeldAuditCheckpoint
	ctx, cancel := context.WithTimeout(ctx, auditCheckpointAsk)
	defer cancel()
	parts, forget, err := c.edges.request(ctx, edgeID, wire.Request{Method: wire.MethodAuditCheckpoint})
	if errors.Is(err, ErrEdgeOffline) {
		return h, checkpointUnreachable, "the edge is not connected"
	}
	if err != nil {
		return h, checkpointUnreachable, err.Error()
	}
	defer forget()
	var data []byte
	for {
		select {
		case <-ctx.Done():
			return h, checkpointUnreachable, "the edge did not answer in time"
		case p, open := <-parts:
			if !open {
				return h, checkpointUnreachable, "the edge went away before answering"
			}
			switch {
			case p.Status == wire.StatusNotAvailable:
				return h, checkpointNone, p.Error
			case p.Status != wire.StatusOK:
				return h, checkpointUnreachable, fmt.Sprintf("the edge answered %s: %s (an older edge?)", p.Status, p.Error)
			}
			data = append(data, p.Data...)
			if !p.Final {
				continue
			}
			if err := json.Unmarshal(data, &h); err != nil {
				return h, checkpointForged, "the edge's answer is not a checkpoint: " + err.Error()
			}
			return h, "", ""
		}
	}
}

// readCheckpointFile reads a checkpoint copied from an edge's data
// directory (edge/uplink CheckpointFile).
func readCheckpointFile(path string) (wire.HeldAuditCheckpoint, error) {
	var h wire.HeldAuditCheckpoint
	b, err := os.ReadFile(path)
	if err != nil {
		return h, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return h, nil
}

// applyCheckpoints adds checkpoint checks to a verification: a failed
// one makes it fail, and names the break when the chain alone held.
func (v *AuditVerification) applyCheckpoints(checks []AuditCheckpointCheck) {
	for _, c := range checks {
		if !c.failed() {
			continue
		}
		if v.OK {
			v.OK = false
			b := &auditBreak{Seq: c.Seq, Kind: audit.BreakRewritten, Detail: c.Summary()}
			switch c.Status {
			case checkpointTruncated:
				b.Seq, b.Kind = c.LogEnd+1, audit.BreakTruncated
			case checkpointForged:
				b.Kind = "forged checkpoint"
			}
			v.Break, v.Error = b, c.Summary()
		}
	}
}

// VerifyAuditOffline is `vigil central audit verify`: the audit log of a
// stopped central checked entry by entry with the audit key
// (audit_key_file), and each checkpoint file (copied from an edge's data
// directory) checked against central's evidence key and the log. The
// error is non-nil for a failure to verify at all; a broken or truncated
// log is out.OK false with out.Break (and a *audit.BreakError for a
// broken chain).
func VerifyAuditOffline(ctx context.Context, cfg Config, checkpointFiles []string) (AuditVerification, error) {
	var held []wire.HeldAuditCheckpoint
	for _, f := range checkpointFiles {
		h, err := readCheckpointFile(f)
		if err != nil {
			return AuditVerification{}, err
		}
		held = append(held, h)
	}
	var pub ed25519.PublicKey
	if len(held) > 0 {
		priv, err := evidence.LoadKey(evidenceKeyPath(cfg))
		if err != nil {
			return AuditVerification{}, fmt.Errorf("central: checkpoints are checked with the evidence key: %w", err)
		}
		pub = priv.Public().(ed25519.PublicKey)
	}
	var out AuditVerification
	var chainErr error
	err := withStoppedAudit(ctx, cfg, func(l *audit.Log) error {
		out, chainErr = verifyAudit(ctx, l)
		if chainErr != nil && out.Break == nil {
			return chainErr
		}
		for i, h := range held {
			c := checkHeldCheckpoint(ctx, l, pub, h)
			c.Source = checkpointFiles[i]
			out.Checkpoints = append(out.Checkpoints, c)
		}
		out.applyCheckpoints(out.Checkpoints)
		return nil
	})
	if err != nil {
		return out, err
	}
	return out, chainErr
}

// withStoppedAudit opens a stopped central's store and audit log (keyed,
// read only: no MACs are added) for f.
func withStoppedAudit(ctx context.Context, cfg Config, f func(*audit.Log) error) error {
	if postgresStore(cfg.Store) {
		return withPGAudit(ctx, cfg, f)
	}
	dataDir := cfg.DataDir
	if _, err := os.Stat(filepath.Join(dataDir, "MANIFEST")); err != nil {
		return fmt.Errorf("central: audit: no store in %s (data_dir of central.yaml)", dataDir)
	}
	key, err := audit.LoadKey(auditKeyPath(cfg))
	if err != nil {
		return fmt.Errorf("central: the audit log's MACs are checked with the audit key (audit_key_file) central made on its first start: %w", err)
	}
	db, err := kv.Open(kv.Options{Dir: dataDir, SyncWrites: true})
	if err != nil {
		return fmt.Errorf("central: audit: %w (is central running? use GET /api/v1/audit/verify)", err)
	}
	defer db.Close()
	l, err := audit.Open(db, auditPrefix, audit.Options{Key: key, NoBackfill: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer l.Close()
	return f(l)
}

// withPGAudit opens the audit log the replicas share in PostgreSQL (read
// only: no MACs are added) for f; the replicas may be running.
func withPGAudit(ctx context.Context, cfg Config, f func(*audit.Log) error) error {
	key, err := audit.LoadKey(auditKeyPath(cfg))
	if err != nil {
		return fmt.Errorf("central: the audit log's MACs are checked with the audit key (audit_key_file) the replicas share: %w", err)
	}
	pool, err := pgxpool.New(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("central: audit: %w", err)
	}
	defer pool.Close()
	l, err := audit.OpenPG(ctx, pool, audit.Options{Key: key, NoBackfill: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer l.Close()
	return f(l)
}
