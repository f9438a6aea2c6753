package uplink

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CentralKeyFile keeps central's public key in the edge's data directory:
// the box verifies access tokens and audit checkpoints with it, also while
// central is unreachable. It is learned at enrolment and refreshed by every
// welcome (both over the pinned TLS connection).
const CentralKeyFile = "central-access.pub"

const centralKeyPrefix = "ed25519:"

// loadCentralKey reads a key file written by saveCentralKey; a missing
// file is no key and no error.
func loadCentralKey(path string) (ed25519.PublicKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, centralKeyPrefix))
	if err != nil || !strings.HasPrefix(s, centralKeyPrefix) || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%s: want %s<base64 of 32 bytes>", path, centralKeyPrefix)
	}
	return ed25519.PublicKey(raw), nil
}

// saveCentralKey writes the key atomically (writeFileAtomic).
func saveCentralKey(path string, key ed25519.PublicKey) error {
	return writeFileAtomic(path, []byte(centralKeyPrefix+base64.StdEncoding.EncodeToString(key)+"\n"))
}

func (u *Uplink) centralKeyFile() string {
	if u.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(u.cfg.DataDir, CentralKeyFile)
}

// initCentralKey picks the key the box starts with: the one configured,
// else the one kept in the data directory, else the credential's.
func (u *Uplink) initCentralKey() {
	key := u.cfg.CentralKey
	if len(key) == 0 {
		k, err := loadCentralKey(u.centralKeyFile())
		if err != nil {
			u.log.Error("central's key file does not load; access tokens are refused until central is reached", "err", err)
		}
		key = k
	}
	if len(key) == 0 {
		if c := u.credp.Load(); c != nil && len(c.CentralKey) == ed25519.PublicKeySize {
			key = ed25519.PublicKey(c.CentralKey)
		}
	}
	if len(key) == ed25519.PublicKeySize {
		u.centralKey.Store(&key)
	}
}

// learnCentralKey takes the key central announced (enrolment, welcome),
// keeping it for the next start when it changed.
func (u *Uplink) learnCentralKey(raw []byte) {
	if len(raw) != ed25519.PublicKeySize {
		return
	}
	key := ed25519.PublicKey(bytes.Clone(raw))
	if old := u.centralKey.Load(); old != nil && bytes.Equal(*old, key) {
		return
	}
	u.centralKey.Store(&key)
	if path := u.centralKeyFile(); path != "" {
		if err := saveCentralKey(path, key); err != nil {
			u.log.Error("central's key not kept; it is learned again at the next connection", "err", err)
			return
		}
	}
	u.log.Info("central's access key learned", "key", centralKeyPrefix+base64.StdEncoding.EncodeToString(key))
}

// CentralKey is central's public key as last learned (nil before the box
// first reached central): access tokens must be signed by it.
func (u *Uplink) CentralKey() ed25519.PublicKey {
	if k := u.centralKey.Load(); k != nil {
		return *k
	}
	return nil
}
