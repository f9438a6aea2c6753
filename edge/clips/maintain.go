package clips

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maintain runs about once a second on the writer goroutine: pin expiry,
// per-camera budgets, the disk floor, pin accounting, gauges, and keeping
// the value log's mapped pages out of the resident set.
func (w *writer) maintain() {
	s := w.s
	w.lastMaint = time.Now()
	w.expirePins()
	w.evictBudgets()
	w.evictForSpace(0)
	if time.Since(w.lastSlow) >= 5*time.Second {
		w.lastSlow = time.Now()
		// Compactions also find dead values; let GC look now and then.
		w.gcPending = true
		w.gc(500 * time.Millisecond)
		s.m.diskUsed.Set(float64(diskUsage(s.cfg.Dir)))
	}
	w.updatePinned()
	w.updatePinCapacity()
	s.mu.RLock()
	for _, r := range s.cams {
		s.m.bytes.WithLabelValues(r.name).Set(float64(r.bytes))
		s.m.pinned.WithLabelValues(r.name).Set(float64(r.pinned))
		if len(r.buckets) > 0 {
			s.m.oldest.WithLabelValues(r.name).Set(float64(r.buckets[0].sum.First) / 1e9)
		}
	}
	s.mu.RUnlock()
	if free, err := freeBytes(s.cfg.Dir); err == nil {
		s.m.diskFree.Set(float64(free))
		// A flush clears disk_full too, but only with video to write.
		if free >= s.cfg.MinFreeBytes && s.hasCondition(CondDiskFull) {
			s.setCondition(CondDiskFull, false, fmt.Sprintf("recording resumed: %d MiB free", free>>20))
		}
	}
	w.sync()
	if err := pageOut(s.cfg.Dir); err != nil {
		s.log.Debug("page-out", "err", err)
	}
	s.m.rssF.Set(float64(residentFileBytes()))
}

// expirePins releases pins past their evidence retention.
func (w *writer) expirePins() {
	now := w.s.cfg.Clock()
	for _, p := range w.s.Pins() {
		if !p.Expires.After(now) {
			if err := w.s.Unpin(p.ID); err != nil && !errors.Is(err, ErrClosed) {
				w.s.log.Error("releasing an expired pin", "pin", p.ID, "err", err)
			}
		}
	}
}

// updatePinned recounts the bytes of the chunks each camera's pins hold,
// when pins changed.
func (w *writer) updatePinned() {
	s := w.s
	s.mu.RLock()
	ver := s.pinVer
	s.mu.RUnlock()
	if ver == w.pinnedVer && time.Since(w.lastSlow) > time.Second {
		return
	}
	w.pinnedVer = ver
	totals := map[*Recorder]int64{}
	for _, r := range w.recorders() {
		s.mu.RLock()
		var iv []interval
		for _, p := range s.pins {
			if p.Camera == r.name {
				iv = append(iv, interval{p.From.UnixNano(), p.To.UnixNano()})
			}
		}
		s.mu.RUnlock()
		if len(iv) == 0 {
			totals[r] = 0
			continue
		}
		var n int64
		seen := int64(-1)
		err := s.db.View(func(txn *badger.Txn) error {
			for _, v := range mergeIntervals(iv) {
				err := forEachChunkIn(txn, r.id, s.bucketDur, v.from, v.to, func(c chunkRef) (bool, error) {
					if c.start != seen && c.end() >= v.from {
						n += c.meta.Bytes
						seen = c.start
					}
					return true, nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.log.Error("counting pinned video", "camera", r.name, "err", err)
			continue
		}
		totals[r] = n
	}
	s.mu.Lock()
	for r, n := range totals {
		r.pinned = n
	}
	s.mu.Unlock()
}

// updatePinCapacity raises pins_full when pinned video reaches its share
// of the disk, and clears it below 90 % of that share.
func (w *writer) updatePinCapacity() {
	s := w.s
	limit := s.cfg.MaxPinnedBytes
	s.mu.RLock()
	pinned := s.pinnedTotal()
	var total int64
	for _, r := range s.cams {
		total += r.bytes
	}
	s.mu.RUnlock()
	if limit == 0 {
		free, err := freeBytes(s.cfg.Dir)
		if err != nil {
			return
		}
		limit = max((total+free-s.cfg.MinFreeBytes)/2, 0)
	}
	s.mu.Lock()
	s.pinCap = limit
	_, diskFull := s.conds[CondDiskFull]
	s.mu.Unlock()
	switch {
	case pinned >= limit:
		s.setCondition(CondPinsFull, true, fmt.Sprintf("pinned evidence (%d MiB) reached its share of the disk (%d MiB): new pins refused, nothing pinned is deleted", pinned>>20, limit>>20))
	case pinned < limit/10*9 && !diskFull:
		s.setCondition(CondPinsFull, false, "pinned evidence back under its share of the disk")
	}
}

// pinnedTotal sums the cameras' pinned bytes. Caller holds s.mu.
func (s *Store) pinnedTotal() int64 {
	var n int64
	for _, r := range s.cams {
		n += r.pinned
	}
	return n
}
