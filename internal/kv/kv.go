// Package kv opens Badger databases tuned for Vigil's small boxes. Badger's
// defaults reserve about 850 MB (STACK.md); an edge box runs many other
// things, so every database states its memory budget here instead.
package kv

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Options chooses a database's durability and footprint.
type Options struct {
	Dir string
	// SyncWrites makes every commit fsync before it returns. Alerts and
	// acknowledgements need it; bulk video does not (see the clip store).
	SyncWrites bool
	Logger     *slog.Logger
	// Floor, if set, is checked before Badger maps anything (Open fails
	// with a *DiskFullError rather than SIGBUS) and preallocates its
	// files; writers call Floor.Admit and Floor.Written around writes.
	Floor *Floor
	// MemTableSize and ValueLogFileSize override the defaults (16 and
	// 64 MiB). Badger maps files of twice these sizes; with a Floor they
	// are preallocated, so a small database wants small ones.
	MemTableSize, ValueLogFileSize int64
}

// Open opens (or creates) a Badger database in o.Dir with a small memory
// budget: 16 MiB memtables ×2, 16 MiB block cache, 8 MiB index cache.
func Open(o Options) (*badger.DB, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("kv: empty directory")
	}
	if o.Floor != nil {
		if err := o.Floor.open(); err != nil {
			return nil, fmt.Errorf("kv: open %s: %w", o.Dir, err)
		}
	}
	memtable, vlog := int64(16<<20), int64(64<<20)
	if o.MemTableSize > 0 {
		memtable = o.MemTableSize
	}
	if o.ValueLogFileSize > 0 {
		vlog = o.ValueLogFileSize
	}
	opts := badger.DefaultOptions(o.Dir).
		WithSyncWrites(o.SyncWrites).
		WithMemTableSize(memtable).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(vlog).
		WithValueThreshold(1 << 10).
		WithNumCompactors(2).
		WithLogger(slogAdapter{l: loggerOr(o.Logger).With("component", "badger")})
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", o.Dir, err)
	}
	if o.Floor != nil {
		// On a full disk this may fail part way; what it did allocate
		// still helps, and the floor refuses what would need more.
		if err := o.Floor.Written(); err != nil {
			loggerOr(o.Logger).Warn("kv: preallocating Badger files", "dir", o.Dir, "err", err)
		}
	}
	return db, nil
}

func loggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// slogAdapter routes Badger's printf-style logger into slog. Badger is
// chatty at info level, so info goes to debug.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Errorf(f string, v ...any)   { a.l.Error(msg(f, v)) }
func (a slogAdapter) Warningf(f string, v ...any) { a.l.Warn(msg(f, v)) }
func (a slogAdapter) Infof(f string, v ...any)    { a.l.Debug(msg(f, v)) }
func (a slogAdapter) Debugf(f string, v ...any)   { a.l.Debug(msg(f, v)) }

func msg(f string, v []any) string { return strings.TrimSpace(fmt.Sprintf(f, v...)) }
