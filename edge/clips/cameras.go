package clips

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/streams"
)

// addRecorder creates the in-memory state of a camera. Caller holds s.mu
// or is Open.
func (s *Store) addRecorder(name string, id uint32) *Recorder {
	r := &Recorder{s: s, name: name, id: id, cfg: s.cfg.camera(name), m: s.m.camera(name), waitReason: dropNoKeyframe}
	s.cams[name] = r
	s.byID[id] = r
	return r
}

// Recorder returns the camera's recorder, registering the camera on
// first use (one small synchronous write).
func (s *Store) Recorder(camera string) (*Recorder, error) {
	s.mu.RLock()
	r, ok := s.cams[camera]
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
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.mu.RLock()
	r, ok = s.cams[camera]
	id := s.nextID
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
	s.nextID++
	return s.addRecorder(camera, id), nil
}

// Write records an access unit of camera: Recorder(camera).Write(au). It
// suits a callback such as camera.Parent.OnAccessUnit; errors (a closed
// store, an invalid ID) drop the unit.
func (s *Store) Write(camera string, au streams.AccessUnit) {
	r, err := s.Recorder(camera)
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
func (s *Store) recorder(camera string) (*Recorder, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.waiting != nil {
		return nil, s.waiting
	}
	r, ok := s.cams[camera]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCamera, camera)
	}
	return r, nil
}

// Cameras lists the known cameras, sorted.
func (s *Store) Cameras() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.cams))
	for n := range s.cams {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
