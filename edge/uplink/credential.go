package uplink

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Credential is an enrolled edge's identity: its Ed25519 key pair and the
// pin of central's certificate, written by `vigil edge enroll` to a file
// only the edge's user can read.
type Credential struct {
	Version    int       `json:"version"`
	EdgeID     string    `json:"edge_id"`
	SiteID     string    `json:"site_id"`
	Central    string    `json:"central"`     // https://host:port of central's edge hub
	CentralPin string    `json:"central_pin"` // sha256/<base64>, see wire.FormatPin
	PrivateKey []byte    `json:"private_key"` // Ed25519, 64 bytes
	EnrolledAt time.Time `json:"enrolled_at"`
	// CentralKey is central's Ed25519 public key as told at enrolment:
	// access tokens and audit checkpoints are checked with it.
	CentralKey []byte `json:"central_key,omitempty"`
}

// credentialVersion is the file format this build writes and reads.
const credentialVersion = 1

// Validate checks a credential read from a file.
func (c *Credential) Validate() error {
	switch {
	case c.Version != credentialVersion:
		return fmt.Errorf("credential: version %d, want %d", c.Version, credentialVersion)
	case c.EdgeID == "":
		return errors.New("credential: edge_id is empty")
	case len(c.PrivateKey) != ed25519.PrivateKeySize:
		return errors.New("credential: private_key is not an Ed25519 key")
	}
	if _, err := wire.ParsePin(c.CentralPin); err != nil {
		return fmt.Errorf("credential: central_pin: %w", err)
	}
	if _, err := centralHost(c.Central); err != nil {
		return fmt.Errorf("credential: %w", err)
	}
	return nil
}

// EdgeURL is the websocket address of central's edge hub.
func (c *Credential) EdgeURL() string {
	host, _ := centralHost(c.Central)
	return "wss://" + host + wire.EdgePath
}

// TLSConfig trusts exactly the central whose key was pinned at enrolment.
func (c *Credential) TLSConfig() *tls.Config {
	pin, _ := wire.ParsePin(c.CentralPin)
	return pinnedTLS(pin)
}

// pinnedTLS accepts a server only by the SHA-256 of its public key. Chain
// and name checks are skipped on purpose: the pin is stronger than either,
// and lets central run on a self-signed certificate or a bare IP address.
func pinnedTLS(pin []byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection's pin check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("central sent no certificate")
			}
			if got := wire.CertPin(cs.PeerCertificates[0]); !bytes.Equal(got, pin) {
				return fmt.Errorf("central's certificate key %s is not the pinned %s (a different server, or central's key changed: enrol again)",
					wire.FormatPin(got), wire.FormatPin(pin))
			}
			return nil
		},
	}
}

// centralHost takes host:port from "https://host:port" (or a bare host:port).
func centralHost(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("central %q: want https://host:port", s)
	}
	return u.Host, nil
}

// LoadCredential reads a credential file.
func LoadCredential(path string) (Credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Credential{}, err
	}
	c, ok, err := ParseCredential(string(b))
	if err == nil && !ok {
		err = errors.New("not a credential file")
	}
	if err != nil {
		return Credential{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCredential recognises a credential in what the edge config calls
// its token (central.token_file or VIGIL_EDGE_TOKEN): a JSON object is a
// credential, anything else a bearer token (ok false).
func ParseCredential(s string) (Credential, bool, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return Credential{}, false, nil
	}
	var c Credential
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Credential{}, true, fmt.Errorf("credential: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Credential{}, true, err
	}
	return c, true, nil
}

// Save writes the credential with mode 0600 (directory 0700), atomically:
// a crash leaves the old file or the new one, never half of either.
func (c *Credential) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n')) // 0600: os.CreateTemp's mode
}
