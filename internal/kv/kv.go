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
}

// Open opens (or creates) a Badger database in o.Dir with a small memory
// budget: 16 MiB memtables ×2, 16 MiB block cache, 8 MiB index cache.
func Open(o Options) (*badger.DB, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("kv: empty directory")
	}
	opts := badger.DefaultOptions(o.Dir).
		WithSyncWrites(o.SyncWrites).
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(1 << 10).
		WithNumCompactors(2).
		WithLogger(slogAdapter{l: loggerOr(o.Logger).With("component", "badger")})
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", o.Dir, err)
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
