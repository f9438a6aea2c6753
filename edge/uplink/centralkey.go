package uplink

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// centralKeys holds central's public key as last learned, and keeps it in
// the data directory (CentralKeyFile) for the next start.
type centralKeys struct {
	path string // "" keeps it in memory only
	key  atomic.Pointer[ed25519.PublicKey]
	log  *slog.Logger
}

// newCentralKeys picks the key the box starts with: the one configured,
// else the one kept in the data directory, else the credential's.
func newCentralKeys(dataDir string, configured ed25519.PublicKey, cred *Credential, log *slog.Logger) *centralKeys {
	k := &centralKeys{log: log}
	if dataDir != "" {
		k.path = filepath.Join(dataDir, CentralKeyFile)
	}
	key := configured
	if len(key) == 0 {
		kept, err := loadCentralKey(k.path)
		if err != nil {
			log.Error("central's key file does not load; access tokens are refused until central is reached", "err", err)
		}
		key = kept
	}
	if len(key) == 0 && cred != nil && len(cred.CentralKey) == ed25519.PublicKeySize {
		key = ed25519.PublicKey(cred.CentralKey)
	}
	if len(key) == ed25519.PublicKeySize {
		k.key.Store(&key)
	}
	return k
}

// learn takes the key central announced (enrolment, welcome), keeping it
// for the next start when it changed.
func (k *centralKeys) learn(raw []byte) {
	if len(raw) != ed25519.PublicKeySize {
		return
	}
	key := ed25519.PublicKey(bytes.Clone(raw))
	if old := k.key.Load(); old != nil && bytes.Equal(*old, key) {
		return
	}
	k.key.Store(&key)
	if k.path != "" {
		if err := saveCentralKey(k.path, key); err != nil {
			k.log.Error("central's key not kept; it is learned again at the next connection", "err", err)
			return
		}
	}
	k.log.Info("central's access key learned", "key", centralKeyPrefix+base64.StdEncoding.EncodeToString(key))
}

// get is the key as last learned (nil before the box first reached central).
func (k *centralKeys) get() ed25519.PublicKey {
	if p := k.key.Load(); p != nil {
		return *p
	}
	return nil
}
