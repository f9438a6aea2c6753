package central

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Edge kinds.
const (
	EdgeEnrolled = "enrolled" // proves an Ed25519 key registered at enrolment
	EdgeToken    = "token"    // bearer token from central.yaml (deprecated)
)

// Registry errors the API maps to status codes.
var (
	ErrTokenInvalid = errors.New("enrolment token unknown, already used or expired")
	ErrEdgeUnknown  = errors.New("no such edge")
	ErrEdgeConflict = errors.New("edge is configured with a bearer token in central.yaml")
	ErrEdgeRevoked  = errors.New("edge is revoked: an admin must un-revoke it (POST /api/v1/edges/{id}/unrevoke) before it can enrol again")
	ErrEdgeEnrolled = errors.New("edge is already enrolled: only an admin may issue a token that replaces its key")
	ErrNotRevoked   = errors.New("edge is not revoked")
)

// EdgeRecord is what central knows about an edge's identity.
type EdgeRecord struct {
	ID           string    `json:"id"`
	SiteID       string    `json:"site_id"`
	Kind         string    `json:"kind"`
	PublicKey    []byte    `json:"public_key,omitempty"`
	EnrolledAt   time.Time `json:"enrolled_at,omitzero"`
	EnrolledBy   string    `json:"enrolled_by,omitempty"` // who made the token
	Hostname     string    `json:"hostname,omitempty"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokedBy    string    `json:"revoked_by,omitempty"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
	LastSeen     time.Time `json:"last_seen,omitzero"`

	tokenHash []byte // token edges only, from the config
}

// Revoked reports whether the edge is refused.
func (e *EdgeRecord) Revoked() bool { return !e.RevokedAt.IsZero() }

// hasKey reports whether an enrolled edge has a key a token would replace.
func (e *EdgeRecord) hasKey() bool { return e.Kind == EdgeEnrolled && len(e.PublicKey) > 0 }

// enrolToken is a stored enrolment token (keyed by its secret's SHA-256).
type enrolToken struct {
	EdgeID    string    `json:"edge_id"`
	SiteID    string    `json:"site_id"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	// Replace: the token may replace the key of an enrolled edge (an
	// admin made it). Without it an edge enrolled since is refused, so an
	// installer cannot keep a second token for a box to impersonate it.
	Replace bool `json:"replace,omitempty"`
}

// Registry keys, in the same Badger database as the alerts.
const (
	prefixEdge  = "er/" // er/<edge id>       → EdgeRecord JSON
	prefixToken = "et/" // et/<sha256 secret> → enrolToken JSON
)

// registry holds every edge's identity: enrolled edges in Badger, token
// edges from the config (only their revocation and last-seen in Badger).
// Writes are rare (enrolment, revocation, disconnects) and take mu.
type registry struct {
	book edgeBook

	mu     sync.Mutex
	edges  map[string]*EdgeRecord
	static []string // token edges in config order
}

func openRegistry(book edgeBook, static []EdgeConfig) (*registry, error) {
	r := &registry{book: book, edges: map[string]*EdgeRecord{}}
	if err := book.loadEdges(func(e EdgeRecord) { r.edges[e.ID] = &e }); err != nil {
		return nil, fmt.Errorf("central: reading edge registry: %w", err)
	}
	for _, c := range static {
		sum, _ := hex.DecodeString(c.TokenSHA256) // checked by Config.Validate
		e := r.edges[c.ID]
		if e == nil || e.Kind != EdgeToken {
			// The config decides: a token edge replaces an enrolment of the same ID.
			e = &EdgeRecord{ID: c.ID, Kind: EdgeToken}
			r.edges[c.ID] = e
		}
		e.SiteID, e.tokenHash = c.SiteID, sum
		r.static = append(r.static, c.ID)
	}
	return r, nil
}

// get returns a copy of an edge's record; one another replica enrolled
// a moment ago is looked up.
func (r *registry) get(id string) (EdgeRecord, bool) {
	if e, ok := r.getLocal(id); ok {
		return e, true
	}
	if fresh, found := r.lookup(id); found {
		return fresh, true
	}
	return EdgeRecord{}, false
}

// lookup reads an edge's record from a shared book into memory.
func (r *registry) lookup(id string) (EdgeRecord, bool) {
	shared, ok := r.book.(sharedEdgeBook)
	if !ok {
		return EdgeRecord{}, false
	}
	e, found, err := shared.edge(id)
	if err != nil || !found {
		return EdgeRecord{}, false
	}
	r.reloaded(e, nil)
	return r.getLocal(id)
}

func (r *registry) getLocal(id string) (EdgeRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.edges[id]
	if !ok {
		return EdgeRecord{}, false
	}
	return *e, true
}

// reloaded takes an edge's record as another replica stored it. If the
// edge was revoked or its key changed, its connection here (if hub holds
// one) is closed, as the replica that did it closes its own.
func (r *registry) reloaded(e EdgeRecord, hub *edgeHub) {
	r.mu.Lock()
	old := r.edges[e.ID]
	if old != nil && old.Kind == EdgeToken {
		// A token edge is the config's: only its revocation and last-seen
		// come from the store.
		e.Kind, e.SiteID, e.tokenHash, e.PublicKey = EdgeToken, old.SiteID, old.tokenHash, nil
	} else if e.Kind == EdgeToken {
		r.mu.Unlock()
		return // not a token edge in this replica's config
	}
	shut := old != nil && ((!old.Revoked() && e.Revoked()) || string(old.PublicKey) != string(e.PublicKey))
	r.edges[e.ID] = &e
	r.mu.Unlock()
	if shut && hub != nil {
		hub.kick(e.ID, wire.CloseRevoked, "edge revoked or enrolled again (on another central)")
	}
}

// byToken finds the token edge whose hash matches a bearer token. Every
// hash is compared in constant time, so timing reveals nothing.
func (r *registry) byToken(token string) (EdgeRecord, bool) {
	sum := sha256.Sum256([]byte(token))
	r.mu.Lock()
	defer r.mu.Unlock()
	var found *EdgeRecord
	for _, id := range r.static {
		e := r.edges[id]
		if subtle.ConstantTimeCompare(sum[:], e.tokenHash) == 1 {
			found = e
		}
	}
	if found == nil {
		return EdgeRecord{}, false
	}
	return *found, true
}

// list returns every edge: token edges in config order, then enrolled ones by ID.
func (r *registry) list() []EdgeRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]EdgeRecord, 0, len(r.edges))
	for _, id := range r.static {
		out = append(out, *r.edges[id])
	}
	var enrolled []string
	for id, e := range r.edges {
		if e.Kind == EdgeEnrolled {
			enrolled = append(enrolled, id)
		}
	}
	slices.Sort(enrolled)
	for _, id := range enrolled {
		out = append(out, *r.edges[id])
	}
	return out
}

// createToken stores a one-time token for edgeID at siteID. Only an
// admin's token (replace) may be made for an edge that has a key; none
// for a revoked edge.
func (r *registry) createToken(edgeID, siteID, actor string, replace bool, ttl time.Duration, pin []byte, now time.Time) (wire.EnrolToken, time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.edges[edgeID]; ok {
		switch {
		case e.Kind == EdgeToken:
			return wire.EnrolToken{}, time.Time{}, ErrEdgeConflict
		case e.Revoked():
			return wire.EnrolToken{}, time.Time{}, ErrEdgeRevoked
		case e.hasKey() && !replace:
			return wire.EnrolToken{}, time.Time{}, ErrEdgeEnrolled
		}
	}
	tok := wire.EnrolToken{Secret: make([]byte, 32), Pin: pin}
	if _, err := rand.Read(tok.Secret); err != nil {
		return wire.EnrolToken{}, time.Time{}, err
	}
	exp := now.Add(ttl).UTC()
	sum := sha256.Sum256(tok.Secret)
	// The token outlives its expiry by a day so a late attempt reads
	// "expired" rather than "unknown" in the logs.
	err := r.book.putToken(hex.EncodeToString(sum[:]), enrolToken{EdgeID: edgeID, SiteID: siteID, CreatedAt: now.UTC(),
		CreatedBy: actor, ExpiresAt: exp, Replace: replace}, ttl+24*time.Hour)
	if err != nil {
		return wire.EnrolToken{}, time.Time{}, fmt.Errorf("central: store enrolment token: %w", err)
	}
	return tok, exp, nil
}

// enrolled is what an enrolment did, for the audit log.
type enrolled struct {
	Record    EdgeRecord
	Replaced  bool   // an earlier key of the edge was replaced
	TokenBy   string // who made the token
	OldKeySum string // fingerprint of the replaced key
}

// enrol spends a token and registers pub as the edge's key, replacing an
// earlier key of that edge if an admin made the token: enrolling again is
// how a box is replaced. The old key stops working at once (see Server).
// A revoked edge is refused until an admin un-revokes it.
func (r *registry) enrol(req wire.EnrolRequest, now time.Time) (enrolled, string, error) {
	sum := sha256.Sum256(req.Secret)
	r.mu.Lock()
	defer r.mu.Unlock()
	var rec EdgeRecord
	var out enrolled
	why := ""
	err := r.book.spendToken(hex.EncodeToString(sum[:]), func(t *enrolToken, current *EdgeRecord) (*EdgeRecord, error) {
		if t == nil {
			why = "unknown"
			return nil, ErrTokenInvalid
		}
		switch {
		case !t.UsedAt.IsZero():
			why = "already used at " + t.UsedAt.Format(time.RFC3339)
			return nil, ErrTokenInvalid
		case !now.Before(t.ExpiresAt):
			why = "expired at " + t.ExpiresAt.Format(time.RFC3339)
			return nil, ErrTokenInvalid
		}
		e := current
		if e == nil {
			e = r.edges[t.EdgeID]
		}
		if e != nil {
			switch {
			case e.Kind == EdgeToken:
				why = "edge is a token edge"
				return nil, ErrEdgeConflict
			case e.Revoked():
				why = "edge revoked at " + e.RevokedAt.Format(time.RFC3339)
				return nil, ErrEdgeRevoked
			case e.hasKey() && !t.Replace:
				why = "edge already enrolled; token by " + t.CreatedBy + " may not replace its key"
				return nil, ErrEdgeEnrolled
			}
		}
		t.UsedAt = now.UTC()
		rec = EdgeRecord{ID: t.EdgeID, SiteID: t.SiteID, Kind: EdgeEnrolled, PublicKey: req.PublicKey,
			EnrolledAt: now.UTC(), EnrolledBy: t.CreatedBy, Hostname: req.Hostname}
		out.TokenBy = t.CreatedBy
		if e != nil {
			rec.LastSeen = e.LastSeen
			if e.hasKey() {
				out.Replaced, out.OldKeySum = true, keyFingerprint(e.PublicKey)
			}
		}
		return &rec, nil
	})
	if err != nil {
		return enrolled{}, why, err
	}
	r.edges[rec.ID] = &rec
	out.Record = rec
	return out, "", nil
}

// keyFingerprint is the hex SHA-256 of an edge's public key.
func keyFingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// revoke refuses an edge from now on.
func (r *registry) revoke(id, actor, reason string, now time.Time) (EdgeRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.edges[id]
	if !ok {
		return EdgeRecord{}, ErrEdgeUnknown
	}
	next := *e
	next.RevokedAt, next.RevokedBy, next.RevokeReason = now.UTC(), actor, reason
	if err := r.book.putEdge(&next); err != nil {
		return EdgeRecord{}, fmt.Errorf("central: revoke %s: %w", id, err)
	}
	*e = next
	return next, nil
}

// unrevoke lifts a revocation. Unless keepKey, an enrolled edge's key is
// forgotten with it: the box that was revoked (stolen, replaced) stays
// shut out, and the edge enrols again with a new token.
func (r *registry) unrevoke(id string, keepKey bool) (EdgeRecord, EdgeRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.edges[id]
	if !ok {
		return EdgeRecord{}, EdgeRecord{}, ErrEdgeUnknown
	}
	if !e.Revoked() {
		return *e, EdgeRecord{}, ErrNotRevoked
	}
	next := *e
	next.RevokedAt, next.RevokedBy, next.RevokeReason = time.Time{}, "", ""
	if !keepKey && next.Kind == EdgeEnrolled {
		next.PublicKey = nil
	}
	if err := r.book.putEdge(&next); err != nil {
		return EdgeRecord{}, EdgeRecord{}, fmt.Errorf("central: unrevoke %s: %w", id, err)
	}
	prev := *e
	*e = next
	return prev, next, nil
}

// active reports whether an edge may be connected with the given key (nil
// for a token edge): it exists, is not revoked, and still has that key.
func (r *registry) active(id string, pub []byte) bool {
	r.mu.Lock()
	e, ok := r.edges[id]
	yes := ok && !e.Revoked() && string(e.PublicKey) == string(pub)
	enrolled := ok && e.Kind == EdgeEnrolled
	r.mu.Unlock()
	if !yes && (!ok || enrolled) {
		// Enrolled (again) through another replica a moment ago?
		if fresh, found := r.lookup(id); found {
			return !fresh.Revoked() && string(fresh.PublicKey) == string(pub)
		}
	}
	return yes
}

// touch remembers when an edge was last seen, for the sites view after a
// restart. Not synced: a lost last-seen costs nothing.
func (r *registry) touch(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.edges[id]
	if !ok {
		return
	}
	e.LastSeen = at.UTC()
	_ = r.book.putEdge(e)
}

// verifyHello checks a hello's signature against an enrolled edge's key.
func verifyHello(pub []byte, h *wire.Hello) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, h.SigningBytes(), h.Signature)
}
