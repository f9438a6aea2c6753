package clips

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maintain runs about once a second on the writer goroutine: pin expiry,
// per-camera budgets, the disk floor, pin accounting, gauges, and keeping
// the index's mapped pages out of the resident set.
func (w *writer) maintain() {
	s := w.s
	w.lastMaint = time.Now()
	s.pinBook.expire()
	w.ret.evictBudgets(nil)
	w.ret.evictForSpace(0)
	if time.Since(w.lastSlow) >= 5*time.Second {
		w.lastSlow = time.Now()
		s.m.diskUsed.Set(float64(s.diskUsed()))
	}
	// Chunks committed into a pinned range count too: for a second after
	// a slow tick, recount even when the pins did not change.
	w.meter.updatePinned(time.Since(w.lastSlow) <= time.Second)
	w.meter.updatePinCapacity()
	w.updateGauges()
	w.sync()
	if err := pageOut(s.cfg.Dir); err != nil {
		s.log.Debug("page-out", "err", err)
	}
	s.m.rssF.Set(float64(residentFileBytes()))
}

// diskUsed is what the store occupies: its segments (as the index
// accounts them) and the index directory; walking every segment would
// cost a stat per minute of video.
func (s *Store) diskUsed() int64 {
	n := diskUsage(filepath.Join(s.cfg.Dir, indexDir))
	s.mu.RLock()
	for _, r := range s.cams {
		n += r.bytes
	}
	s.mu.RUnlock()
	return n
}

// updateGauges sets the per-camera and disk gauges, and clears disk_full
// once there is room again.
func (w *writer) updateGauges() {
	s := w.s
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
}

// pinMeter accounts pinned video on the writer goroutine: the bytes each
// camera's pins hold, and pinned video's share of the disk (pins_full).
type pinMeter struct {
	s         *Store
	pinnedVer uint64 // the pin book's version last counted
}

// updatePinned recounts the bytes of the chunks each camera's pins hold,
// when pins changed or force is set.
func (pm *pinMeter) updatePinned(force bool) {
	s := pm.s
	s.mu.RLock()
	ver := s.pinVer
	s.mu.RUnlock()
	if ver == pm.pinnedVer && !force {
		return
	}
	pm.pinnedVer = ver
	totals := map[*Recorder]int64{}
	for _, r := range s.recorders() {
		iv := s.pinnedRanges(r.name)
		if len(iv) == 0 {
			totals[r] = 0
			continue
		}
		n, err := pm.count(r, iv)
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

// count sums the bytes of a camera's chunks that overlap the ranges iv,
// each chunk once.
func (pm *pinMeter) count(r *Recorder, iv []interval) (int64, error) {
	s := pm.s
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
	return n, err
}

// updatePinCapacity raises pins_full when pinned video reaches its share
// of the disk, and clears it below 90 % of that share.
func (pm *pinMeter) updatePinCapacity() {
	s := pm.s
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
	s.mu.Unlock()
	diskFull := s.hasCondition(CondDiskFull)
	switch {
	case pinned >= limit:
		s.setCondition(CondPinsFull, true, fmt.Sprintf("pinned evidence (%d MiB) reached its share of the disk (%d MiB): new pins refused, nothing pinned is deleted", pinned>>20, limit>>20))
	case pinned < limit/10*9 && !diskFull:
		s.setCondition(CondPinsFull, false, "pinned evidence back under its share of the disk")
	}
}
