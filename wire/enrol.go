package wire

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// EnrolPath is central's enrolment endpoint on its edge hub (TLS) port.
const EnrolPath = "/api/v1/enrol"

// EdgePath is the edge websocket endpoint.
const EdgePath = "/api/v1/edge/ws"

// EdgeIDHeader names the edge in the websocket upgrade request, so central
// refuses an unknown or revoked edge before it gets a websocket.
const EdgeIDHeader = "X-Vigil-Edge-ID"

// enrolTokenPrefix marks (and versions) an enrolment token.
const enrolTokenPrefix = "vigil-enrol-1"

// secretBytes is the size of an enrolment token's secret.
const secretBytes = 32

// EnrolToken is what an administrator hands an installer: a one-time secret
// and the pin of central's edge-hub certificate, in one string to paste, so
// the edge trusts exactly that central from its very first connection.
type EnrolToken struct {
	Secret []byte // 32 random bytes; central keeps only its SHA-256
	Pin    []byte // SHA-256 of the certificate's SubjectPublicKeyInfo
}

// String encodes the token as vigil-enrol-1.<secret>.<pin> (base64url).
func (t EnrolToken) String() string {
	enc := base64.RawURLEncoding
	return enrolTokenPrefix + "." + enc.EncodeToString(t.Secret) + "." + enc.EncodeToString(t.Pin)
}

// ParseEnrolToken decodes a token pasted by an installer.
func ParseEnrolToken(s string) (EnrolToken, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || parts[0] != enrolTokenPrefix {
		return EnrolToken{}, errors.New("enrolment token: want vigil-enrol-1.<secret>.<pin>")
	}
	enc := base64.RawURLEncoding
	secret, err1 := enc.DecodeString(parts[1])
	pin, err2 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(secret) != secretBytes || len(pin) != sha256.Size {
		return EnrolToken{}, errors.New("enrolment token: damaged (copy it again in full)")
	}
	return EnrolToken{Secret: secret, Pin: pin}, nil
}

// CertPin returns the pin of a certificate: the SHA-256 of its public key,
// so a renewed certificate with the same key keeps its pin.
func CertPin(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return sum[:]
}

// FormatPin renders a pin for configs and logs.
func FormatPin(pin []byte) string {
	return "sha256/" + base64.StdEncoding.EncodeToString(pin)
}

// ParsePin reads a pin written by FormatPin.
func ParsePin(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "sha256/"))
	if err != nil || !strings.HasPrefix(s, "sha256/") || len(b) != sha256.Size {
		return nil, errors.New("pin: want sha256/<base64 of 32 bytes>")
	}
	return b, nil
}

// EnrolRequest exchanges a token for a registered key. The edge signs it
// with the new key, proving it holds the private half.
type EnrolRequest struct {
	Secret    []byte `json:"secret"`
	PublicKey []byte `json:"public_key"` // Ed25519, 32 bytes
	Software  string `json:"software,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	Signature []byte `json:"signature"`
}

// SigningBytes is what the edge signs in an enrolment request.
func (r *EnrolRequest) SigningBytes() []byte {
	var b []byte
	for _, p := range [][]byte{[]byte("vigil/enrol/v1"), r.Secret, r.PublicKey, []byte(r.Software), []byte(r.Hostname)} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// EnrolResponse tells a newly enrolled edge who it is.
type EnrolResponse struct {
	EdgeID string    `json:"edge_id"`
	SiteID string    `json:"site_id"`
	Time   time.Time `json:"time"` // central's clock
	// AccessKey is central's Ed25519 public key: the edge verifies access
	// tokens and audit checkpoints with it (see access.go).
	AccessKey []byte `json:"access_key,omitempty"`
}
