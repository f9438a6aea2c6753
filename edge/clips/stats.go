package clips

import (
	"maps"
	"slices"
	"time"
)

// CameraStats is one camera's share of the store.
type CameraStats struct {
	Camera      string    `json:"camera"`
	Bytes       int64     `json:"bytes"`
	PinnedBytes int64     `json:"pinned_bytes"`
	Oldest      time.Time `json:"oldest,omitzero"`
	Newest      time.Time `json:"newest,omitzero"`
	Chunks      int64     `json:"chunks"`
	Pending     int       `json:"pending_bytes"`
}

// Stats is the store at a glance.
type Stats struct {
	Cameras     []CameraStats `json:"cameras"`
	Bytes       int64         `json:"bytes"`
	PinnedBytes int64         `json:"pinned_bytes"`
	Pins        int           `json:"pins"`
	DiskUsed    int64         `json:"disk_used_bytes"`
	DiskFree    int64         `json:"disk_free_bytes"`
	Conditions  []Condition   `json:"conditions"`
}

// Stats reports bytes per camera (as stored, pinned included), the
// oldest and newest video, pinned bytes and the disk. It walks the
// index's directory for its size on disk.
func (s *Store) Stats() Stats {
	var st Stats
	var recs []*Recorder
	s.mu.RLock()
	for _, name := range sortedKeys(s.cams) {
		r := s.cams[name]
		recs = append(recs, r)
		cs := CameraStats{Camera: name, Bytes: r.bytes, PinnedBytes: r.pinned}
		for _, b := range r.buckets {
			cs.Chunks += int64(b.sum.Chunks)
		}
		if n := len(r.buckets); n > 0 {
			cs.Oldest = time.Unix(0, r.buckets[0].sum.First).UTC()
			cs.Newest = time.Unix(0, r.buckets[n-1].sum.Last).UTC()
		}
		st.Cameras = append(st.Cameras, cs)
		st.Bytes += r.bytes
		st.PinnedBytes += r.pinned
	}
	st.Pins = len(s.pins)
	s.mu.RUnlock()
	for i, r := range recs {
		st.Cameras[i].Pending = r.Pending()
	}
	st.Conditions = s.Conditions()
	st.DiskUsed = s.diskUsed()
	st.DiskFree, _ = freeBytes(s.cfg.Dir)
	return st
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
