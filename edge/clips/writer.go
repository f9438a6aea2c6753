package clips

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
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
	dirty     bool // index committed since the last DB.Sync
	segs      *segWriter
}

func newWriter(s *Store) *writer {
	segs := newSegWriter(s.cfg.Dir)
	return &writer{s: s, db: s.db, segs: segs, ret: retention{s: s, db: s.db, segs: segs}, meter: pinMeter{s: s}}
}

// Durability: a flush writes every queued part as a fragment of its
// segment (write(2)) and commits their index (one transaction per 64
// parts); every FlushInterval the segments written since are
// fdatasynced, and the index about once a second after them. kill -9
// loses nothing written (the page cache keeps it), power loss at most
// FlushInterval plus one flush of video: at the next start Open finds
// the index unclean and holds it against the segments — fragments beyond
// it are indexed, an index that points past a segment's end is cut back
// to what the segment holds.
func (w *writer) run(ctx context.Context) {
	t := time.NewTicker(w.s.cfg.FlushInterval)
	defer t.Stop()
	defer w.segs.close()
	w.maintain()
	for {
		select {
		case <-ctx.Done():
			w.flush()
			w.syncSegments()
			w.sync()
			return
		case <-t.C:
			w.flush()
			w.syncSegments()
			if time.Since(w.lastMaint) >= time.Second {
				w.maintain()
			}
		case <-w.s.poke:
			w.flush()
		case reply := <-w.s.flushq:
			w.flush()
			w.syncSegments()
			w.sync()
			w.maintain()
			close(reply)
		}
	}
}

// syncSegments fdatasyncs the segments written since the last time. A
// failure is a write error: what the kernel could not write is lost.
func (w *writer) syncSegments() {
	start := time.Now()
	n := len(w.segs.dirty)
	if n == 0 {
		return
	}
	if err := w.segs.sync(); err != nil {
		w.s.setCondition(CondWriteError, true, fmt.Sprintf("segments could not be synced to disk: %v", err))
		return
	}
	w.s.m.sync.Observe(time.Since(start).Seconds())
}

// sync makes the index durable; the writer calls it after syncSegments.
func (w *writer) sync() {
	if !w.dirty {
		return
	}
	if err := w.db.Sync(); err != nil {
		w.s.log.Error("clip store index fsync failed", "err", err)
		return
	}
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
	// Budgets count what is about to be written: a camera never holds
	// more than its budget, not even until the next maintenance pass.
	w.ret.evictBudgets(incoming(batch))
	const perTxn = 64
	for i := 0; i < len(batch); i += perTxn {
		w.commit(batch[i:min(i+perTxn, len(batch))])
	}
}

// incoming is the bytes a batch will add per camera (fragments and, at a
// chunk's first part, its segment header, at most a few KiB).
func incoming(batch []*part) map[*Recorder]int64 {
	in := map[*Recorder]int64{}
	for _, p := range batch {
		in[p.chunk.cam] += int64(len(p.buf)) + int64(trunEntrySize*len(p.aus)) + fragFixedSize + 16
		if p.seq == 0 {
			in[p.chunk.cam] += 4 << 10
		}
	}
	return in
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
	pc := pendingCommit{metas: map[*chunk]*chunkMeta{}, sums: map[bucketRef]*bucketSum{}, sizes: map[*chunkFile]int64{}}
	for i, p := range parts {
		if reason := p.chunk.broken.Load(); reason != nil {
			w.dropParts([]*part{p}, *reason)
			continue
		}
		if err := pc.stage(txn, w.segs, p); err != nil {
			w.failCommit(&pc, append(pc.kept, parts[i:]...), err)
			return
		}
	}
	if len(pc.kept) == 0 {
		return
	}
	if err := pc.writeIndex(txn); err != nil {
		w.failCommit(&pc, pc.kept, err)
		return
	}
	start := time.Now()
	if err := txn.Commit(); err != nil {
		w.failCommit(&pc, pc.kept, err)
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
	// sizes is each segment's size before this commit: a failed commit
	// cuts them back, so no fragment outlives its index entry.
	sizes map[*chunkFile]int64
}

// stage adds part p to txn and accounts it in its chunk's metadata and
// its bucket's summary.
func (pc *pendingCommit) stage(txn *badger.Txn, sw *segWriter, p *part) error {
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
	if cf := sw.open[r]; cf != nil && cf.c == c {
		if _, ok := pc.sizes[cf]; !ok {
			pc.sizes[cf] = cf.size
		}
	}
	at, added, err := sw.appendPart(p, 0)
	if err != nil {
		return err
	}
	if cf := sw.open[r]; cf != nil && cf.c == c {
		if _, ok := pc.sizes[cf]; !ok {
			pc.sizes[cf] = 0 // created by this commit
		}
	}
	next.addPart(p, added)
	if err := txn.Set(partKey(r.id, c.bucket, c.start, p.seq), p.record(at)); err != nil {
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
	sum.add(newChunk, added, c.start, next.end(c.start))
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

// failCommit drops the parts of a commit that failed and cuts their
// segments back to where the index ends; a segment the commit created
// goes. A full disk raises disk_full; anything else write_error.
func (w *writer) failCommit(pc *pendingCommit, parts []*part, err error) {
	for cf, size := range pc.sizes {
		if size == 0 {
			w.segs.closeFile(cf)
			os.Remove(cf.f.Name())
			continue
		}
		w.segs.cut(cf, size)
	}
	if errors.Is(err, syscall.ENOSPC) {
		w.s.setCondition(CondDiskFull, true, fmt.Sprintf("recording stopped: the disk is full: %v", err))
		w.dropParts(parts, dropDiskFull)
		return
	}
	w.s.setCondition(CondWriteError, true, fmt.Sprintf("recording stopped at the last durable point: %v", err))
	w.dropParts(parts, dropWriteError)
}

// addPart accounts a committed part in its chunk's metadata.
func (m *chunkMeta) addPart(p *part, stored int64) { m.addAUs(p.seq, p.aus, stored) }

// addAUs accounts part seq, holding aus in stored bytes of the segment.
func (m *chunkMeta) addAUs(seq uint32, aus []auEntry, stored int64) {
	for i, a := range aus {
		if a.Key {
			m.Keyframes = append(m.Keyframes, keyframe{Offset: a.Offset, Part: seq, Index: uint32(i)})
		}
		m.LastOffset = max(m.LastOffset, a.Offset)
	}
	m.Parts = seq + 1
	m.AUs += uint32(len(aus))
	m.Bytes += stored
	if m.AUs > 1 {
		m.FrameDur = m.LastOffset / time.Duration(m.AUs-1)
	}
}
