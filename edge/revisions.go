package edge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
)

// Revisions keeps numbered copies of edge.yaml in <data_dir>/config:
// r1.yaml, r2.yaml, … Each is written whole (temporary file, fsync,
// rename) and never changed. The running revision is the one whose bytes
// are the config file's, so a crash between two steps of Apply leaves
// either the old revision running or the new one, never a mix.
type Revisions struct {
	dir string
}

// Revision describes one stored revision.
type Revision struct {
	Number int       `json:"number"`
	Name   string    `json:"name"` // "r7": what hello reports to central
	SHA256 string    `json:"sha256"`
	Time   time.Time `json:"time"`
}

// OpenRevisions uses dataDir/config.
func OpenRevisions(dataDir string) *Revisions {
	return &Revisions{dir: filepath.Join(dataDir, "config")}
}

var revFile = regexp.MustCompile(`^r([0-9]+)\.yaml$`)

// List returns the stored revisions, oldest first.
func (r *Revisions) List() ([]Revision, error) {
	ents, err := os.ReadDir(r.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config revisions: %w", err)
	}
	var out []Revision
	for _, e := range ents {
		m := revFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		num, _ := strconv.Atoi(m[1])
		b, err := os.ReadFile(filepath.Join(r.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("config revisions: %w", err)
		}
		info, _ := e.Info()
		rev := Revision{Number: num, Name: "r" + m[1], SHA256: hash(b)}
		if info != nil {
			rev.Time = info.ModTime().UTC()
		}
		out = append(out, rev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// Get returns a revision's bytes.
func (r *Revisions) Get(number int) ([]byte, error) {
	return os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("r%d.yaml", number)))
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Current finds the revision whose bytes are the config file's.
func (r *Revisions) Current(configPath string) (Revision, bool, error) {
	b, err := os.ReadFile(configPath)
	if err != nil {
		return Revision{}, false, fmt.Errorf("config: %w", err)
	}
	revs, err := r.List()
	if err != nil {
		return Revision{}, false, err
	}
	h := hash(b)
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].SHA256 == h {
			return revs[i], true, nil
		}
	}
	return Revision{}, false, nil
}

// Adopt makes the config file the box starts with a revision: the stored
// one with the same bytes, else a new one (an installer edited the file
// by hand).
func (r *Revisions) Adopt(configPath string) (Revision, error) {
	cur, ok, err := r.Current(configPath)
	if err != nil || ok {
		return cur, err
	}
	b, err := os.ReadFile(configPath)
	if err != nil {
		return Revision{}, fmt.Errorf("config: %w", err)
	}
	return r.store(b)
}

func (r *Revisions) store(b []byte) (Revision, error) {
	if err := os.MkdirAll(r.dir, 0o750); err != nil {
		return Revision{}, fmt.Errorf("config revisions: %w", err)
	}
	revs, err := r.List()
	if err != nil {
		return Revision{}, err
	}
	num := 1
	if len(revs) > 0 {
		num = revs[len(revs)-1].Number + 1
	}
	name := fmt.Sprintf("r%d", num)
	if err := writeAtomic(filepath.Join(r.dir, name+".yaml"), b, 0o600); err != nil {
		return Revision{}, fmt.Errorf("config revisions: %w", err)
	}
	return Revision{Number: num, Name: name, SHA256: hash(b), Time: time.Now().UTC()}, nil
}

// ParseConfig validates a whole edge.yaml as the edge does at start
// (strict YAML, every field, the token resolved); name is used in the
// file:line messages.
func ParseConfig(name string, data []byte) (conf.Config, error) {
	var c conf.Config
	if err := config.Parse(name, data, &c); err != nil {
		return c, err
	}
	if err := c.ResolveToken(); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// ErrRevisionRefused wraps every reason a revision is not applied.
var ErrRevisionRefused = errors.New("config revision refused")

// Apply validates data fully against running (the config in force) and
// only then stores it as the next revision and replaces the config file
// at configPath, each step atomic. A refused revision changes nothing;
// the error says why (file:line for YAML and field problems). The new
// revision takes effect when the edge restarts.
func (r *Revisions) Apply(configPath string, running conf.Config, data []byte) (Revision, error) {
	next, err := ParseConfig("new revision", data)
	if err != nil {
		return Revision{}, fmt.Errorf("%w: %w", ErrRevisionRefused, err)
	}
	switch {
	case next.EdgeID != running.EdgeID:
		return Revision{}, fmt.Errorf("%w: edge_id cannot change from %q to %q by a revision (enrol the box again)", ErrRevisionRefused, running.EdgeID, next.EdgeID)
	case filepath.Clean(next.DataDir) != filepath.Clean(running.DataDir):
		return Revision{}, fmt.Errorf("%w: data_dir cannot change by a revision (it holds the revisions, outbox and recordings)", ErrRevisionRefused)
	}
	if cur, err := os.ReadFile(configPath); err == nil && bytes.Equal(cur, data) {
		if rev, ok, err := r.Current(configPath); err == nil && ok {
			return rev, nil // already running
		}
	}
	// Make sure the running file is itself a revision, so it can be
	// rolled back to.
	if _, err := r.Adopt(configPath); err != nil {
		return Revision{}, err
	}
	rev, err := r.store(data)
	if err != nil {
		return Revision{}, err
	}
	if err := writeAtomic(configPath, data, 0o600); err != nil {
		return Revision{}, fmt.Errorf("writing %s: %w", configPath, err)
	}
	return rev, nil
}

// writeAtomic replaces path with b: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
