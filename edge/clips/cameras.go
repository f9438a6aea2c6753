package clips

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/streams"
)

// catalog is the store's cameras: their registration (a name → ID key in
// Badger) and their recorders, by name and by ID. Its maps are guarded by
// Store.mu, the index lock, as are the recorders' bucket indexes.
type catalog struct {
	s      *Store
	cams   map[string]*Recorder
	byID   map[uint32]*Recorder
	nextID uint32
	regMu  sync.Mutex // serialises camera registration
}

func newCatalog(s *Store) *catalog {
	return &catalog{s: s, cams: map[string]*Recorder{}, byID: map[uint32]*Recorder{}, nextID: 1}
}

// addRecorder creates the in-memory state of a camera. Caller holds
// Store.mu or is Open.
func (cat *catalog) addRecorder(name string, id uint32) *Recorder {
	s := cat.s
	r := &Recorder{s: s, name: name, id: id, cfg: s.cfg.camera(name), m: s.m.camera(name), waitReason: dropNoKeyframe}
	cat.cams[name] = r
	cat.byID[id] = r
	return r
}

// Recorder returns the camera's recorder, registering the camera on
// first use (one small synchronous write).
func (cat *catalog) Recorder(camera string) (*Recorder, error) {
	s := cat.s
	s.mu.RLock()
	r, ok := cat.cams[camera]
	closed := s.closed
	s.mu.RUnlock()
	if ok {
		return r, nil
	}
	if closed {
		return nil, ErrClosed
	}
	if err := validCamera(camera); err != nil {
		return nil, err
	}
	if err := s.waitErr(); err != nil {
		return nil, err
	}
	// Registration writes to Badger, which may wait for an eviction: do
	// it outside s.mu so that other cameras' Writes never wait for it.
	cat.regMu.Lock()
	defer cat.regMu.Unlock()
	s.mu.RLock()
	r, ok = cat.cams[camera]
	id := cat.nextID
	s.mu.RUnlock()
	if ok {
		return r, nil
	}
	s.dropMu.RLock()
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(nameKey(camera), binary.BigEndian.AppendUint32(nil, id))
	})
	s.dropMu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("clips: registering camera %q: %w", camera, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cat.nextID++
	return cat.addRecorder(camera, id), nil
}

// Write records an access unit of camera: Recorder(camera).Write(au). It
// suits a callback such as camera.Parent.OnAccessUnit; errors (a closed
// store, an invalid ID) drop the unit.
func (cat *catalog) Write(camera string, au streams.AccessUnit) {
	s := cat.s
	r, err := cat.Recorder(camera)
	if errors.Is(err, ErrDiskFull) && validCamera(camera) == nil {
		// Waiting for space to open: the unit is lost to the full disk.
		if avccSize(au.NALUs) > 0 {
			s.m.in.WithLabelValues(camera).Inc()
			s.m.dropped.WithLabelValues(camera, dropDiskFull).Inc()
		}
		return
	}
	if err != nil {
		return
	}
	r.Write(au)
}

func validCamera(camera string) error {
	if camera == "" || len(camera) > 200 {
		return fmt.Errorf("clips: camera ID %q: must be 1 to 200 bytes", camera)
	}
	return nil
}

// recorder finds a known camera. While the store waits for space it
// answers why: the cameras are not loaded yet.
func (cat *catalog) recorder(camera string) (*Recorder, error) {
	s := cat.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.waiting != nil {
		return nil, s.waiting
	}
	r, ok := cat.cams[camera]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCamera, camera)
	}
	return r, nil
}

// Cameras lists the known cameras, sorted.
func (cat *catalog) Cameras() []string {
	cat.s.mu.RLock()
	defer cat.s.mu.RUnlock()
	out := make([]string, 0, len(cat.cams))
	for n := range cat.cams {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// recorders is a snapshot of the cameras, in ID order.
func (cat *catalog) recorders() []*Recorder {
	cat.s.mu.RLock()
	defer cat.s.mu.RUnlock()
	out := make([]*Recorder, 0, len(cat.byID))
	for _, r := range cat.byID {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// pinnedTotal sums the cameras' pinned bytes. Caller holds Store.mu.
func (cat *catalog) pinnedTotal() int64 {
	var n int64
	for _, r := range cat.cams {
		n += r.pinned
	}
	return n
}
