package clips

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/vigil-perimeter/vigil/internal/atomicfile"
)

// pinsJournal is the file, beside the segments, that holds the pins: the
// index can be rebuilt from the segments, but which video is evidence
// only the pins say, so they live here, one JSON line per change,
// fdatasynced before the change is acknowledged.
const pinsJournal = "pins.jsonl"

// journalLine is one change: a pin made (or replaced) or released.
type journalLine struct {
	Op  string `json:"op"` // "pin" or "unpin"
	Pin *Pin   `json:"pin,omitempty"`
	ID  string `json:"id,omitempty"`
}

// pinJournal appends pin changes to pins.jsonl. Open compacts it to one
// line per pin in force.
type pinJournal struct {
	path string
	mu   sync.Mutex // appends come from callers and the writer's expiry
	f    *os.File
}

// openPinJournal reads the journal in dir, rewrites it compacted and
// opens it for appending. A torn last line (a crash while appending)
// is dropped with a warning: its change was never acknowledged.
func openPinJournal(dir string, log *slog.Logger) (*pinJournal, map[string]Pin, error) {
	path := filepath.Join(dir, pinsJournal)
	pins, err := readPinJournal(path, log)
	if err != nil {
		return nil, nil, err
	}
	if err := writePinJournal(path, pins); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("clips: pins journal: %w", err)
	}
	return &pinJournal{path: path, f: f}, pins, nil
}

// readPinJournal replays a journal; a missing one holds no pins.
func readPinJournal(path string, log *slog.Logger) (map[string]Pin, error) {
	pins := map[string]Pin{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pins, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clips: pins journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l journalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			log.Warn("pins journal: skipping a line that does not parse (a write torn by a crash)", "path", path, "line", n, "err", err)
			continue
		}
		switch {
		case l.Op == "pin" && l.Pin != nil && l.Pin.ID != "":
			pins[l.Pin.ID] = *l.Pin
		case l.Op == "unpin":
			delete(pins, l.ID)
		default:
			log.Warn("pins journal: skipping an unknown line", "path", path, "line", n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("clips: pins journal %s: %w", path, err)
	}
	return pins, nil
}

// writePinJournal replaces the journal with one line per pin, atomically.
func writePinJournal(path string, pins map[string]Pin) error {
	var b []byte
	for _, id := range sortedKeys(pins) {
		p := pins[id]
		line, err := json.Marshal(journalLine{Op: "pin", Pin: &p})
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return fmt.Errorf("clips: pins journal: %w", err)
	}
	return nil
}

// put records a pin.
func (j *pinJournal) put(p Pin) error { return j.append(journalLine{Op: "pin", Pin: &p}) }

// remove records a release.
func (j *pinJournal) remove(id string) error { return j.append(journalLine{Op: "unpin", ID: id}) }

func (j *pinJournal) append(l journalLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("clips: pins journal: %w", err)
	}
	if err := fdatasync(j.f); err != nil {
		return fmt.Errorf("clips: pins journal: %w", err)
	}
	return nil
}

func (j *pinJournal) close() error { return j.f.Close() }
