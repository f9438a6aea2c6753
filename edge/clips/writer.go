package clips

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// writer is the store's only writer of video: one goroutine that commits
// every camera's queued parts, fsyncs, and applies retention. Owning all
// of it in one place keeps DropPrefix (which blocks Badger's writes) from
// ever racing a commit, and keeps the chunk and bucket accounting
// single-owner.
type writer struct {
	s         *Store
	db        *badger.DB
	ret       retention
	meter     pinMeter
	lastSync  time.Time
	lastMaint time.Time
	lastSlow  time.Time
	dirty     bool // committed since the last fsync
}

func newWriter(s *Store) *writer {
	return &writer{s: s, db: s.db, ret: retention{s: s, db: s.db}, meter: pinMeter{s: s}}
}

// Durability: a flush commits everything queued in one transaction per
// 64 parts and DB.Sync follows at every tick, so at most FlushInterval
// plus one commit of video is lost on kill -9 or power loss.
func (w *writer) run(ctx context.Context) {
	t := time.NewTicker(w.s.cfg.FlushInterval)
	defer t.Stop()
	w.maintain()
	for {
		select {
		case <-ctx.Done():
			w.flush()
			w.sync()
			return
		case <-t.C:
			w.flush()
			w.sync()
			if time.Since(w.lastMaint) >= time.Second {
				w.maintain()
			}
		case <-w.s.poke:
			w.flush()
			if time.Since(w.lastSync) >= w.s.cfg.FlushInterval {
				w.sync()
			}
		case reply := <-w.s.flushq:
			w.flush()
			w.sync()
			w.maintain()
			close(reply)
		}
	}
}

func (w *writer) sync() {
	if !w.dirty {
		return
	}
	start := time.Now()
	if err := w.db.Sync(); err != nil {
		w.s.log.Error("clip store fsync failed", "err", err)
		return
	}
	w.s.m.sync.Observe(time.Since(start).Seconds())
	w.lastSync = time.Now()
	w.dirty = false
}

// flush commits everything the cameras queued, or drops it when there is
// no space above the floor even after eviction.
func (w *writer) flush() {
	if g := w.s.cfg.writerGate; g != nil {
		<-g
	}
	var batch []*part
	for _, r := range w.s.recorders() {
		batch = append(batch, r.take()...)
	}
	if len(batch) == 0 {
		return
	}
	var need int64
	for _, p := range batch {
		need += int64(len(p.buf)) + int64(16*len(p.aus)) + 256
	}
	if !w.ret.ensureSpace(need) {
		w.dropParts(batch, dropDiskFull)
		return
	}
	const perTxn = 64
	for i := 0; i < len(batch); i += perTxn {
		w.commit(batch[i:min(i+perTxn, len(batch))])
	}
}

// dropParts discards parts and breaks their chunks: nothing may follow a
// hole in a chunk, so each camera resumes at its next keyframe.
func (w *writer) dropParts(parts []*part, reason string) {
	for _, p := range parts {
		r := p.chunk.cam
		p.chunk.broken.CompareAndSwap(nil, &reason)
		r.m.dropped[reason].Add(float64(len(p.aus)))
		r.done(p.payloadBytes())
		w.s.parts.put(p)
	}
}

// commit writes parts with their chunks' metadata and buckets' summaries
// in one transaction: after a crash a part is either visible with its
// metadata or not at all.
func (w *writer) commit(parts []*part) {
	s := w.s
	s.dropMu.RLock()
	defer s.dropMu.RUnlock()
	txn := w.db.NewTransaction(true)
	defer txn.Discard()
	pc := pendingCommit{metas: map[*chunk]*chunkMeta{}, sums: map[bucketRef]*bucketSum{}}
	for i, p := range parts {
		if reason := p.chunk.broken.Load(); reason != nil {
			w.dropParts([]*part{p}, *reason)
			continue
		}
		if err := pc.stage(txn, p); err != nil {
			w.failCommit(append(pc.kept, parts[i:]...), err)
			return
		}
	}
	if len(pc.kept) == 0 {
		return
	}
	if err := pc.writeIndex(txn); err != nil {
		w.failCommit(pc.kept, err)
		return
	}
	start := time.Now()
	if err := txn.Commit(); err != nil {
		w.failCommit(pc.kept, err)
		return
	}
	s.m.flush.Observe(time.Since(start).Seconds())
	w.dirty = true
	pc.adopt(s)
	s.setCondition(CondWriteError, false, "commits succeed again")
}

// bucketRef names one camera's bucket.
type bucketRef struct {
	r  *Recorder
	id uint64
}

// pendingCommit is one commit's transaction being built: the chunks'
// metadata and the buckets' summaries as they will be once it commits,
// each in first-touched order, and the parts it holds.
type pendingCommit struct {
	metas  map[*chunk]*chunkMeta
	order  []*chunk
	sums   map[bucketRef]*bucketSum
	border []bucketRef
	kept   []*part
}

// stage adds part p to txn and accounts it in its chunk's metadata and
// its bucket's summary.
func (pc *pendingCommit) stage(txn *badger.Txn, p *part) error {
	c, r := p.chunk, p.chunk.cam
	next, ok := pc.metas[c]
	newChunk := false
	if !ok {
		m := c.meta
		if !c.written {
			m = chunkMeta{Codec: c.codec, Source: c.source, StartPTS: c.startPTS, Params: c.params}
			newChunk = true
		}
		next = &m
		pc.metas[c] = next
		pc.order = append(pc.order, c)
	}
	val := p.finish()
	next.addPart(p, int64(len(val)))
	if err := txn.SetEntry(badger.NewEntry(partKey(r.id, c.bucket, c.start, p.seq), val)); err != nil {
		return err
	}
	k := bucketRef{r, c.bucket}
	sum, ok := pc.sums[k]
	if !ok {
		cur := r.bucketSum(c.bucket)
		sum = &cur
		pc.sums[k] = sum
		pc.border = append(pc.border, k)
	}
	sum.add(newChunk, int64(len(val)), c.start, next.end(c.start))
	pc.kept = append(pc.kept, p)
	return nil
}

// writeIndex adds the chunks' metadata and the buckets' summaries to txn.
func (pc *pendingCommit) writeIndex(txn *badger.Txn) error {
	for _, c := range pc.order {
		if err := txn.Set(chunkKey(tagMeta, c.cam.id, c.bucket, c.start), pc.metas[c].marshal()); err != nil {
			return err
		}
	}
	for _, k := range pc.border {
		if err := txn.Set(bucketKey(tagBucket, k.r.id, k.id), pc.sums[k].marshal()); err != nil {
			return err
		}
	}
	return nil
}

// adopt makes the committed state the store's: chunks' metadata, bucket
// summaries and byte counts, and the parts' accounting.
func (pc *pendingCommit) adopt(s *Store) {
	for _, c := range pc.order {
		c.meta = *pc.metas[c]
		c.written = true
	}
	s.mu.Lock()
	for _, k := range pc.border {
		old := k.r.bucketSum(k.id)
		k.r.setBucket(k.id, *pc.sums[k])
		k.r.bytes += pc.sums[k].Bytes - old.Bytes
	}
	s.mu.Unlock()
	for _, p := range pc.kept {
		r := p.chunk.cam
		r.m.written.Add(float64(p.payloadBytes()))
		r.done(p.payloadBytes())
		s.parts.put(p)
	}
}

func (w *writer) failCommit(parts []*part, err error) {
	w.s.setCondition(CondWriteError, true, fmt.Sprintf("recording stopped at the last durable point: %v", err))
	w.dropParts(parts, dropWriteError)
}

// addPart accounts a committed part in its chunk's metadata.
func (m *chunkMeta) addPart(p *part, stored int64) {
	for i, a := range p.aus {
		if a.Key {
			m.Keyframes = append(m.Keyframes, keyframe{Offset: a.Offset, Part: p.seq, Index: uint32(i)})
		}
		m.LastOffset = max(m.LastOffset, a.Offset)
	}
	m.Parts = p.seq + 1
	m.AUs += uint32(len(p.aus))
	m.Bytes += stored
	if m.AUs > 1 {
		m.FrameDur = m.LastOffset / time.Duration(m.AUs-1)
	}
}
