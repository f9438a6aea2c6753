package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotEmpty: CopyTo's target log has entries already.
var ErrNotEmpty = errors.New("audit: the target log is not empty")

// CopyTo copies every record of l — entries, head and AppendOnce keys —
// byte for byte into the empty log to, in one transaction of to's, so
// the chain, its hashes and MACs are the same there (moving a central's
// log from Badger to PostgreSQL). It returns the number of entries
// copied. l must not be appended to meanwhile (central stopped).
func (l *Log) CopyTo(ctx context.Context, to *Log) (uint64, error) {
	if !to.be().shared() {
		// A Badger log's writer keeps its head in memory: it would not
		// see the copy.
		return 0, errors.New("audit: CopyTo copies into a PostgreSQL log")
	}
	var n uint64
	err := to.be().update(ctx, func(w writeTx) error {
		if _, ok, err := w.lockHead(); err != nil {
			return err
		} else if last, _, err := w.last(); err != nil {
			return err
		} else if ok && last > 0 {
			return ErrNotEmpty
		}
		return l.be().view(ctx, func(r reads) error {
			if err := r.scan(1, scanAll, func(seq uint64, v []byte) error {
				var e Entry
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("audit: entry %d: %w", seq, err)
				}
				n++
				return w.putEntry(seq, e.Time, v)
			}); err != nil {
				return err
			}
			if err := r.onces(w.putOnce); err != nil {
				return err
			}
			h, ok, err := r.headRecord()
			if err != nil || !ok {
				return err
			}
			return w.putHead(h)
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
