package wire

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TypeAccess is an edge → central outbox item: one entry for central's
// audit log about something done on the box itself — a video or picture
// read from its local API, a change made on its setup page. It travels
// through the durable outbox like an alert, so it is queued while central
// is away and central records it exactly once by its ID.
const TypeAccess = "access"

// MaxAccessDetails bounds an access record's details (JSON bytes).
const MaxAccessDetails = 2 << 10

// AccessRecord is one audited act on an edge.
type AccessRecord struct {
	ID     string    `json:"id"` // unique on its edge, stable across re-sends
	EdgeID string    `json:"edge_id"`
	Time   time.Time `json:"time"` // the edge's UTC clock when it happened
	// User and Role are who did it, as named by the credential the edge
	// accepted: a central-signed access token ("alice", "guard"), the
	// setup code ("setup-code", "installer") or a scrape token.
	User   string `json:"user"`
	Role   string `json:"role"`
	Action string `json:"action"` // audit action: view, download, config_change, ...
	// Target is what was touched: "edge/camera", "edge/gates", ...
	Target string `json:"target"`
	// Client is the network address the request came from.
	Client  string          `json:"client,omitempty"`
	Details json.RawMessage `json:"details,omitempty"` // e.g. {"from":…,"to":…,"bytes":…}
}

// Validate checks a record before central stores it.
func (a *AccessRecord) Validate() error {
	if err := checkID("access", a.ID); err != nil {
		return err
	}
	switch {
	case a.EdgeID == "":
		return errors.New("access: edge_id is empty")
	case a.Time.IsZero():
		return errors.New("access: time is zero")
	case a.User == "" || a.Role == "":
		return errors.New("access: user and role are required")
	case a.Action == "":
		return errors.New("access: action is empty")
	case len(a.Details) > MaxAccessDetails:
		return fmt.Errorf("access: details of %d bytes exceed %d", len(a.Details), MaxAccessDetails)
	}
	for _, c := range a.Action {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("access: action %q: only a-z, 0-9 and _", a.Action)
		}
	}
	if len(a.Details) > 0 && !json.Valid(a.Details) {
		return errors.New("access: details are not JSON")
	}
	return nil
}

// Access tokens let a console user (or a tool acting for one) use an
// edge's local API: central signs, for one edge, a user, a role and a
// short lifetime with its Ed25519 key; the edge verifies with central's
// public key, which it learns at enrolment and again in every welcome, so
// it keeps verifying while central is unreachable.
const (
	accessTokenPrefix  = "vigil-access-1"
	accessTokenContext = "vigil/edge-access/v1"
	// MaxAccessTokenTTL bounds a token's lifetime.
	MaxAccessTokenTTL = time.Hour
)

// AccessClaims is what an access token says.
type AccessClaims struct {
	EdgeID  string    `json:"edge"`
	User    string    `json:"user"`
	Role    string    `json:"role"`
	Issued  time.Time `json:"iat"`
	Expires time.Time `json:"exp"`
	Nonce   string    `json:"nonce"` // makes every token distinct (and names it in the audit log)
}

func (c *AccessClaims) signingBytes(payload []byte) []byte {
	var b []byte
	for _, p := range [][]byte{[]byte(accessTokenContext), payload} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// SignAccessToken encodes and signs claims:
// vigil-access-1.<base64url JSON claims>.<base64url signature>.
func SignAccessToken(key ed25519.PrivateKey, c AccessClaims) (string, error) {
	if c.EdgeID == "" || c.User == "" || c.Role == "" || c.Nonce == "" {
		return "", errors.New("access token: edge, user, role and nonce are required")
	}
	if !c.Expires.After(c.Issued) || c.Expires.Sub(c.Issued) > MaxAccessTokenTTL {
		return "", fmt.Errorf("access token: lifetime must be in (0, %s]", MaxAccessTokenTTL)
	}
	c.Issued, c.Expires = c.Issued.UTC(), c.Expires.UTC()
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(key, c.signingBytes(payload))
	enc := base64.RawURLEncoding
	return accessTokenPrefix + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig), nil
}

// Access token refusals, so the edge can say plainly why.
var (
	ErrAccessMalformed = errors.New("access token malformed")
	ErrAccessSignature = errors.New("access token not signed by this box's central")
	ErrAccessEdge      = errors.New("access token is for another edge")
	ErrAccessExpired   = errors.New("access token expired")
	ErrAccessNotYet    = errors.New("access token not valid yet (check the box's clock)")
)

// AccessSkew is how far the edge's clock may be from central's when it
// judges a token's times.
const AccessSkew = 2 * time.Minute

// VerifyAccessToken checks a token for edgeID at now against any of keys
// (central's current public key and, after a rotation, the previous one).
func VerifyAccessToken(keys []ed25519.PublicKey, edgeID, token string, now time.Time) (AccessClaims, error) {
	var c AccessClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != accessTokenPrefix || len(token) > 4096 {
		return c, ErrAccessMalformed
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(parts[1])
	sig, err2 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(sig) != ed25519.SignatureSize {
		return c, ErrAccessMalformed
	}
	good := false
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, c.signingBytes(payload), sig) {
			good = true
			break
		}
	}
	if !good {
		return c, ErrAccessSignature
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.User == "" || c.Role == "" {
		return AccessClaims{}, ErrAccessMalformed
	}
	switch {
	case c.EdgeID != edgeID:
		return c, ErrAccessEdge
	case !now.Before(c.Expires.Add(AccessSkew)):
		return c, ErrAccessExpired
	case now.Add(AccessSkew).Before(c.Issued):
		return c, ErrAccessNotYet
	case c.Expires.Sub(c.Issued) > MaxAccessTokenTTL:
		return c, ErrAccessMalformed
	}
	return c, nil
}
