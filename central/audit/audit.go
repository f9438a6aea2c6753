// Package audit is central's append-only, hash-chained audit log: every
// login, search, view, export, download, workflow step and configuration
// change is one entry, and each entry commits to the one before it, so an
// entry edited, removed or moved in the store is found by Verify.
//
// Entries live in Badger under a key prefix, so central keeps them in its
// own store's database (Open) and tests open one of their own (OpenDir),
// or in PostgreSQL tables (OpenPG, schema PGSchema), where the central
// replicas sharing the database append to one chain. What the chain
// means is written once over a small storage interface (backend.go).
// A slice of the log exported as JSON lines (Export) travels with an
// evidence bundle as its chain of custody; VerifyExport checks such a
// slice on its own and CheckAnchor ties it back to the live log.
//
// The hash of an entry is SHA-256 over a canonical encoding that any
// language can rebuild (see Canonical): the text "vigil-audit/1\n" and
// then, for each of seq (decimal), time (RFC 3339 with nanoseconds, UTC),
// actor user, actor role, action, target, details (compact JSON, or
// empty) and prev (hex), its length in bytes (decimal), ':', the bytes
// and '\n'. The first entry's prev is 64 zeros.
package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Actions recorded by central. Others are allowed (lower case, digits
// and '_').
const (
	ActionLogin        = "login"
	ActionLoginFailed  = "login_failed"
	ActionLogout       = "logout"
	ActionSearch       = "search"
	ActionView         = "view"
	ActionExport       = "export"
	ActionDownload     = "download"
	ActionWorkflow     = "workflow"
	ActionConfigChange = "config_change"
	ActionUserChange   = "user_change"
)

// GenesisHash is the prev of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxDetails bounds an entry's details (compact JSON bytes).
const MaxDetails = 4 << 10

const canonicalTag = "vigil-audit/1\n"

// macTag and headMACTag separate the audit key's two uses.
const (
	macTag     = "vigil-audit-mac/1\n"
	headMACTag = "vigil-audit-head-mac/1\n"
)

// KeySize is the size of the audit key (HMAC-SHA256).
const KeySize = 32

// Actor is who acted: a console user and the role they acted in, or
// {"system","system"} for central itself.
type Actor struct {
	User string `json:"user"`
	Role string `json:"role"`
}

// Entry is one audit record. Seq, Time, Prev and Hash are assigned by
// Append; the caller fills Actor, Action, Target and Details.
type Entry struct {
	Seq     uint64          `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   Actor           `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target,omitempty"` // alert ID, edge, camera, range, bundle ID ...
	Details json.RawMessage `json:"details,omitempty"`
	Prev    string          `json:"prev"`
	Hash    string          `json:"hash"`
	// MAC is the hex HMAC-SHA256, under the audit key, of macTag and
	// Hash (ComputeMAC). Hash is the public chain that anyone can check
	// (VerifyExport); MAC proves the entry was written by central, so a
	// chain rewritten and rehashed by someone with write access to the
	// store but without the key (kept in a file outside the store) fails
	// Verify. Exports leave it out.
	MAC string `json:"mac,omitempty"`
}

// Canonical returns the bytes that e's hash covers (every field but Hash).
func Canonical(e Entry) []byte {
	fields := [...]string{
		strconv.FormatUint(e.Seq, 10),
		e.Time.UTC().Format(time.RFC3339Nano),
		e.Actor.User,
		e.Actor.Role,
		e.Action,
		e.Target,
		string(e.Details),
		e.Prev,
	}
	n := len(canonicalTag)
	for _, f := range fields {
		n += len(f) + 12
	}
	b := make([]byte, 0, n)
	b = append(b, canonicalTag...)
	for _, f := range fields {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
		b = append(b, '\n')
	}
	return b
}

// ComputeHash returns the hex SHA-256 of e's canonical encoding.
func ComputeHash(e Entry) string {
	sum := sha256.Sum256(Canonical(e))
	return hex.EncodeToString(sum[:])
}

// ComputeMAC returns the hex HMAC-SHA256 under key of "vigil-audit-mac/1\n"
// followed by hash (an entry's hex hash).
func ComputeMAC(key []byte, hash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macTag))
	m.Write([]byte(hash))
	return hex.EncodeToString(m.Sum(nil))
}

// headMAC binds the head record (the log's end) to the key, so the end
// cannot be moved back without it.
func headMAC(key []byte, seq uint64, hash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(headMACTag))
	m.Write(strconv.AppendUint(nil, seq, 10))
	m.Write([]byte{'\n'})
	m.Write([]byte(hash))
	return hex.EncodeToString(m.Sum(nil))
}

// macOK compares a stored MAC with the expected one in constant time.
func macOK(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// BreakError reports where a chain is broken: the first sequence number
// that is not as it was written, and why.
type BreakError struct {
	Seq    uint64
	Kind   string // one of the Break* kinds
	Detail string
}

// Kinds of break.
const (
	BreakEdited    = "edited"    // the entry's bytes do not match its hash (or do not parse)
	BreakMissing   = "missing"   // the sequence number is absent: the entry was deleted
	BreakReordered = "reordered" // the entry sits under another seq's key, or time runs backwards
	BreakPrevLink  = "bad prev link"
	// BreakForged: the hash chain holds but the entry's MAC is wrong or
	// missing: the log was rewritten (and rehashed) without the audit key.
	BreakForged = "forged (MAC does not match: rewritten without the audit key)"
	// BreakTruncated: a signed checkpoint covers entries the log no
	// longer has.
	BreakTruncated = "truncated"
	// BreakRewritten: the entry at a signed checkpoint's seq is not the
	// one the checkpoint names.
	BreakRewritten = "rewritten (not the entry a signed checkpoint names)"
)

func (e *BreakError) Error() string {
	return fmt.Sprintf("audit: chain broken at seq %d: %s: %s", e.Seq, e.Kind, e.Detail)
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// marshal encodes an entry as stored and exported: compact JSON, no HTML
// escaping (so the details bytes are stored exactly as hashed).
func marshal(e Entry) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// normalize checks what the caller gave and brings details into their
// canonical (compact) form.
func normalize(e *Entry) error {
	if e.Action == "" {
		return errors.New("audit: entry without action")
	}
	for _, c := range e.Action {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("audit: action %q: only a-z, 0-9 and _", e.Action)
		}
	}
	if e.Actor.User == "" {
		return errors.New("audit: entry without actor")
	}
	if len(e.Details) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Details); err != nil {
			return fmt.Errorf("audit: details: %w", err)
		}
		if buf.Len() > MaxDetails {
			return fmt.Errorf("audit: details of %d bytes exceed %d", buf.Len(), MaxDetails)
		}
		if s := buf.String(); s == "null" || s == "{}" {
			e.Details = nil
		} else {
			e.Details = buf.Bytes()
		}
	}
	return nil
}

// check verifies one decoded entry's hash, its link to the previous entry
// and that time does not run backwards; the caller checks the seq.
func check(e Entry, prevHash string, prevTime time.Time) *BreakError {
	switch {
	case ComputeHash(e) != e.Hash:
		return &BreakError{Seq: e.Seq, Kind: BreakEdited, Detail: "content does not match its hash"}
	case e.Prev != prevHash:
		return &BreakError{Seq: e.Seq, Kind: BreakPrevLink, Detail: fmt.Sprintf("prev %.16s… is not the hash of seq %d (%.16s…)", e.Prev, e.Seq-1, prevHash)}
	case e.Time.Before(prevTime):
		return &BreakError{Seq: e.Seq, Kind: BreakReordered, Detail: fmt.Sprintf("time %s is before the previous entry's %s", e.Time.Format(time.RFC3339Nano), prevTime.Format(time.RFC3339Nano))}
	}
	return nil
}
