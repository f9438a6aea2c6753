package outbox

import (
	"encoding/json"
	"sort"

	"github.com/vigil-perimeter/vigil/wire"
)

// meta is what the outbox keeps in memory per queued item to enforce the
// bound without reading values back.
type meta struct {
	seq  uint64
	id   string
	rank int
	size int64
}

// index is the queue in memory: every queued item's meta in order and by
// severity (for the byte bound's evictions), and a copy of the newest
// items (so sending them needs no disk read). The Outbox's lock guards it.
type index struct {
	items    map[uint64]meta
	seqs     map[string]uint64 // by ID
	byRank   [4][]uint64       // per severity rank, seqs oldest first; acked seqs are skipped lazily
	order    []uint64          // every queued seq, oldest first; acked ones skipped lazily
	bytes    int64
	cache    map[uint64]Item
	cached   int64 // bytes in cache
	cacheMax int64
}

func newIndex(cacheMax int64) index {
	return index{items: map[uint64]meta{}, seqs: map[string]uint64{}, cache: map[uint64]Item{}, cacheMax: cacheMax}
}

// has reports whether an item with this ID is queued.
func (x *index) has(id string) bool {
	_, ok := x.seqs[id]
	return ok
}

func (x *index) track(seq uint64, m meta) {
	m.seq = seq
	x.items[seq] = m
	x.seqs[m.id] = seq
	x.byRank[m.rank] = append(x.byRank[m.rank], seq)
	x.order = append(x.order, seq)
	x.bytes += m.size
}

func (x *index) untrack(seq uint64) {
	m, ok := x.items[seq]
	if !ok {
		return
	}
	delete(x.items, seq)
	delete(x.seqs, m.id)
	x.bytes -= m.size
	if _, ok := x.cache[seq]; ok {
		delete(x.cache, seq)
		x.cached -= m.size
	}
}

// cacheItem keeps a copy of a new item while the cache has room.
func (x *index) cacheItem(seq uint64, it Item, size int64) {
	if x.cached+size > x.cacheMax {
		return
	}
	it.Body = append(json.RawMessage{}, it.Body...)
	x.cache[seq] = it
	x.cached += size
}

// victims picks the queued items to drop so that m fits under maxBytes:
// lowest severity first, oldest first, never one more severe than m
// itself. fits is false if even dropping all of those would not make room.
func (x *index) victims(m meta, maxBytes int64) (evict []meta, fits bool) {
	need := x.bytes + m.size - maxBytes
	if need <= 0 {
		return nil, true
	}
	for rank := 1; rank <= min(m.rank, wire.Yellow.Rank()) && need > 0; rank++ {
		for _, seq := range x.byRank[rank] {
			v, ok := x.items[seq]
			if !ok {
				continue // acknowledged already
			}
			evict = append(evict, v)
			need -= v.size
			if need <= 0 {
				break
			}
		}
	}
	if need > 0 {
		return nil, false
	}
	return evict, true
}

// cachedAfter serves After from memory; disk reports that an item it
// needs is only on disk.
func (x *index) cachedAfter(after uint64, limit int) ([]Entry, bool) {
	var out []Entry
	i := sort.Search(len(x.order), func(i int) bool { return x.order[i] > after })
	for ; i < len(x.order) && len(out) < limit; i++ {
		seq := x.order[i]
		if _, ok := x.items[seq]; !ok {
			continue
		}
		it, ok := x.cache[seq]
		if !ok {
			return out, true
		}
		out = append(out, Entry{Seq: seq, Item: it})
	}
	return out, false
}

// compact drops acknowledged seqs from the front of the queues so they do
// not grow without bound on a box that is never full.
func (x *index) compact() {
	for r := range x.byRank {
		x.byRank[r] = x.dropAcked(x.byRank[r])
	}
	x.order = x.dropAcked(x.order)
}

func (x *index) dropAcked(q []uint64) []uint64 {
	i := 0
	for i < len(q) {
		if _, ok := x.items[q[i]]; ok {
			break
		}
		i++
	}
	return q[i:] // later appends reallocate and free the front
}
