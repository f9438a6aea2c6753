package clips

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Eviction reasons (label of vigil_clips_evicted_bytes_total).
const (
	evictBytes  = "bytes"
	evictAge    = "age"
	evictDisk   = "disk"
	evictResume = "resume"
)

// retention evicts video: per-camera byte and age budgets, the global
// free-space floor, and evictions a crash interrupted. It runs on the
// writer goroutine only, so that it never races a commit; deleting a
// chunk's segment file returns its space to the file system at once.
type retention struct {
	s    *Store
	db   *badger.DB
	segs *segWriter
}

// plan is what evicting one bucket of a camera would do.
type plan struct {
	r      *Recorder
	b      bucket
	reason string
	whole  bool       // no chunk held: drop the bucket's prefixes
	chunks []chunkRef // the chunks to drop (all of them when whole)
	freed  int64
	rest   bucketSum // what stays (partial eviction)
}

// planBucket decides how to evict a bucket: whole when no pin or export
// touches its span, else chunk by chunk around what is held.
func (rt *retention) planBucket(r *Recorder, b bucket, reason string) (plan, error) {
	s := rt.s
	s.mu.RLock()
	held := s.heldRanges(r.name)
	s.mu.RUnlock()
	p := plan{r: r, b: b, reason: reason}
	p.whole = !overlaps(held, b.sum.First, b.sum.Last)
	err := s.db.View(func(txn *badger.Txn) error {
		return forEachChunk(txn, r.id, b.id, func(c chunkRef) (bool, error) {
			if !p.whole && overlaps(held, c.start, c.end()) {
				p.rest.add(true, c.meta.Bytes, c.start, c.end())
				return true, nil
			}
			p.chunks = append(p.chunks, c)
			p.freed += c.meta.Bytes
			return true, nil
		})
	})
	if p.whole {
		p.freed = b.sum.Bytes
	}
	return p, err
}

// evict deletes the planned chunks' segments and drops their index.
// Each bucket is flagged (and fsynced) first, so that Open finishes a
// drop that a crash interrupted instead of leaving half of a bucket
// visible; the files go before their index, so that a crash never
// leaves a segment the index forgot (Open would take it back).
func (rt *retention) evict(plans []plan) {
	if len(plans) == 0 {
		return
	}
	s := rt.s
	start := time.Now()
	err := s.durableUpdate(func(txn *badger.Txn) error {
		for _, p := range plans {
			flagged := p.b.sum
			if !p.whole {
				flagged = p.rest
			}
			flagged.Evicting = true
			if err := txn.Set(bucketKey(tagBucket, p.r.id, p.b.id), flagged.marshal()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("eviction: flagging buckets failed", "err", err)
		return
	}
	rt.removeFiles(plans)
	s.dropMu.Lock()
	err = s.db.DropPrefix(dropPrefixes(plans)...)
	s.dropMu.Unlock()
	if err != nil {
		s.log.Error("eviction: DropPrefix failed; Open will retry", "err", err)
		return
	}
	// Partially evicted buckets keep their held chunks: clear the flag.
	err = s.durableUpdate(func(txn *badger.Txn) error {
		for _, p := range plans {
			if !p.whole {
				if err := txn.Set(bucketKey(tagBucket, p.r.id, p.b.id), p.rest.marshal()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("eviction: updating bucket summaries failed; Open will retry", "err", err)
	}
	rt.forget(plans)
	s.m.drop.Observe(time.Since(start).Seconds())
}

// removeFiles deletes the planned chunks' segments, and each day's
// directory once it is empty.
func (rt *retention) removeFiles(plans []plan) {
	s := rt.s
	dirs := map[string]bool{}
	for _, p := range plans {
		for _, c := range p.chunks {
			rt.segs.forget(p.r, c.start)
			path := segmentPath(s.cfg.Dir, p.r.name, c.start)
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Error("eviction: deleting a segment", "path", path, "err", err)
			}
			dirs[filepath.Dir(path)] = true
		}
	}
	for d := range dirs {
		os.Remove(d) // only if empty
	}
}

// dropPrefixes are the keys of the planned evictions: a whole bucket's
// b, m and p prefixes, or the m and p prefixes of each unheld chunk.
func dropPrefixes(plans []plan) [][]byte {
	var prefixes [][]byte
	for _, p := range plans {
		if p.whole {
			prefixes = append(prefixes, bucketKey(tagBucket, p.r.id, p.b.id),
				bucketKey(tagMeta, p.r.id, p.b.id), bucketKey(tagPart, p.r.id, p.b.id))
			continue
		}
		for _, c := range p.chunks {
			prefixes = append(prefixes, chunkKey(tagMeta, p.r.id, p.b.id, c.start), chunkKey(tagPart, p.r.id, p.b.id, c.start))
		}
	}
	return prefixes
}

// forget removes what the plans dropped from the cameras' indexes.
func (rt *retention) forget(plans []plan) {
	s := rt.s
	s.mu.Lock()
	for _, p := range plans {
		if p.whole || p.rest.Chunks == 0 {
			p.r.removeBucket(p.b.id)
		} else {
			p.r.setBucket(p.b.id, p.rest)
		}
		p.r.bytes -= p.freed
		s.m.evicted.WithLabelValues(p.r.name, p.reason).Add(float64(p.freed))
	}
	s.mu.Unlock()
	for _, p := range plans {
		s.log.Debug("evicted", "camera", p.r.name, "bucket", time.Unix(0, int64(p.b.id)*int64(s.bucketDur)).UTC(),
			"reason", p.reason, "bytes", p.freed, "whole", p.whole)
	}
}

// evictBudgets applies each camera's byte and age budgets: oldest bucket
// first, never the buckets the camera may still write to. incoming is
// what each camera is about to write (nil from maintenance): the budget
// holds with it.
func (rt *retention) evictBudgets(incoming map[*Recorder]int64) {
	now := rt.s.cfg.Clock().UnixNano()
	var plans []plan
	for _, r := range rt.s.recorders() {
		if !rt.overBudget(r, incoming[r], now) {
			continue
		}
		prot, hasProt := r.protectedBucket()
		rt.s.mu.RLock()
		buckets := append([]bucket(nil), r.buckets...)
		bytes := r.bytes + incoming[r]
		rt.s.mu.RUnlock()
		for _, b := range buckets {
			if hasProt && b.id >= prot {
				break
			}
			old := r.cfg.MaxAge > 0 && b.sum.Last < now-int64(r.cfg.MaxAge)
			big := r.cfg.MaxBytes > 0 && bytes > r.cfg.MaxBytes
			if !old && !big {
				break
			}
			reason := evictBytes
			if old {
				reason = evictAge
			}
			p, err := rt.planBucket(r, b, reason)
			if err != nil {
				rt.s.log.Error("eviction: planning failed", "camera", r.name, "err", err)
				break
			}
			if p.freed == 0 {
				continue // all held by pins: the next bucket is the oldest unpinned
			}
			plans = append(plans, p)
			bytes -= p.freed
		}
	}
	rt.evict(plans)
}

// overBudget is the cheap test before planning: the camera's bytes with
// what it is about to write exceed its budget, or its oldest bucket is
// older than its age budget.
func (rt *retention) overBudget(r *Recorder, incoming, now int64) bool {
	rt.s.mu.RLock()
	defer rt.s.mu.RUnlock()
	if r.cfg.MaxBytes > 0 && r.bytes+incoming > r.cfg.MaxBytes {
		return true
	}
	return r.cfg.MaxAge > 0 && len(r.buckets) > 0 && r.buckets[0].sum.Last < now-int64(r.cfg.MaxAge)
}

// resumeEvictions finishes evictions a crash interrupted. Open calls it
// before the writer starts.
func (rt *retention) resumeEvictions() {
	var plans []plan
	for _, r := range rt.s.recorders() {
		for _, b := range r.buckets {
			if !b.sum.Evicting {
				continue
			}
			p, err := rt.planBucket(r, b, evictResume)
			if err != nil {
				rt.s.log.Error("eviction: resuming failed", "camera", r.name, "err", err)
				continue
			}
			plans = append(plans, p)
		}
	}
	if len(plans) > 0 {
		rt.s.log.Info("finishing evictions interrupted by a crash", "buckets", len(plans))
	}
	rt.evict(plans)
}
