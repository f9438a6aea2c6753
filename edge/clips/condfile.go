package clips

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// condFile keeps the raised conditions across restarts: a condition
// raised before a crash is otherwise forgotten, and central's red alert
// for it never gets its all-clear. It must be writable on a full disk,
// which is exactly when disk_full is raised, so it is allocated once
// (two slots of condSlot bytes, written as zeros, not sparse) and then
// only rewritten in place, alternating slots. Each slot carries a
// sequence number and a CRC: a torn write leaves the other slot intact.
type condFile struct {
	path string
	log  *slog.Logger

	mu   sync.Mutex
	f    *os.File // nil until allocated (the disk may be too full for that)
	seq  uint64
	warn bool // a failure was logged; the next success is logged too
}

const (
	condFileName = "conditions.state"
	condSlot     = 4096
	condHeader   = 16 // seq, length, CRC
)

// openCondFile opens or allocates the file and returns the conditions it
// holds as raised. Failures are logged: the file only serves restarts.
func openCondFile(dir string, log *slog.Logger) (*condFile, []Condition) {
	cf := &condFile{path: filepath.Join(dir, condFileName), log: log}
	var raised []Condition
	if b, err := os.ReadFile(cf.path); err == nil {
		var payload []byte
		cf.seq, payload = newestSlot(b)
		if payload != nil {
			if err := json.Unmarshal(payload, &raised); err != nil {
				log.Warn("clip store: unreadable condition file", "file", cf.path, "err", err)
				raised = nil
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("clip store: reading the condition file", "file", cf.path, "err", err)
	}
	cf.mu.Lock()
	cf.allocate()
	cf.mu.Unlock()
	return cf, raised
}

// newestSlot returns the valid slot with the highest sequence number.
func newestSlot(b []byte) (seq uint64, payload []byte) {
	for i := 0; i+condSlot <= len(b); i += condSlot {
		s := b[i : i+condSlot]
		n := binary.BigEndian.Uint32(s[8:12])
		if n == 0 || n > condSlot-condHeader {
			continue
		}
		p := s[condHeader : condHeader+n]
		if crc32.ChecksumIEEE(p) != binary.BigEndian.Uint32(s[12:16]) {
			continue
		}
		if q := binary.BigEndian.Uint64(s[:8]); payload == nil || q > seq {
			seq, payload = q, p
		}
	}
	return seq, payload
}

// allocate opens the file, writing both slots in full when it is new or
// short. Caller holds cf.mu.
func (cf *condFile) allocate() bool {
	if cf.f != nil {
		return true
	}
	f, err := os.OpenFile(cf.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		cf.fail("opening", err)
		return false
	}
	if fi, err := f.Stat(); err == nil && fi.Size() >= 2*condSlot {
		cf.f = f
		return true
	}
	// Keep what a short file holds (a slot written before a crash).
	old := make([]byte, 2*condSlot)
	io.ReadFull(f, old)
	if _, err := f.WriteAt(old, 0); err != nil {
		f.Close()
		cf.fail("allocating", err)
		return false
	}
	if err := f.Sync(); err != nil {
		f.Close()
		cf.fail("allocating", err)
		return false
	}
	cf.f = f
	return true
}

// write records the raised conditions that snapshot returns, durably.
// snapshot runs under the file's lock, so the last change is written last.
func (cf *condFile) write(snapshot func() []Condition) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	raised := snapshot()
	sort.Slice(raised, func(i, j int) bool { return raised[i].Kind < raised[j].Kind })
	if raised == nil {
		raised = []Condition{}
	}
	p, err := json.Marshal(raised)
	if err != nil {
		panic("clips: marshalling conditions: " + err.Error())
	}
	if len(p) > condSlot-condHeader {
		for i := range raised {
			raised[i].Message = "" // only the kinds matter for the all-clear
		}
		p, _ = json.Marshal(raised)
	}
	if !cf.allocate() {
		return
	}
	cf.seq++
	slot := make([]byte, condSlot)
	binary.BigEndian.PutUint64(slot[:8], cf.seq)
	binary.BigEndian.PutUint32(slot[8:12], uint32(len(p)))
	binary.BigEndian.PutUint32(slot[12:16], crc32.ChecksumIEEE(p))
	copy(slot[condHeader:], p)
	if _, err := cf.f.WriteAt(slot, int64(cf.seq%2)*condSlot); err != nil {
		cf.fail("writing", err)
		return
	}
	if err := cf.f.Sync(); err != nil {
		cf.fail("syncing", err)
		return
	}
	if cf.warn {
		cf.warn = false
		cf.log.Info("clip store: condition file written again", "file", cf.path)
	}
}

func (cf *condFile) fail(what string, err error) {
	if !cf.warn {
		cf.warn = true
		cf.log.Warn("clip store: "+what+" the condition file; a restart may not clear conditions raised now", "file", cf.path, "err", err)
	}
}

func (cf *condFile) close() {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.f != nil {
		cf.f.Close()
		cf.f = nil
	}
}
