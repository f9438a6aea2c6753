package wire

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// Audit checkpoints: central signs (seq, head hash, time) of its audit log
// with its evidence key and hands the latest to every connected edge,
// which keeps the newest it has seen. The log's MACs stop an insider who
// lacks the audit key from rewriting entries; a checkpoint held off the
// server also shows entries dropped from the end, which no MAC can.
//
//	central → edge  audit_checkpoint {seq, head, time, signature}
//	central → edge  request {method: audit_checkpoint}  → response: the held checkpoint (JSON) or not_available
const (
	TypeAuditCheckpoint   = "audit_checkpoint" // central → edge: a newly signed checkpoint
	MethodAuditCheckpoint = "audit_checkpoint" // central asks an edge for the checkpoint it holds
)

// auditCheckpointContext separates checkpoint signatures from any other
// use of central's evidence key.
const auditCheckpointContext = "vigil/audit-checkpoint/v1"

// AuditCheckpoint is central's signed statement that its audit log's entry
// Seq had hash Head at Time.
type AuditCheckpoint struct {
	Seq       uint64    `json:"seq"`
	Head      string    `json:"head"` // hex SHA-256 of entry Seq (the genesis hash for 0)
	Time      time.Time `json:"time"` // central's UTC clock when it signed
	Signature []byte    `json:"signature"`
}

// SigningBytes is what central signs: every field but the signature,
// each length-prefixed.
func (c *AuditCheckpoint) SigningBytes() []byte {
	var b []byte
	field := func(p []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	field([]byte(auditCheckpointContext))
	field(binary.BigEndian.AppendUint64(nil, c.Seq))
	field([]byte(c.Head))
	field([]byte(c.Time.UTC().Format(time.RFC3339Nano)))
	return b
}

// Sign sets the signature with central's evidence key.
func (c *AuditCheckpoint) Sign(key ed25519.PrivateKey) {
	c.Signature = ed25519.Sign(key, c.SigningBytes())
}

// Verify reports whether the checkpoint is well formed and signed by pub.
func (c *AuditCheckpoint) Verify(pub ed25519.PublicKey) bool {
	return c.Validate() == nil && len(pub) == ed25519.PublicKeySize &&
		ed25519.Verify(pub, c.SigningBytes(), c.Signature)
}

// Validate checks a checkpoint's shape (not its signature).
func (c *AuditCheckpoint) Validate() error {
	if h, err := hex.DecodeString(c.Head); err != nil || len(h) != 32 {
		return errors.New("audit checkpoint: head must be 64 hex characters")
	}
	if c.Time.IsZero() {
		return errors.New("audit checkpoint: no time")
	}
	if len(c.Signature) != ed25519.SignatureSize {
		return errors.New("audit checkpoint: no signature")
	}
	return nil
}

// HeldAuditCheckpoint is the checkpoint an edge keeps in its data
// directory (audit-checkpoint.json) and answers MethodAuditCheckpoint
// with: the signed checkpoint's fields, and which edge received it when.
// `vigil central audit verify --checkpoint FILE` reads this file.
type HeldAuditCheckpoint struct {
	AuditCheckpoint
	EdgeID   string    `json:"edge_id,omitempty"`
	Received time.Time `json:"received,omitzero"`
	// Verified: the edge checked the signature with central's key when
	// it received it (an edge that does not know the key keeps it
	// unverified; the verifier always checks).
	Verified bool `json:"verified"`
}
