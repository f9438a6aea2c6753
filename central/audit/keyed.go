package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The audit key is KeySize random bytes in a file of its own, outside the
// database it protects: someone who can write the store (a copied disk, a
// stopped central, a tool run against Badger) can rebuild the public hash
// chain but not the entries' MACs. The file must be readable by its owner
// only.

// LoadKey reads the audit key at path. A file that group or others may
// read, or that is not exactly KeySize bytes, is refused.
func LoadKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("audit: key %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("audit: key %s has mode %#o: it must be readable by its owner only (chmod 600)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("audit: key %s is %d bytes, want %d (damaged or not an audit key)", path, len(b), KeySize)
	}
	return b, nil
}

// LoadOrCreateKey loads the key at path, or makes one (mode 0600, synced)
// if there is no file; created reports whether it was made now.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = LoadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("audit: generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("audit: key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("audit: write key: %w", err)
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("audit: write key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return key, true, nil
}

// backfill adds MACs to a log written before it had a key: only if no
// entry has a MAC yet (the first start with a key) and the whole hash
// chain verifies. Otherwise it changes nothing and Verify names the
// break (entries without a MAC in a log that has MACs are forged).
func (l *Log) backfill(ctx context.Context) error {
	var total, withMAC uint64
	err := l.be().view(ctx, func(r reads) error {
		return r.scan(0, scanAll, func(_ uint64, v []byte) error {
			total++
			var e struct {
				MAC string `json:"mac"`
			}
			if json.Unmarshal(v, &e) == nil && e.MAC != "" {
				withMAC++
			}
			return nil
		})
	})
	var stray *strayKeyError
	if errors.As(err, &stray) {
		l.log.Error("audit: the log has no MACs yet but holds a stray record: MACs NOT added; verify reports it", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	if total == 0 || withMAC > 0 {
		if withMAC > 0 && withMAC < total {
			l.log.Warn("audit: some entries have no MAC; not adding any (verify names them)", "entries", total, "with_mac", withMAC)
		}
		return nil
	}
	plain := &Log{st: l.st, pg: l.pg, log: l.log}
	if _, err := plain.Verify(ctx); err != nil {
		l.log.Error("audit: the log has no MACs yet but its hash chain is broken: MACs NOT added; verify reports the break", "err", err)
		return nil
	}
	n, err := l.addMACs(ctx)
	if err != nil {
		return fmt.Errorf("audit: adding MACs: %w", err)
	}
	var h head
	err = l.be().update(ctx, func(tx writeTx) error {
		rec, ok, err := tx.lockHead()
		if err != nil {
			return err
		}
		if h, err = continueHead(tx, rec, ok); err != nil {
			return err
		}
		h.MAC = headMAC(l.key, h.Seq, h.Hash)
		hv, _ := json.Marshal(h)
		return tx.putHead(hv)
	})
	if err != nil {
		return fmt.Errorf("audit: adding MACs: %w", err)
	}
	l.log.Warn("audit: the log predates the audit key: its hash chain verifies, MACs added to every entry", "entries", n, "head_seq", h.Seq)
	return nil
}

// addMACs rewrites every entry with its MAC, a bounded number per
// transaction (a crash half way leaves a log that verify reports; the
// entries and their hashes are unchanged), and returns how many. Another
// process with the same key backfilling at once writes the same bytes.
func (l *Log) addMACs(ctx context.Context) (uint64, error) {
	var n uint64
	for from := uint64(1); ; {
		var done bool
		err := l.be().update(ctx, func(tx writeTx) error {
			for i := 0; i < 512; i++ {
				e, err := getEntry(tx, from)
				if errors.Is(err, errNoEntry) {
					done = true
					return nil
				}
				if err != nil {
					return err
				}
				e.MAC = ComputeMAC(l.key, e.Hash)
				v, err := marshal(e)
				if err != nil {
					return err
				}
				if err := tx.replaceEntry(from, v); err != nil {
					return err
				}
				from++
				n++
			}
			return nil
		})
		if err != nil || done {
			return n, err
		}
	}
}

// MaxOnceKey bounds AppendOnce's key.
const MaxOnceKey = 512

// AppendOnce appends e only if key was never recorded by AppendOnce
// before: the key's marker is written in the same transaction as the
// entry, so a crash leaves both or neither, and concurrent calls with one
// key append once. It returns the stored entry and true if it appended,
// or false (with the entry recorded under key, if it can be read) if the
// key was already recorded.
func (l *Log) AppendOnce(key string, e Entry) (Entry, bool, error) {
	if key == "" || len(key) > MaxOnceKey {
		return Entry{}, false, fmt.Errorf("audit: AppendOnce key of %d bytes (want 1..%d)", len(key), MaxOnceKey)
	}
	res := l.w.submit(context.Background(), e, key)
	return res.e, res.appended, res.err
}

// End returns the highest seq stored (0 for none), whatever the head
// record says: where the log really ends.
func (l *Log) End() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
	defer cancel()
	var end uint64
	err := l.be().view(ctx, func(r reads) error {
		var err error
		end, _, err = r.last()
		return err
	})
	return end, err
}

// CheckCheckpoint ties a signed checkpoint (seq, head hash), whose
// signature the caller has checked, to the log: the entry seq must be
// stored and have that hash. It returns where the log ends and, if not,
// a *BreakError of kind BreakTruncated (the log ends before seq) or
// BreakRewritten.
func (l *Log) CheckCheckpoint(ctx context.Context, seq uint64, hash string) (uint64, error) {
	end, err := l.End()
	if err != nil {
		return 0, err
	}
	if seq == 0 {
		if hash != GenesisHash {
			return end, &BreakError{Seq: 0, Kind: BreakRewritten, Detail: "a checkpoint at seq 0 names a hash other than the genesis hash"}
		}
		return end, nil
	}
	if seq > end {
		return end, &BreakError{Seq: end + 1, Kind: BreakTruncated,
			Detail: fmt.Sprintf("a signed checkpoint covers seq %d, the log ends at seq %d", seq, end)}
	}
	e, err := l.Get(ctx, seq)
	if err != nil {
		return end, &BreakError{Seq: seq, Kind: BreakMissing, Detail: fmt.Sprintf("a signed checkpoint names seq %d, which is not in the log", seq)}
	}
	if e.Hash != hash {
		return end, &BreakError{Seq: seq, Kind: BreakRewritten,
			Detail: fmt.Sprintf("a signed checkpoint says seq %d has hash %.16s…, the log's has %.16s…", seq, hash, e.Hash)}
	}
	return end, nil
}
