package central

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/wire"
)

// Device names are declared in one place: the edge. The installer names
// cameras and gates in edge.yaml (the setup page, config revisions); every
// heartbeat lists them with those names (wire.CameraStatus.Name,
// wire.GateStatus.Name). Central keeps the latest list per edge, in memory
// and in its store, so an offline edge's devices are still named after a
// restart, and everything central shows (the site map, the alert places of
// the console, the live wall, search, evidence bundles) takes names from
// here. central.yaml's township only places edges: cameras and gates
// under an entrance there are deprecated and used only as a fallback for a
// device its edge has never named (an edge older than the names in the
// heartbeat).

// Device kinds.
const (
	DeviceCamera = "camera"
	DeviceGate   = "gate"
)

// DeviceName is one device as its edge names it.
type DeviceName struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // DeviceCamera or DeviceGate
	Name string `json:"name"`
}

// EdgeDevices is the latest device list an edge reported.
type EdgeDevices struct {
	Revision string       `json:"revision,omitempty"` // the config revision that named them
	Reported time.Time    `json:"reported"`           // when the list last changed
	Devices  []DeviceName `json:"devices"`
}

// prefixDevices keys each edge's device names in the store.
const prefixDevices = "dn/" // dn/<edge id> → EdgeDevices JSON

// deviceBook holds every edge's reported device names and central.yaml's
// deprecated ones. Reads and writes take mu; the store is written only
// when an edge's list changes.
type deviceBook struct {
	store deviceNameStore
	log   *slog.Logger

	mu     sync.Mutex
	byEdge map[string]EdgeDevices
	// legacy: site ID → kind/id → name, from the cameras and gates under
	// central.yaml's entrances (deprecated).
	legacy map[string]map[string]string
}

func deviceKey(kind, id string) string { return kind + "\x00" + id }

// deviceNameStore keeps each edge's latest device list: central's
// Badger database, or PostgreSQL shared by the replicas (pgdevices.go).
type deviceNameStore interface {
	loadDevices(f func(edgeID string, d EdgeDevices)) error
	putDevices(edgeID string, d EdgeDevices) error
}

// badgerDevices is the device name store in central's Badger database.
type badgerDevices struct{ db *badger.DB }

func (s badgerDevices) loadDevices(f func(string, EdgeDevices)) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixDevices), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d EdgeDevices
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &d) }); err != nil {
				return fmt.Errorf("device names %s: %w", it.Item().Key(), err)
			}
			f(string(it.Item().Key()[len(prefixDevices):]), d)
		}
		return nil
	})
}

// putDevices is not synced: a lost write is repaired by the edge's next
// heartbeat.
func (s badgerDevices) putDevices(edgeID string, d EdgeDevices) error {
	val, _ := json.Marshal(d)
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixDevices+edgeID), val) })
}

// openDeviceBook reads the stored names and takes the deprecated names of
// the township's entrances as the fallback.
func openDeviceBook(store deviceNameStore, tree *siteTree, log *slog.Logger) (*deviceBook, error) {
	b := &deviceBook{store: store, log: log, byEdge: map[string]EdgeDevices{}, legacy: map[string]map[string]string{}}
	err := store.loadDevices(func(id string, d EdgeDevices) { b.byEdge[id] = d })
	if err != nil {
		return nil, fmt.Errorf("central: reading device names: %w", err)
	}
	if tree != nil {
		for id, n := range tree.nodes {
			for _, set := range []struct {
				kind string
				list []DeviceConfig
			}{{DeviceCamera, n.Cameras}, {DeviceGate, n.Gates}} {
				for _, d := range set.list {
					if d.Name == "" {
						continue
					}
					if b.legacy[id] == nil {
						b.legacy[id] = map[string]string{}
					}
					b.legacy[id][deviceKey(set.kind, d.ID)] = d.Name
				}
			}
		}
	}
	return b, nil
}

// report takes the names in an edge's heartbeat. A heartbeat that names
// no device (an edge older than device names) changes nothing; otherwise
// it is the edge's whole list and replaces the one kept, in the store too
// when it differs.
func (b *deviceBook) report(edgeID, revision string, hb *wire.Heartbeat) {
	var devs []DeviceName
	named := false
	for _, c := range hb.Cameras {
		devs = append(devs, DeviceName{ID: c.ID, Kind: DeviceCamera, Name: c.Name})
		named = named || c.Name != ""
	}
	for _, g := range hb.Gates {
		devs = append(devs, DeviceName{ID: g.ID, Kind: DeviceGate, Name: g.Name})
		named = named || g.Name != ""
	}
	if !named {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.byEdge[edgeID]
	if ok && slices.Equal(old.Devices, devs) && (revision == "" || old.Revision == revision) {
		return
	}
	d := EdgeDevices{Revision: revision, Reported: time.Now().UTC(), Devices: devs}
	b.byEdge[edgeID] = d
	if ok && !slices.Equal(old.Devices, devs) {
		b.log.Info("edge renamed or changed its devices", "edge_id", edgeID, "revision", revision, "devices", len(devs))
	}
	// Written while mu is held, so two heartbeats cannot store out of order.
	if err := b.store.putDevices(edgeID, d); err != nil {
		b.log.Warn("device names not stored", "edge_id", edgeID, "err", err)
	}
}

// reloaded takes an edge's list as another replica stored it (found
// false: none stored).
func (b *deviceBook) reloaded(edgeID string, d EdgeDevices, found bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !found {
		delete(b.byEdge, edgeID)
		return
	}
	b.byEdge[edgeID] = d
}

// name is a device's name: its edge's, else central.yaml's deprecated one
// at the edge's entrance, else "".
func (b *deviceBook) name(edgeID, siteID, kind, id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nameLocked(edgeID, siteID, kind, id)
}

func (b *deviceBook) nameLocked(edgeID, siteID, kind, id string) string {
	for _, d := range b.byEdge[edgeID].Devices {
		if d.Kind == kind && d.ID == id && d.Name != "" {
			return d.Name
		}
	}
	return b.legacy[siteID][deviceKey(kind, id)]
}

// devices is the list an edge last reported (nil: none yet).
func (b *deviceBook) devices(edgeID string) EdgeDevices {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.byEdge[edgeID]
	d.Devices = slices.Clone(d.Devices)
	return d
}

// nameStatuses fills in the names of an edge's cameras and gates. Before
// the edge's first heartbeat since central started (st.Cameras and
// st.Gates empty) it lists the devices the edge last reported, offline,
// so an offline edge's devices still show under their names.
func (b *deviceBook) nameStatuses(st *EdgeStatus, heard bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !heard {
		for _, d := range b.byEdge[st.ID].Devices {
			switch d.Kind {
			case DeviceCamera:
				st.Cameras = append(st.Cameras, wire.CameraStatus{ID: d.ID})
			case DeviceGate:
				st.Gates = append(st.Gates, wire.GateStatus{ID: d.ID, State: "unknown"})
			}
		}
	}
	for i := range st.Cameras {
		if n := b.nameLocked(st.ID, st.SiteID, DeviceCamera, st.Cameras[i].ID); n != "" {
			st.Cameras[i].Name = n
		}
	}
	for i := range st.Gates {
		if n := b.nameLocked(st.ID, st.SiteID, DeviceGate, st.Gates[i].ID); n != "" {
			st.Gates[i].Name = n
		}
	}
}

// legacyDeviceFields names the deprecated camera and gate lists of a
// township, for the warning at start.
func legacyDeviceFields(t *TownshipConfig) []string {
	if t == nil {
		return nil
	}
	var out []string
	for vi, v := range t.Villages {
		for zi, z := range v.Zones {
			for ei, e := range z.Entrances {
				f := fmt.Sprintf("township.villages[%d].zones[%d].entrances[%d]", vi, zi, ei)
				if len(e.Cameras) > 0 {
					out = append(out, f+".cameras")
				}
				if len(e.Gates) > 0 {
					out = append(out, f+".gates")
				}
			}
		}
	}
	return out
}
