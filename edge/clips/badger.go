package clips

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// badgerOptions sizes Badger for video on an edge box:
//   - values above 1 KiB (every part) go to the value log, so the LSM
//     holds only keys, pointers and chunk metadata, and video is written
//     once, sequentially;
//   - SyncWrites is off: the writer fsyncs once per flush (DB.Sync), not
//     per commit;
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
		WithValueThreshold(1 << 10).
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

// BadgerOptions are the options the store would open Badger with in dir
// (default footprint, value-log files sized from the disk), for
// benchmarks that measure Badger alone beside the store.
func BadgerOptions(dir string, log *slog.Logger) (badger.Options, error) {
	total, err := totalBytes(dir)
	if err != nil {
		return badger.Options{}, err
	}
	f := Footprint{ValueLogFileSize: vlogFileSize(total)}.withDefaults()
	return badgerOptions(dir, f, log), nil
}
