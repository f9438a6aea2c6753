package clips

import (
	"fmt"
	"sort"
)

// evictForSpace evicts the oldest unpinned video of any camera until need
// bytes fit above the floor. It reports whether they do.
func (rt *retention) evictForSpace(need int64) bool {
	s := rt.s
	for range 16 {
		free, err := freeBytes(s.cfg.Dir)
		if err != nil {
			s.log.Error("free space", "err", err)
			return false
		}
		s.m.diskFree.Set(float64(free))
		deficit := s.cfg.MinFreeBytes + need - free
		if deficit <= 0 {
			return true
		}
		// Evict a little more than the deficit, so that the next flush
		// does not evict again.
		plans := rt.oldestPlans(deficit + evictSlack)
		if len(plans) == 0 {
			return false
		}
		rt.evict(plans)
	}
	free, _ := freeBytes(s.cfg.Dir)
	return free-need >= s.cfg.MinFreeBytes
}

// evictSlack is what the floor's eviction frees beyond the deficit.
const evictSlack = 16 << 20

// oldestPlans picks buckets in global age order until want bytes.
func (rt *retention) oldestPlans(want int64) []plan {
	type cand struct {
		r *Recorder
		b bucket
	}
	var cands []cand
	for _, r := range rt.s.recorders() {
		prot, hasProt := r.protectedBucket()
		rt.s.mu.RLock()
		for _, b := range r.buckets {
			if hasProt && b.id >= prot {
				break
			}
			cands = append(cands, cand{r, b})
		}
		rt.s.mu.RUnlock()
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].b.sum.First < cands[j].b.sum.First })
	var plans []plan
	var got int64
	for _, c := range cands {
		if got >= want {
			break
		}
		p, err := rt.planBucket(c.r, c.b, evictDisk)
		if err != nil || p.freed == 0 {
			continue
		}
		plans = append(plans, p)
		got += p.freed
	}
	return plans
}

// ensureSpace makes room for need bytes above the floor, evicting if it
// must, and raises or clears the disk condition.
func (rt *retention) ensureSpace(need int64) bool {
	s := rt.s
	free, err := freeBytes(s.cfg.Dir)
	if err == nil && free-need >= s.cfg.MinFreeBytes {
		s.setCondition(CondDiskFull, false, "recording resumed")
		return true
	}
	if rt.evictForSpace(need) {
		s.setCondition(CondDiskFull, false, "recording resumed")
		return true
	}
	free, _ = freeBytes(s.cfg.Dir)
	s.mu.RLock()
	pinned := s.pinnedTotal()
	s.mu.RUnlock()
	s.setCondition(CondDiskFull, true, fmt.Sprintf(
		"recording stopped: %d MiB free, floor %d MiB, nothing unpinned left to evict (%d MiB pinned)",
		free>>20, s.cfg.MinFreeBytes>>20, pinned>>20))
	if pinned > 0 && rt.unpinnedBytes() == 0 {
		s.setCondition(CondPinsFull, true, "pinned evidence fills the disk: new pins refused, nothing pinned is deleted")
	}
	return false
}

// unpinnedBytes estimates what retention could still evict.
func (rt *retention) unpinnedBytes() int64 {
	s := rt.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, r := range s.cams {
		n += r.bytes - r.pinned
	}
	return max(n, 0)
}
