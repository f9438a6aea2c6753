package uplink

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/internal/atomicfile"
	"github.com/vigil-perimeter/vigil/wire"
)

// CheckpointFile is where an edge keeps central's latest audit checkpoint,
// in its data directory unless Config.AuditCheckpointFile says otherwise.
const CheckpointFile = "audit-checkpoint.json"

// checkpoints holds the newest audit checkpoint central has sent this
// edge, on disk so that it outlives a restart: a copy of central's audit
// log's head kept off central, which shows entries later dropped from
// the log's end (`vigil central audit verify --checkpoint`).
type checkpoints struct {
	mu   sync.Mutex
	path string                   // "" keeps it in memory only
	key  func() ed25519.PublicKey // central's key, nil if not known (yet)
	held *wire.HeldAuditCheckpoint
	// edgeID names the edge in a checkpoint kept; log reports refused
	// ones (acceptFrame). The uplink sets both.
	edgeID func() string
	log    *slog.Logger
}

// errOlderCheckpoint refuses a checkpoint that would replace a newer one.
var errOlderCheckpoint = errors.New("older than the checkpoint held")

// loadCheckpoints reads the held checkpoint, if any. A damaged file is
// reported and replaced by the next checkpoint.
func loadCheckpoints(path string, key func() ed25519.PublicKey) (*checkpoints, error) {
	c := &checkpoints{path: path, key: key, edgeID: func() string { return "" }, log: slog.Default()}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("audit checkpoint: %w", err)
	}
	var h wire.HeldAuditCheckpoint
	if err := json.Unmarshal(b, &h); err != nil {
		return c, fmt.Errorf("audit checkpoint %s: %w", path, err)
	}
	if err := h.Validate(); err != nil {
		return c, fmt.Errorf("audit checkpoint %s: %w", path, err)
	}
	c.held = &h
	return c, nil
}

// accept keeps cp if it is signed by central's key (when the edge knows
// it) and not older than the one held: a higher seq, or the same seq and
// head signed later. A different head at the same seq is refused: the
// first is the evidence.
func (c *checkpoints) accept(cp wire.AuditCheckpoint, edgeID string, now time.Time) (bool, error) {
	if err := cp.Validate(); err != nil {
		return false, err
	}
	verified := false
	if key := c.key(); key != nil {
		if !cp.Verify(key) {
			return false, errors.New("audit checkpoint: signature is not central's")
		}
		verified = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.held; h != nil {
		switch {
		case cp.Seq < h.Seq:
			return false, fmt.Errorf("audit checkpoint at seq %d: %w (seq %d)", cp.Seq, errOlderCheckpoint, h.Seq)
		case cp.Seq == h.Seq && cp.Head != h.Head:
			return false, fmt.Errorf("audit checkpoint at seq %d names head %.16s…, but the one held names %.16s… for that seq: keeping the first", cp.Seq, cp.Head, h.Head)
		case cp.Seq == h.Seq && !cp.Time.After(h.Time):
			return false, nil // the same or an older signature of the same head
		}
	}
	next := &wire.HeldAuditCheckpoint{AuditCheckpoint: cp, EdgeID: edgeID, Received: now.UTC(), Verified: verified}
	if c.path != "" {
		b, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return false, err
		}
		if err := writeFileAtomic(c.path, append(b, '\n')); err != nil {
			return false, fmt.Errorf("audit checkpoint: %w", err)
		}
	}
	c.held = next
	return true, nil
}

// get returns the held checkpoint.
func (c *checkpoints) get() (wire.HeldAuditCheckpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		return wire.HeldAuditCheckpoint{}, false
	}
	return *c.held, true
}

// writeFileAtomic replaces path with data (its directory made first), so
// a crash leaves the old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// acceptFrame handles a checkpoint frame from central: a refused one is
// logged, never fatal to the connection.
func (c *checkpoints) acceptFrame(env wire.Envelope) {
	var cp wire.AuditCheckpoint
	if err := wire.DecodeBody(env, &cp); err != nil {
		c.log.Warn("ignoring a malformed audit checkpoint from central", "err", err)
		return
	}
	kept, err := c.accept(cp, c.edgeID(), time.Now())
	switch {
	case errors.Is(err, errOlderCheckpoint):
		c.log.Warn("refusing an audit checkpoint older than the one held", "err", err)
	case err != nil:
		c.log.Error("refusing an audit checkpoint from central", "seq", cp.Seq, "err", err)
	case kept:
		c.log.Debug("audit checkpoint kept", "seq", cp.Seq, "head", cp.Head)
	}
}

// answer answers MethodAuditCheckpoint with the held checkpoint.
func (c *checkpoints) answer(out *Responder) {
	h, ok := c.get()
	if !ok {
		_ = out.Fail(wire.StatusNotAvailable, "this edge holds no audit checkpoint")
		return
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(h); err != nil {
		_ = out.Fail(wire.StatusError, err.Error())
		return
	}
	_ = out.Send("application/json", bytes.TrimSpace(buf.Bytes()), true)
}
