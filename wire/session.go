package wire

import (
	"encoding/binary"
	"time"
)

// NonceBytes is the size of central's challenge.
const NonceBytes = 32

// Challenge is central's first frame: a fresh random nonce the edge must
// sign, so a hello recorded on one connection is worthless on the next.
type Challenge struct {
	Nonce []byte    `json:"nonce"`
	Time  time.Time `json:"time"` // central's UTC clock
}

// Hello opens a session from an edge. An enrolled edge signs it with its
// Ed25519 key; an edge still on a bearer token (deprecated) leaves
// Signature empty.
type Hello struct {
	EdgeID         string    `json:"edge_id"`
	SiteID         string    `json:"site_id"`
	Software       string    `json:"software"`
	ConfigRevision string    `json:"config_revision,omitempty"`
	Time           time.Time `json:"time"` // the edge's UTC clock when it said hello
	// ClockOffsetMS is the edge's last measured offset to central's clock
	// (central minus edge), so central can show it before measuring anew.
	ClockOffsetMS int64  `json:"clock_offset_ms"`
	Nonce         []byte `json:"nonce"`     // echoes the challenge
	Signature     []byte `json:"signature"` // Ed25519 over SigningBytes
}

// helloContext separates hello signatures from any other use of the key.
const helloContext = "vigil/edge-hello/v2"

// SigningBytes is what the edge signs and central verifies: every field of
// the hello except the signature, each length-prefixed so no two different
// hellos share an encoding.
func (h *Hello) SigningBytes() []byte {
	var b []byte
	field := func(p []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	field([]byte(helloContext))
	field(h.Nonce)
	field([]byte(h.EdgeID))
	field([]byte(h.SiteID))
	field([]byte(h.Software))
	field([]byte(h.ConfigRevision))
	field([]byte(h.Time.UTC().Format(time.RFC3339Nano)))
	b = binary.BigEndian.AppendUint64(b, uint64(h.ClockOffsetMS))
	return b
}

// Welcome answers a valid hello.
type Welcome struct {
	Time   time.Time `json:"time"` // central's UTC clock, so the edge can measure its offset
	SiteID string    `json:"site_id,omitempty"`
	// AccessKey is central's Ed25519 public key for access tokens and
	// audit checkpoints; the edge keeps the latest it was told.
	AccessKey []byte `json:"access_key,omitempty"`
}

// CameraStatus is one camera's health in a heartbeat.
type CameraStatus struct {
	ID string `json:"id"`
	// Name is the edge's name for the camera (edge.yaml, the setup page),
	// its ID when it has none. The edge owns its devices' names: central
	// shows this one and keeps the latest per edge. Empty from edges that
	// predate it.
	Name      string    `json:"name,omitempty"`
	Online    bool      `json:"online"`
	LastFrame time.Time `json:"last_frame,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// GateStatus is one gate or sensor's health in a heartbeat.
type GateStatus struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"` // the edge's name for it, as CameraStatus.Name
	State    string    `json:"state"`          // "open", "closed", "held_open", "alarm", ...
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// DiskStatus is the space left where the edge keeps its data.
type DiskStatus struct {
	Path       string `json:"path"`
	TotalBytes uint64 `json:"total_bytes"`
	FreeBytes  uint64 `json:"free_bytes"`
}

// Heartbeat reports an edge's health. It lists every camera and gate the
// edge runs, with the edge's names for them: the uplink sends one right
// after the welcome and again whenever a config revision is applied, so
// central learns renamed devices at once.
type Heartbeat struct {
	Time    time.Time      `json:"time"`
	Outbox  int            `json:"outbox"` // items written but not yet acknowledged
	Cameras []CameraStatus `json:"cameras"`
	Gates   []GateStatus   `json:"gates,omitempty"`
	// Sensors are the safety sensors' states and last readings (sensors.go).
	Sensors []SensorStatus `json:"sensors,omitempty"`
	// OutboxBytes and OutboxDropped describe the durable queue: its size
	// and how many green/yellow items its byte bound has discarded.
	OutboxBytes   int64       `json:"outbox_bytes"`
	OutboxDropped uint64      `json:"outbox_dropped"`
	Disk          *DiskStatus `json:"disk,omitempty"`
	// CPUPercent is the box's CPU use since the previous heartbeat, 0..100
	// of all cores; negative when unknown.
	CPUPercent float64 `json:"cpu_percent"`
	// ConfigRevision is the config revision running now: it changes
	// without a reconnect when a revision is applied live.
	ConfigRevision string `json:"config_revision,omitempty"`
	// GB28181 is the edge's registration with a GB/T 28181 police video
	// platform; nil when the edge has none configured.
	GB28181 *GBStatus `json:"gb28181,omitempty"`
}

// GBStatus is an edge's registration with its GB/T 28181 platform, as the
// edge's device user agent sees it (gb28181/device.Status).
type GBStatus struct {
	// State is online, registering or offline.
	State    string `json:"state"`
	Online   bool   `json:"online"`
	DeviceID string `json:"device_id"`
	Server   string `json:"server"` // the platform's SIP address
	// RegisteredSince is when the current registration began.
	RegisteredSince time.Time `json:"registered_since,omitzero"`
	// LastError says why the edge is, or last was, not registered.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// ClockOffsetMS is the platform's clock (its Date header) minus the
	// edge's, sampled at ClockSampledAt (zero: the platform sent no Date);
	// recorded for comparison, never applied.
	ClockOffsetMS  int64     `json:"clock_offset_ms"`
	ClockSampledAt time.Time `json:"clock_sampled_at,omitzero"`
	// PendingAlarms wait for the platform (kept while it is unreachable);
	// DroppedAlarms were never delivered (too many or too old).
	PendingAlarms int    `json:"pending_alarms"`
	DroppedAlarms uint64 `json:"dropped_alarms"`
}
