package clips

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// badgerOptions sizes Badger for the index of an edge box:
//   - it holds no video: part records and chunk metadata are small, so
//     every value stays in the LSM (ValueThreshold 64 KiB) and the value
//     log stays empty;
//   - SyncWrites is off: the segments are fdatasynced before their index
//     is committed, the index is synced about once a second, and Open
//     takes back from the segments what a crash kept from the index;
//   - small memtables and caches (Footprint) instead of Badger's ~850 MB;
//   - Badger's expvar metrics are off: they are process-global.
func badgerOptions(dir string, f Footprint, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithMemTableSize(f.MemTableSize).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(f.BlockCacheSize).
		WithIndexCacheSize(f.IndexCacheSize).
		WithValueLogFileSize(f.ValueLogFileSize).
		WithValueThreshold(64 << 10).
		WithNumCompactors(2).
		WithDetectConflicts(false).
		WithMetricsEnabled(false).
		WithLogger(badgerLog{l: log.With("component", "badger")})
}

// badgerLog routes Badger's printf-style logger into slog; Badger is
// chatty at info level, so info goes to debug.
type badgerLog struct{ l *slog.Logger }

func (a badgerLog) Errorf(f string, v ...any)   { a.l.Error(logMsg(f, v)) }
func (a badgerLog) Warningf(f string, v ...any) { a.l.Warn(logMsg(f, v)) }
func (a badgerLog) Infof(f string, v ...any)    { a.l.Debug(logMsg(f, v)) }
func (a badgerLog) Debugf(f string, v ...any)   { a.l.Debug(logMsg(f, v)) }

func logMsg(f string, v []any) string { return strings.TrimSpace(fmt.Sprintf(f, v...)) }

// cleanKey marks an index that was closed in step with its segments.
var cleanKey = []byte{'c'}

// openIndex opens the index in dir/index. An index Badger cannot open
// is moved aside (index.broken-<unix>) and a new one is made, which Open
// rebuilds from the segments. clean reports an index closed in step
// with the segments; the mark is removed, so that a crash from now on
// reconciles at the next start.
func openIndex(dir string, f Footprint, log *slog.Logger) (db *badger.DB, clean bool, err error) {
	path := filepath.Join(dir, indexDir)
	db, err = badger.Open(badgerOptions(path, f, log))
	if err != nil && !strings.Contains(err.Error(), "Cannot acquire directory lock") {
		aside := fmt.Sprintf("%s.broken-%d", path, time.Now().Unix())
		log.Error("CLIP INDEX UNREADABLE: moved aside, rebuilding it from the segments", "index", path, "moved_to", aside, "err", err)
		if rerr := os.Rename(path, aside); rerr == nil {
			db, err = badger.Open(badgerOptions(path, f, log))
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("clips: open index %s: %w", path, err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		_, gerr := txn.Get(cleanKey)
		clean = gerr == nil
		return txn.Delete(cleanKey)
	})
	if err == nil {
		err = db.Sync()
	}
	if err != nil {
		db.Close()
		return nil, false, fmt.Errorf("clips: open index %s: %w", path, err)
	}
	return db, clean, nil
}

// closeIndex marks the index clean, syncs and closes it. The writer has
// stopped: the segments hold exactly what the index says.
func closeIndex(db *badger.DB) error {
	err := db.Update(func(txn *badger.Txn) error { return txn.Set(cleanKey, []byte{1}) })
	if err == nil {
		err = db.Sync()
	}
	return errors.Join(err, db.Close())
}
