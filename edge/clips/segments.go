package clips

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Layout of a v2 store under Config.Dir:
//
//	index/                                  Badger: the rebuildable index
//	video/<camera>/<YYYY-MM-DD>/<start>.mp4 segments: one per chunk
//	pins.jsonl                              the pins journal
//	conditions.state                        raised conditions
//
// <camera> is the camera ID with every byte outside [A-Za-z0-9_-]
// written %XX; <start> is the chunk's first frame in UTC,
// 20060102T150405.000000000Z. A segment is a fragmented MP4 that plays
// as it is (segfile.go); its own header says everything the index needs,
// so deleting index/ loses nothing but the time to rebuild it.
const (
	indexDir    = "index"
	videoDir    = "video"
	segExt      = ".mp4"
	segTimeFmt  = "20060102T150405.000000000Z"
	segDayFmt   = "2006-01-02"
	cleanMarker = "clean"
)

// camDir is a camera's directory name.
func camDir(camera string) string {
	var b strings.Builder
	for i := 0; i < len(camera); i++ {
		c := camera[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// cameraOfDir reverses camDir.
func cameraOfDir(dir string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(dir); i++ {
		if dir[i] != '%' {
			b.WriteByte(dir[i])
			continue
		}
		var c byte
		if i+2 >= len(dir) {
			return "", fmt.Errorf("clips: camera directory %q: bad escape", dir)
		}
		if _, err := fmt.Sscanf(dir[i+1:i+3], "%02X", &c); err != nil {
			return "", fmt.Errorf("clips: camera directory %q: bad escape", dir)
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), validCamera(b.String())
}

// segmentPath is where a camera's chunk starting at start (Unix ns) lives.
func segmentPath(root, camera string, start int64) string {
	t := time.Unix(0, start).UTC()
	return filepath.Join(root, videoDir, camDir(camera), t.Format(segDayFmt), t.Format(segTimeFmt)+segExt)
}

// segmentStart reads a chunk's start from its segment's file name.
func segmentStart(name string) (int64, bool) {
	base, ok := strings.CutSuffix(name, segExt)
	if !ok {
		return 0, false
	}
	t, err := time.Parse(segTimeFmt, base)
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

// segFile is a segment being written: the writer goroutine owns it.
type segFile struct {
	f    *os.File
	size int64 // bytes written and accounted
}

// segWriter holds the segments being written, one per camera, and writes
// their fragments with write(2).
type segWriter struct {
	root  string
	open  map[*Recorder]*chunkFile
	dirty map[*chunkFile]bool // written since the last sync
	buf   []byte
}

// chunkFile is a chunk's open segment.
type chunkFile struct {
	c *chunk
	segFile
}

func newSegWriter(root string) *segWriter {
	return &segWriter{root: root, open: map[*Recorder]*chunkFile{}, dirty: map[*chunkFile]bool{}}
}

// file returns chunk c's segment, created with its header on first use;
// the camera's previous segment is closed (its fragments were synced).
func (sw *segWriter) file(c *chunk) (*chunkFile, int64, error) {
	if cf := sw.open[c.cam]; cf != nil {
		if cf.c == c {
			return cf, 0, nil
		}
		sw.closeFile(cf)
	}
	hdr, err := encodeSegmentHeader(segHeader{Start: c.start, StartPTS: c.startPTS, Source: c.source, Codec: c.codec, Params: c.params})
	if err != nil {
		return nil, 0, err
	}
	path := segmentPath(sw.root, c.cam.name, c.start)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, 0, err
	}
	cf := &chunkFile{c: c, segFile: segFile{f: f}}
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		os.Remove(path)
		return nil, 0, err
	}
	cf.size = int64(len(hdr))
	sw.open[c.cam] = cf
	sw.dirty[cf] = true
	return cf, int64(len(hdr)), nil
}

// appendPart writes part p as one fragment at the end of its segment and
// returns the file offset of its payloads and the bytes it added (with
// the segment's header when p is its first part). On error the segment
// is cut back to where it was: no torn fragment stays behind.
func (sw *segWriter) appendPart(p *part, next time.Duration) (at, added int64, err error) {
	cf, hdr, err := sw.file(p.chunk)
	if err != nil {
		return 0, 0, err
	}
	var hl int
	sw.buf, hl = appendFragment(sw.buf[:0], p.seq, p.aus, next)
	sw.buf = append(sw.buf, p.buf...)
	if _, err := cf.f.WriteAt(sw.buf, cf.size); err != nil {
		sw.cut(cf, cf.size)
		return 0, 0, err
	}
	startWriteback(cf.f, cf.size, int64(len(sw.buf)))
	at = cf.size + int64(hl)
	cf.size += int64(len(sw.buf))
	sw.dirty[cf] = true
	return at, hdr + int64(len(sw.buf)), nil
}

// cut truncates a segment back to size after a failed write.
func (sw *segWriter) cut(cf *chunkFile, size int64) {
	if err := cf.f.Truncate(size); err != nil {
		// The index never points past size, and Open trims a torn tail.
		return
	}
	cf.size = size
}

// sync makes every fragment written since the last sync durable.
func (sw *segWriter) sync() error {
	var errs []error
	for cf := range sw.dirty {
		if err := fdatasync(cf.f); err != nil {
			errs = append(errs, fmt.Errorf("clips: sync %s: %w", cf.f.Name(), err))
		}
		dropCache(cf.f)
		delete(sw.dirty, cf)
	}
	return errors.Join(errs...)
}

// closeFile closes a segment no longer written to.
func (sw *segWriter) closeFile(cf *chunkFile) {
	if sw.dirty[cf] {
		fdatasync(cf.f)
		delete(sw.dirty, cf)
	}
	cf.f.Close()
	if sw.open[cf.c.cam] == cf {
		delete(sw.open, cf.c.cam)
	}
}

// forget closes chunk c's segment if it is open (retention deletes it).
func (sw *segWriter) forget(r *Recorder, start int64) {
	if cf := sw.open[r]; cf != nil && cf.c.start == start {
		sw.closeFile(cf)
	}
}

// close syncs and closes every open segment.
func (sw *segWriter) close() {
	for _, cf := range sw.open {
		sw.closeFile(cf)
	}
}
