package clips

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/atomicfile"
)

// reconcileReport is what Open found comparing the index with the
// segments, and what it did about it.
type reconcileReport struct {
	Segments int           // segment files looked at
	Indexed  int           // segments (re)indexed from their files: rebuilt or unknown
	Extended int           // segments whose tail, written after the index, was indexed
	Parts    int           // fragments indexed from the files
	Cut      []string      // segments whose torn or damaged tail was cut, and why
	Missing  []string      // indexed chunks whose segment is gone
	Damaged  []string      // files that are not readable segments (moved aside)
	Took     time.Duration // how long it took
	touched  map[bucketRef]bool
}

// log reports loudly what had to be repaired.
func (r reconcileReport) log(log *slog.Logger) {
	attrs := []any{"segments", r.Segments, "indexed", r.Indexed, "extended", r.Extended, "fragments", r.Parts, "took", r.Took}
	if len(r.Cut)+len(r.Missing)+len(r.Damaged) > 0 {
		log.Warn("CLIP STORE REPAIRED AT START", append(attrs, "cut", r.Cut, "missing", r.Missing, "damaged", r.Damaged)...)
		return
	}
	log.Info("clip index reconciled with the segments", attrs...)
}

// reconciler is one reconcile: the store it repairs.
type reconciler struct{ s *Store }

// reconcile brings the index in line with the segments on disk, after a
// crash or with a deleted or unreadable index: segments the index does
// not know are indexed from their own headers and fragments (this is how
// a lost index is rebuilt), fragments written after the index was last
// committed are indexed too, a torn last fragment is cut, and chunks
// whose segment is gone leave the index. It runs in Open, before the
// writer starts and after unfinished evictions.
func (s *Store) reconcile() (reconcileReport, error) {
	rc := &reconciler{s: s}
	start := time.Now()
	rep := reconcileReport{touched: map[bucketRef]bool{}}
	root := filepath.Join(s.cfg.Dir, videoDir)
	dirs, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, err
	}
	seen := map[*Recorder]bool{}
	var errs []error
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		name, err := cameraOfDir(d.Name())
		if err != nil {
			rep.Damaged = append(rep.Damaged, filepath.Join(root, d.Name())+": "+err.Error())
			continue
		}
		r, err := s.Recorder(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		seen[r] = true
		errs = append(errs, rc.camera(r, filepath.Join(root, d.Name()), &rep))
	}
	for _, r := range s.recorders() {
		if !seen[r] {
			errs = append(errs, rc.camera(r, "", &rep))
		}
	}
	errs = append(errs, rc.resummarize(rep.touched))
	rep.Took = time.Since(start)
	return rep, errors.Join(errs...)
}

// reconcileCamera reconciles one camera's segments in dir ("" if none).
func (rc *reconciler) camera(r *Recorder, dir string, rep *reconcileReport) error {
	s := rc.s
	indexed := map[int64]chunkRef{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: camPrefix(tagMeta, r.id)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			c, err := readChunk(it.Item())
			if err != nil {
				return err
			}
			indexed[c.start] = c
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	if dir != "" {
		errs = append(errs, rc.files(r, dir, indexed, rep))
	}
	var gone []chunkRef
	for _, c := range indexed {
		rep.Missing = append(rep.Missing, fmt.Sprintf("%s %s", r.name, time.Unix(0, c.start).UTC().Format(time.RFC3339Nano)))
		gone = append(gone, c)
	}
	errs = append(errs, rc.unindex(r, gone, rep))
	return errors.Join(errs...)
}

// reconcileFiles walks a camera's day directories; every segment found
// is removed from indexed.
func (rc *reconciler) files(r *Recorder, dir string, indexed map[int64]chunkRef, rep *reconcileReport) error {
	s := rc.s
	days, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, day := range days {
		if !day.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, day.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			path := filepath.Join(dir, day.Name(), f.Name())
			if strings.HasSuffix(f.Name(), atomicfile.Suffix) {
				os.Remove(path) // an upgrade's unfinished copy
				continue
			}
			start, ok := segmentStart(f.Name())
			if !ok || path != segmentPath(s.cfg.Dir, r.name, start) {
				continue // not ours: left alone
			}
			rep.Segments++
			c, known := indexed[start]
			delete(indexed, start)
			errs = append(errs, rc.segment(r, path, start, c, known, rep))
		}
	}
	return errors.Join(errs...)
}

// reconcileSegment indexes what segment path holds beyond the index.
func (rc *reconciler) segment(r *Recorder, path string, start int64, c chunkRef, known bool, rep *reconcileReport) error {
	s := rc.s
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if known && fi.Size() == c.meta.Bytes {
		return nil
	}
	if known && fi.Size() < c.meta.Bytes {
		// Shorter than indexed: someone cut it. Index what is left.
		rep.Cut = append(rep.Cut, fmt.Sprintf("%s: %d bytes, the index had %d", path, fi.Size(), c.meta.Bytes))
		if err := rc.unindex(r, []chunkRef{c}, rep); err != nil {
			return err
		}
		known = false
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	from := int64(0)
	if known {
		from = c.meta.Bytes
	}
	h, hlen, frags, end, damage, err := scanSegment(f, fi.Size(), from)
	if err == nil && h.Start != start {
		err = fmt.Errorf("its header says it starts at %v", time.Unix(0, h.Start).UTC())
	}
	if err != nil {
		return rc.setAside(path, err, rep)
	}
	if damage != nil {
		rep.Cut = append(rep.Cut, fmt.Sprintf("%s: %v", path, damage))
		if err := f.Truncate(end); err != nil {
			return err
		}
	}
	if !known {
		if len(frags) == 0 {
			return os.Remove(path) // a header alone holds no video
		}
		c = chunkRef{bucket: bucketOf(time.Unix(0, start), s.bucketDur), start: start,
			meta: chunkMeta{Codec: h.Codec, Source: h.Source, StartPTS: h.StartPTS, Params: h.Params, Bytes: hlen}}
		rep.Indexed++
	} else if len(frags) > 0 {
		rep.Extended++
	}
	return rc.indexFragments(r, c, frags, rep)
}

// setAside moves a file that is not a readable segment out of the way
// (name.damaged), where retention does not count it and an investigator
// can still look at it.
func (rc *reconciler) setAside(path string, why error, rep *reconcileReport) error {
	rep.Damaged = append(rep.Damaged, fmt.Sprintf("%s: %v", path, why))
	return os.Rename(path, path+".damaged")
}

// indexFragments adds fragments of chunk c to the index.
func (rc *reconciler) indexFragments(r *Recorder, c chunkRef, frags []scannedFragment, rep *reconcileReport) error {
	s := rc.s
	if len(frags) == 0 {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	m := c.meta
	for _, f := range frags {
		seq := m.Parts
		m.addAUs(seq, f.AUs, f.End-m.Bytes)
		p := part{aus: f.AUs}
		if err := wb.Set(partKey(r.id, c.bucket, c.start, seq), p.record(f.Payload)); err != nil {
			return err
		}
		rep.Parts++
	}
	if err := wb.Set(chunkKey(tagMeta, r.id, c.bucket, c.start), m.marshal()); err != nil {
		return err
	}
	rep.touched[bucketRef{r, c.bucket}] = true
	return wb.Flush()
}

// unindex removes chunks from the index.
func (rc *reconciler) unindex(r *Recorder, chunks []chunkRef, rep *reconcileReport) error {
	s := rc.s
	if len(chunks) == 0 {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, c := range chunks {
		if err := wb.Delete(chunkKey(tagMeta, r.id, c.bucket, c.start)); err != nil {
			return err
		}
		for seq := range c.meta.Parts {
			if err := wb.Delete(partKey(r.id, c.bucket, c.start, seq)); err != nil {
				return err
			}
		}
		rep.touched[bucketRef{r, c.bucket}] = true
	}
	return wb.Flush()
}

// resummarize recomputes the touched buckets' summaries from their
// chunks, and reloads the cameras' bucket indexes.
func (rc *reconciler) resummarize(touched map[bucketRef]bool) error {
	s := rc.s
	if len(touched) == 0 {
		return nil
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for k := range touched {
			var sum bucketSum
			err := forEachChunk(txn, k.r.id, k.id, func(c chunkRef) (bool, error) {
				sum.add(true, c.meta.Bytes, c.start, c.end())
				return true, nil
			})
			if err != nil {
				return err
			}
			key := bucketKey(tagBucket, k.r.id, k.id)
			if sum.Chunks == 0 {
				err = txn.Delete(key)
			} else {
				err = txn.Set(key, sum.marshal())
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.cams {
		r.bucketIndex = bucketIndex{}
	}
	return s.db.View(s.catalog.loadBuckets)
}
