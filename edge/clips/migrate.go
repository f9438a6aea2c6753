package clips

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/atomicfile"
)

// The v1 store kept the video itself in Badger, in Config.Dir. Open
// upgrades it in place before anything else: every chunk becomes a
// segment (written under a temporary name, synced, renamed: a chunk
// either has its whole segment or is copied again), the pins go to the
// journal, then a marker file says the copy is complete and the v1
// files are deleted. Interrupted anywhere, the next Open resumes. The
// index is then built from the segments like any lost index.
const v1Done = "v1-upgraded"

// v1Files are the files of a v1 store's Badger, deleted once upgraded.
func isV1File(name string) bool {
	switch name {
	case "MANIFEST", "KEYREGISTRY", "DISCARD", "LOCK":
		return true
	}
	for _, ext := range []string{".vlog", ".sst", ".mem"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// migrateV1 upgrades a v1 store in cfg.Dir, if there is one.
func migrateV1(cfg Config, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(cfg.Dir, "MANIFEST")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	done := filepath.Join(cfg.Dir, videoDir, v1Done)
	if _, err := os.Stat(done); err != nil {
		start := time.Now()
		n, err := copyV1(cfg, log)
		if err != nil {
			return err
		}
		// An index made while an earlier upgrade was failing was closed
		// clean without the segments copied since: drop it, so that Open
		// rebuilds it from all the segments (a new index is never clean).
		if err := os.RemoveAll(filepath.Join(cfg.Dir, indexDir)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(done), 0o755); err != nil { // nothing copied: no video/ yet
			return err
		}
		if err := atomicfile.Write(done, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
			return err
		}
		log.Warn("clip store upgraded: v1 video copied into segments", "dir", cfg.Dir, "chunks", n, "took", time.Since(start))
	}
	return removeV1(cfg.Dir, done)
}

// removeV1 deletes the v1 Badger files, MANIFEST last, then the marker.
func removeV1(dir, done string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() && isV1File(e.Name()) && e.Name() != "MANIFEST" {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	// The removals above must be durable before MANIFEST goes: without
	// it a later start no longer sees a v1 store to finish removing.
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, "MANIFEST")); err != nil {
		return err
	}
	return os.Remove(done)
}

// v1CopyHook, when set (tests), is called after each chunk copied by
// copyV1 with the number copied so far; an error it returns stops the
// upgrade there, as a crash or a failed write would. Nil in production.
var v1CopyHook func(copied int) error

// v1Chunk is a chunk of the v1 store to copy.
type v1Chunk struct {
	camera string
	key    []byte // its m key
	start  int64
	meta   chunkMeta
	pinned bool
}

// copyV1 copies every v1 chunk that has no segment yet, pinned ones
// first then newest first, as long as the disk keeps its floor: what
// does not fit is left behind, loudly. It writes the pins journal.
func copyV1(cfg Config, log *slog.Logger) (int, error) {
	opts := badgerOptions(cfg.Dir, cfg.Footprint.withDefaults(), log).WithValueThreshold(1 << 10)
	db, err := badger.Open(opts)
	if err != nil {
		return 0, fmt.Errorf("clips: upgrade: open the v1 store: %w", err)
	}
	defer db.Close()
	var chunks []v1Chunk
	var pins map[string]Pin
	err = db.View(func(txn *badger.Txn) error {
		var err error
		if pins, err = readV1Pins(txn); err != nil {
			return err
		}
		chunks, err = readV1Chunks(txn, pins)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("clips: upgrade: %w", err)
	}
	if err := mergeV1Pins(cfg.Dir, pins, log); err != nil {
		return 0, err
	}
	sort.SliceStable(chunks, func(i, j int) bool {
		if chunks[i].pinned != chunks[j].pinned {
			return chunks[i].pinned
		}
		return chunks[i].start > chunks[j].start
	})
	n := 0
	for i, c := range chunks {
		if free, err := freeBytes(cfg.Dir); err == nil && free-c.meta.Bytes < cfg.MinFreeBytes {
			log.Error("CLIP STORE UPGRADE: no room above the disk floor: the oldest v1 video is dropped", "chunks_dropped", len(chunks)-i, "oldest_kept", time.Unix(0, c.start).UTC())
			break
		}
		if err := copyV1Chunk(db, cfg.Dir, c); err != nil {
			return n, fmt.Errorf("clips: upgrade: %s chunk %v: %w", c.camera, time.Unix(0, c.start).UTC(), err)
		}
		n++
		if v1CopyHook != nil {
			if err := v1CopyHook(n); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// readV1Pins reads the v1 pins.
func readV1Pins(txn *badger.Txn) (map[string]Pin, error) {
	pins := map[string]Pin{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagPin}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var p Pin
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
			return nil, fmt.Errorf("pin %q: %w", it.Item().Key()[1:], err)
		}
		pins[p.ID] = p
	}
	return pins, nil
}

// readV1Chunks lists the v1 chunks with their cameras.
func readV1Chunks(txn *badger.Txn, pins map[string]Pin) ([]v1Chunk, error) {
	names := map[uint32]string{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagName}})
	for it.Rewind(); it.Valid(); it.Next() {
		err := it.Item().Value(func(v []byte) error {
			if len(v) != 4 {
				return fmt.Errorf("camera %q: bad ID", it.Item().Key()[1:])
			}
			names[binary.BigEndian.Uint32(v)] = string(it.Item().Key()[1:])
			return nil
		})
		if err != nil {
			it.Close()
			return nil, err
		}
	}
	it.Close()
	var out []v1Chunk
	it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagMeta}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		cam, _, _, _ := parseChunkKey(it.Item().Key())
		c, err := readChunk(it.Item())
		if err != nil {
			return nil, err
		}
		v := v1Chunk{camera: names[cam], key: it.Item().KeyCopy(nil), start: c.start, meta: c.meta}
		for _, p := range pins {
			v.pinned = v.pinned || (p.Camera == v.camera && c.start < p.To.UnixNano() && c.end() > p.From.UnixNano())
		}
		if v.camera != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// mergeV1Pins adds the v1 pins to the journal (a resumed upgrade adds
// them again: the same pins).
func mergeV1Pins(dir string, v1 map[string]Pin, log *slog.Logger) error {
	path := filepath.Join(dir, pinsJournal)
	pins, err := readPinJournal(path, log)
	if err != nil {
		return err
	}
	for id, p := range v1 {
		pins[id] = p
	}
	return writePinJournal(path, pins)
}

// copyV1Chunk writes one v1 chunk as a segment, unless it has one.
func copyV1Chunk(db *badger.DB, root string, c v1Chunk) error {
	path := segmentPath(root, c.camera, c.start)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	hdr, err := encodeSegmentHeader(segHeader{Start: c.start, StartPTS: c.meta.StartPTS, Source: c.meta.Source, Codec: c.meta.Codec, Params: c.meta.Params})
	if err != nil {
		return err
	}
	buf := hdr
	var table []auEntry
	err = db.View(func(txn *badger.Txn) error {
		prefix := append([]byte{tagPart}, c.key[1:]...)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		seq := uint32(0)
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) (err error) {
				if table, err = parseV1Part(v, table[:0]); err != nil {
					return err
				}
				payload := 0
				for _, a := range table {
					payload += int(a.Size)
				}
				buf, _ = appendFragment(buf, seq, table, 0)
				buf = append(buf, v[:payload]...)
				return nil
			})
			if err != nil {
				return err
			}
			seq++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, buf, 0o644)
}
