package clips

import (
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
)

// VerifyReport is what Verify found: per camera what is recorded and
// where it has gaps, and every segment that disagrees with the index.
type VerifyReport struct {
	Dir     string         `json:"dir"`
	Index   string         `json:"index"` // "ok", or why it was not compared
	Cameras []CameraReport `json:"cameras"`
	// Orphans are segments the index does not list (an unclean stop: the
	// edge indexes them at its next start).
	Orphans []string `json:"orphans"`
	// Missing are indexed chunks whose segment is gone.
	Missing []string `json:"missing"`
	// Damaged are segments that do not read back whole, or disagree with
	// their index entry, and files set aside as damaged.
	Damaged []string `json:"damaged"`
	// V1 is set when the directory still holds a v1 store (not upgraded).
	V1 bool `json:"v1,omitempty"`
}

// CameraReport is one camera's recorded video.
type CameraReport struct {
	Camera   string    `json:"camera"`
	Segments int       `json:"segments"`
	Frames   int       `json:"frames"`
	Bytes    int64     `json:"bytes"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	Gaps     []Span    `json:"gaps"`
}

// OK reports a store with nothing orphaned, missing or damaged.
func (r VerifyReport) OK() bool {
	return len(r.Orphans)+len(r.Missing)+len(r.Damaged) == 0 && !r.V1
}

// Verify scans a stopped store's segments against its index: it reads
// every fragment header of every segment (not the video), and reports
// each camera's spans and gaps, segments the index does not know,
// indexed chunks without a segment, and damage. It changes nothing; the
// edge repairs what can be repaired at its next start. A store in use
// by a running edge cannot be verified (its index is locked).
func Verify(dir string, log *slog.Logger) (VerifyReport, error) {
	rep := VerifyReport{Dir: dir, Index: "ok", Orphans: []string{}, Missing: []string{}, Damaged: []string{}}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err == nil {
		rep.V1 = true
	}
	idx, err := readIndexOnly(dir, log)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return rep, fmt.Errorf("clips: %s is in use (is the edge running? stop it first): %w", dir, err)
		}
		rep.Index = "not compared: " + err.Error()
		idx = nil
	}
	cams, err := scanCameras(dir, idx, &rep)
	if err != nil {
		return rep, err
	}
	for name, chunks := range idx {
		for start := range chunks {
			rep.Missing = append(rep.Missing, fmt.Sprintf("%s %s", name, time.Unix(0, start).UTC().Format(time.RFC3339Nano)))
		}
	}
	rep.Cameras = cams
	sort.Strings(rep.Missing)
	return rep, nil
}

// indexOnly is the index's chunks, by camera then start.
type indexOnly map[string]map[int64]chunkMeta

// readIndexOnly reads the index's chunks, read-only.
func readIndexOnly(dir string, log *slog.Logger) (indexOnly, error) {
	path := filepath.Join(dir, indexDir)
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := badger.Open(badgerOptions(path, Footprint{}.withDefaults(), log).WithReadOnly(true))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	idx := indexOnly{}
	err = db.View(func(txn *badger.Txn) error {
		names := map[uint32]string{}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagName}})
		for it.Rewind(); it.Valid(); it.Next() {
			it.Item().Value(func(v []byte) error {
				if len(v) == 4 {
					names[uint32(v[0])<<24|uint32(v[1])<<16|uint32(v[2])<<8|uint32(v[3])] = string(it.Item().Key()[1:])
				}
				return nil
			})
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagMeta}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			cam, _, _, _ := parseChunkKey(it.Item().Key())
			c, err := readChunk(it.Item())
			if err != nil {
				return err
			}
			if idx[names[cam]] == nil {
				idx[names[cam]] = map[int64]chunkMeta{}
			}
			idx[names[cam]][c.start] = c.meta
		}
		return nil
	})
	return idx, err
}

// scanCameras scans every camera directory.
func scanCameras(dir string, idx indexOnly, rep *VerifyReport) ([]CameraReport, error) {
	root := filepath.Join(dir, videoDir)
	dirs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return []CameraReport{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []CameraReport{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		name, err := cameraOfDir(d.Name())
		if err != nil {
			rep.Damaged = append(rep.Damaged, filepath.Join(root, d.Name())+": "+err.Error())
			continue
		}
		cr, err := scanCamera(dir, name, idx[name], idx != nil, rep)
		if err != nil {
			return nil, err
		}
		out = append(out, cr)
	}
	return out, nil
}

// verifiedSpan is one segment's video.
type verifiedSpan struct{ start, end int64 }

// scanCamera scans one camera's segments; indexed loses those found.
// compare is false when the index could not be read.
func scanCamera(dir, name string, indexed map[int64]chunkMeta, compare bool, rep *VerifyReport) (CameraReport, error) {
	cr := CameraReport{Camera: name, Gaps: []Span{}}
	camRoot := filepath.Join(dir, videoDir, camDir(name))
	var spans []verifiedSpan
	err := filepath.WalkDir(camRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, ".damaged") {
			rep.Damaged = append(rep.Damaged, path+": set aside at a start")
			return nil
		}
		start, ok := segmentStart(d.Name())
		if !ok {
			return nil
		}
		meta, known := indexed[start]
		delete(indexed, start)
		sp, frames, size, problem := verifySegment(path, start, meta, known, compare)
		switch {
		case problem != "":
			rep.Damaged = append(rep.Damaged, path+": "+problem)
		case !known && compare:
			rep.Orphans = append(rep.Orphans, path)
		}
		if frames > 0 {
			spans = append(spans, sp)
			cr.Segments++
			cr.Frames += frames
			cr.Bytes += size
		}
		return nil
	})
	summarize(&cr, spans)
	return cr, err
}

// verifySegment reads one segment whole (headers and moofs) and holds
// it against its index entry, if the index was read.
func verifySegment(path string, start int64, meta chunkMeta, known, compare bool) (sp verifiedSpan, frames int, size int64, problem string) {
	f, err := os.Open(path)
	if err != nil {
		return sp, 0, 0, err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sp, 0, 0, err.Error()
	}
	h, _, frags, end, damage, err := scanSegment(f, fi.Size(), 0)
	if err != nil {
		return sp, 0, 0, err.Error()
	}
	sp.start, sp.end = h.Start, h.Start
	var last time.Duration
	for _, fr := range frags {
		frames += len(fr.AUs)
		for _, a := range fr.AUs {
			last = max(last, a.Offset)
		}
	}
	if frames > 0 {
		sp.end = h.Start + int64(last) + int64(last)/int64(max(frames-1, 1))
	}
	var problems []string
	if damage != nil {
		problems = append(problems, damage.Error())
	}
	if h.Start != start {
		problems = append(problems, fmt.Sprintf("its header says it starts at %v", time.Unix(0, h.Start).UTC()))
	}
	if compare && known && (end != meta.Bytes || uint32(len(frags)) != meta.Parts || uint32(frames) != meta.AUs) {
		problems = append(problems, fmt.Sprintf("%d fragments, %d frames, %d bytes; the index says %d, %d, %d",
			len(frags), frames, end, meta.Parts, meta.AUs, meta.Bytes))
	}
	return sp, frames, fi.Size(), strings.Join(problems, "; ")
}

// summarize sets a camera's first, last and gaps from its segments.
func summarize(cr *CameraReport, spans []verifiedSpan) {
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var end int64
	for i, sp := range spans {
		if i == 0 {
			cr.First = time.Unix(0, sp.start).UTC()
		} else if sp.start-end > int64(gapTolerance) {
			cr.Gaps = append(cr.Gaps, Span{Start: time.Unix(0, end).UTC(), End: time.Unix(0, sp.start).UTC()})
		}
		end = max(end, sp.end)
	}
	if len(spans) > 0 {
		cr.Last = time.Unix(0, end).UTC()
	}
}
