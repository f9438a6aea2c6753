package clips

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Pin holds a camera's video between From and To until Unpin or Expires.
// Retention never evicts a chunk that overlaps a pin.
type Pin struct {
	ID      string    `json:"id"` // e.g. the alert ID
	Camera  string    `json:"camera"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// pinBook is the store's pins and their journal (pins.jsonl): pins made
// by callers (queued in memory while the disk is too full for Badger),
// and the leases exports and thumbnails hold while they read. Retention
// asks it what is held. Its maps are guarded by Store.mu, the index lock,
// because queueing a pin must not race the store opening.
type pinBook struct {
	s        *Store
	pins     map[string]Pin
	leases   map[uint64]lease
	leaseSeq uint64
	pinVer   uint64 // bumped when pins or leases change
	pinCap   int64
	// queued holds the pins made while the store waits for space.
	queued map[string]Pin
	// journal is open while the index is (set under Store.mu).
	journal *pinJournal
}

func newPinBook(s *Store) *pinBook {
	return &pinBook{s: s, pins: map[string]Pin{}, leases: map[uint64]lease{}, queued: map[string]Pin{}}
}

// lease is an export's temporary, in-memory pin: what is being read is
// not evicted under the reader.
type lease struct {
	cam      string
	from, to int64
}

// Pin pins the camera's pre-roll before at and post-roll after it (per
// camera, 10 s and 30 s by default). Pinning an existing ID again
// replaces its range.
func (pb *pinBook) Pin(id, camera string, at time.Time, reason string) (Pin, error) {
	from, to, err := pb.PinWindow(camera, at)
	if err != nil {
		return Pin{}, err
	}
	return pb.PinRange(id, camera, from, to, reason)
}

// PinWindow is the range Pin would pin for an alert at at, without
// pinning it: an alert names its clip before the pin is written.
func (pb *pinBook) PinWindow(camera string, at time.Time) (from, to time.Time, err error) {
	s := pb.s
	var cc CameraConfig
	if s.waitErr() != nil {
		// The cameras are not loaded yet: the configuration is the same.
		if err := validCamera(camera); err != nil {
			return time.Time{}, time.Time{}, err
		}
		cc = s.cfg.camera(camera)
	} else {
		r, err := s.recorder(camera)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		cc = r.cfg
	}
	return at.Add(-cc.PreRoll), at.Add(cc.PostRoll), nil
}

// PinRange pins [from, to] of a camera. The pin is fsynced before it
// returns. It fails with ErrPinsFull while pinned video fills its share of
// the disk: the store refuses evidence rather than delete other evidence.
//
// While the disk is too full for the store to open, the pin is queued in
// memory (Pins lists it) and written as soon as the store opens; it is
// lost only if the process ends before that.
func (pb *pinBook) PinRange(id, camera string, from, to time.Time, reason string) (Pin, error) {
	s := pb.s
	if id == "" {
		return Pin{}, errors.New("clips: pin: empty ID")
	}
	if !to.After(from) {
		return Pin{}, fmt.Errorf("clips: pin %s: empty range %v..%v", id, from, to)
	}
	if queued, ok, err := pb.queuePin(id, camera, from, to, reason); ok {
		return queued, err
	}
	if _, err := s.recorder(camera); err != nil {
		return Pin{}, err
	}
	if err := s.acquire(); err != nil {
		return Pin{}, err
	}
	defer s.readers.Done()
	full := s.hasCondition(CondPinsFull)
	s.mu.RLock()
	old, exists := pb.pins[id]
	full = full || (pb.pinCap > 0 && s.pinnedTotal() >= pb.pinCap)
	s.mu.RUnlock()
	if full && !exists {
		return Pin{}, ErrPinsFull
	}
	now := s.cfg.Clock().UTC()
	p := Pin{ID: id, Camera: camera, From: from.UTC(), To: to.UTC(), Reason: reason, Created: now, Expires: now.Add(s.cfg.EvidenceRetention)}
	if exists {
		p.Created = old.Created
	}
	if err := pb.putPin(p); err != nil {
		return Pin{}, err
	}
	s.log.Info("video pinned", "pin", id, "camera", camera, "from", p.From, "to", p.To, "reason", reason)
	return p, nil
}

// queuePin queues a pin while the store waits for space; ok is false once
// Badger is open (the caller pins as usual).
func (pb *pinBook) queuePin(id, camera string, from, to time.Time, reason string) (p Pin, ok bool, err error) {
	s := pb.s
	if err := validCamera(camera); err != nil {
		return Pin{}, true, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting == nil {
		return Pin{}, false, nil
	}
	if s.closed {
		return Pin{}, true, ErrClosed
	}
	now := s.cfg.Clock().UTC()
	p = Pin{ID: id, Camera: camera, From: from.UTC(), To: to.UTC(), Reason: reason, Created: now, Expires: now.Add(s.cfg.EvidenceRetention)}
	if old, exists := pb.queued[id]; exists {
		p.Created = old.Created
	}
	pb.queued[id] = p
	s.log.Warn("video pin queued until the disk has room for the clip store", "pin", id, "camera", camera, "from", p.From, "to", p.To, "reason", reason)
	return p, true, nil
}

// applyQueuedPins writes the pins queued while waiting for space. The
// video they cover was not recorded, but the pin keeps whatever is
// recorded from now on inside its range, as a pin made on time would.
func (pb *pinBook) applyQueuedPins() {
	s := pb.s
	s.mu.Lock()
	q := pb.queued
	pb.queued = map[string]Pin{}
	s.mu.Unlock()
	for _, p := range q {
		_, err := s.Recorder(p.Camera)
		if err == nil {
			err = pb.putPin(p)
		}
		if err != nil {
			s.log.Error("QUEUED PIN NOT WRITTEN", "pin", p.ID, "camera", p.Camera, "err", err)
			continue
		}
		s.log.Info("queued video pin written", "pin", p.ID, "camera", p.Camera, "from", p.From, "to", p.To, "reason", p.Reason)
	}
}

// putPin writes a pin durably and adopts it.
func (pb *pinBook) putPin(p Pin) error {
	s := pb.s
	if err := pb.journal.put(p); err != nil {
		return fmt.Errorf("clips: pin %s: %w", p.ID, err)
	}
	s.mu.Lock()
	pb.pins[p.ID] = p
	pb.pinVer++
	s.mu.Unlock()
	return nil
}

// Unpin releases a pin, e.g. once central confirms it holds the clip. The
// video stays until retention needs the space. Unknown IDs are ignored,
// so a repeated release is harmless.
func (pb *pinBook) Unpin(id string) error {
	s := pb.s
	s.mu.Lock()
	_, queued := pb.queued[id]
	delete(pb.queued, id)
	waiting := s.waiting
	s.mu.Unlock()
	if waiting != nil {
		if queued {
			return nil
		}
		return fmt.Errorf("clips: unpin %s: %w", id, waiting)
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.readers.Done()
	s.mu.RLock()
	_, ok := pb.pins[id]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	if err := pb.journal.remove(id); err != nil {
		return fmt.Errorf("clips: unpin %s: %w", id, err)
	}
	s.mu.Lock()
	delete(pb.pins, id)
	pb.pinVer++
	s.mu.Unlock()
	s.log.Info("video unpinned", "pin", id)
	return nil
}

// Pins returns the current pins, oldest first.
func (pb *pinBook) Pins() []Pin {
	pb.s.mu.RLock()
	out := make([]Pin, 0, len(pb.pins))
	for _, p := range pb.pins {
		if _, ok := pb.queued[p.ID]; !ok {
			out = append(out, p)
		}
	}
	for _, p := range pb.queued {
		out = append(out, p)
	}
	pb.s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out
}

// lease protects [from, to] of a camera from eviction until release.
func (pb *pinBook) lease(camera string, from, to int64) (release func()) {
	mu := &pb.s.mu
	mu.Lock()
	pb.leaseSeq++
	id := pb.leaseSeq
	pb.leases[id] = lease{cam: camera, from: from, to: to}
	pb.pinVer++
	mu.Unlock()
	return func() {
		mu.Lock()
		delete(pb.leases, id)
		pb.pinVer++
		mu.Unlock()
	}
}

// expire releases pins past their evidence retention. The writer calls
// it from its maintenance.
func (pb *pinBook) expire() {
	s := pb.s
	now := s.cfg.Clock()
	for _, p := range pb.Pins() {
		if !p.Expires.After(now) {
			if err := pb.Unpin(p.ID); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Error("releasing an expired pin", "pin", p.ID, "err", err)
			}
		}
	}
}

// pinnedRanges returns a camera's pins (not leases) as ranges, unsorted.
func (pb *pinBook) pinnedRanges(camera string) []interval {
	pb.s.mu.RLock()
	defer pb.s.mu.RUnlock()
	var iv []interval
	for _, p := range pb.pins {
		if p.Camera == camera {
			iv = append(iv, interval{p.From.UnixNano(), p.To.UnixNano()})
		}
	}
	return iv
}

// interval is a closed range of Unix nanoseconds.
type interval struct{ from, to int64 }

// heldRanges returns the merged ranges of a camera that pins and leases
// hold, sorted. Caller holds Store.mu.
func (pb *pinBook) heldRanges(camera string) []interval {
	var iv []interval
	for _, p := range pb.pins {
		if p.Camera == camera {
			iv = append(iv, interval{p.From.UnixNano(), p.To.UnixNano()})
		}
	}
	for _, l := range pb.leases {
		if l.cam == camera {
			iv = append(iv, interval{l.from, l.to})
		}
	}
	return mergeIntervals(iv)
}

func mergeIntervals(iv []interval) []interval {
	sort.Slice(iv, func(i, j int) bool { return iv[i].from < iv[j].from })
	out := iv[:0]
	for _, v := range iv {
		if n := len(out); n > 0 && v.from <= out[n-1].to {
			out[n-1].to = max(out[n-1].to, v.to)
			continue
		}
		out = append(out, v)
	}
	return out
}

// overlaps reports whether [from, to] meets any of the sorted ranges.
func overlaps(held []interval, from, to int64) bool {
	i := sort.Search(len(held), func(i int) bool { return held[i].to >= from })
	return i < len(held) && held[i].from <= to
}
