package evidence

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Central's evidence key signs every bundle's manifest. The private key is
// a PKCS#8 PEM file of mode 0600 ("PRIVATE KEY", readable by OpenSSL); the
// public key goes to the court as a PEM SubjectPublicKeyInfo ("PUBLIC
// KEY") or as the one-line form "ed25519:<base64 of the 32 key bytes>".

const publicKeyPrefix = "ed25519:"

// GenerateKey makes a new evidence key and writes it to path (mode 0600,
// refusing to overwrite an existing file).
func GenerateKey(path string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("evidence: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("evidence: encode key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("evidence: write key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("evidence: write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("evidence: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("evidence: write key: %w", err)
	}
	return priv, nil
}

// LoadKey reads an evidence key written by GenerateKey. A key file that
// group or others may read is refused.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("evidence: key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("evidence: key %s has mode %#o: it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("evidence: key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("evidence: key %s: not a PEM \"PRIVATE KEY\"", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("evidence: key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("evidence: key %s: not an Ed25519 key", path)
	}
	return priv, nil
}

// LoadOrGenerateKey loads the key at path, making it first if there is
// none; created reports whether it was made now.
func LoadOrGenerateKey(path string) (priv ed25519.PrivateKey, created bool, err error) {
	priv, err = LoadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = GenerateKey(path)
		return priv, err == nil, err
	}
	return priv, false, err
}

// PublicKeyPEM encodes a public key as a PEM SubjectPublicKeyInfo, the
// form OpenSSL reads (`openssl pkeyutl -verify -pubin -inkey key.pem`).
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for an Ed25519 key
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// FormatPublicKey returns the one-line form "ed25519:<base64>".
func FormatPublicKey(pub ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// Fingerprint is the hex SHA-256 of the 32 public key bytes, short enough
// to read out over the phone.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// ParsePublicKey reads a public key in any of the forms this package
// writes: PEM "PUBLIC KEY", "ed25519:<base64>", or bare base64 of the
// 32 bytes. A PEM private key is accepted too (its public half is used).
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode(b); block != nil {
		switch block.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("evidence: public key: %w", err)
			}
			pub, ok := k.(ed25519.PublicKey)
			if !ok {
				return nil, errors.New("evidence: public key: not an Ed25519 key")
			}
			return pub, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("evidence: key: %w", err)
			}
			priv, ok := k.(ed25519.PrivateKey)
			if !ok {
				return nil, errors.New("evidence: key: not an Ed25519 key")
			}
			return priv.Public().(ed25519.PublicKey), nil
		default:
			return nil, fmt.Errorf("evidence: public key: unexpected PEM block %q", block.Type)
		}
	}
	s := strings.TrimSpace(string(b))
	s = strings.TrimPrefix(s, publicKeyPrefix)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("evidence: public key: want PEM, \"ed25519:<base64>\" or 32 bytes of base64")
	}
	return ed25519.PublicKey(raw), nil
}

// ReadPublicKey reads a public key file (see ParsePublicKey).
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	pub, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}
