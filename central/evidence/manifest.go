// Package evidence builds and verifies the evidence bundles that central
// hands to police liaisons: one zip per request holding the original
// video of each camera as MP4 (the edge's bitstream, never re-encoded), a
// JPEG contact sheet per camera, the chain of custody (a slice of the
// audit log), a README in Chinese and English, manifest.json describing
// all of it with the SHA-256 and size of every other file, and
// manifest.sig, a detached Ed25519 signature over manifest.json's exact
// bytes by central's evidence key.
//
// Build streams the video into the zip (one pass: copy, CRC-32 and
// SHA-256 together; nothing of the video is held in memory). Verify
// needs only the bundle and the public key. The zip is canonical: its
// bytes are a function of the members and the manifest, so Verify
// rebuilds the structure and any changed byte, in a member or in the
// zip's own headers, fails verification with the file named.
package evidence

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// Format names this manifest layout.
const Format = "vigil-evidence/1"

// Fixed member names.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
	CustodyName   = "custody.jsonl"
	ReadmeName    = "README.txt"
)

// MaxLead bounds how far the actual range may start before the requested
// one (the export starts at the keyframe before the requested start) and
// end after it.
const MaxLead = 60 * time.Second

// Range is a UTC time range [Start, End).
type Range struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Duration is End − Start.
func (r Range) Duration() time.Duration { return r.End.Sub(r.Start) }

// Clock sources of an edge's timestamps.
const (
	ClockRTCP    = "rtcp"    // the camera's own clock via RTCP sender reports
	ClockArrival = "arrival" // the edge's clock when the video arrived
	ClockNTP     = "ntp"     // the edge's NTP-disciplined clock
)

// Manifest is manifest.json.
type Manifest struct {
	Format     string      `json:"format"`
	BundleID   string      `json:"bundle_id"`
	CaseNumber string      `json:"case_number"`
	Requester  audit.Actor `json:"requester"`
	Reason     string      `json:"reason"`
	ExportedAt time.Time   `json:"exported_at"`
	Software   string      `json:"software"`
	// SigningKey is the public key that signed manifest.sig
	// ("ed25519:<base64>") and its SHA-256 fingerprint.
	SigningKey            string                     `json:"signing_key"`
	SigningKeyFingerprint string                     `json:"signing_key_sha256"`
	Cameras               []CameraManifest           `json:"cameras"`
	Custody               CustodyManifest            `json:"custody"`
	Files                 []FileEntry                `json:"files"` // every member but manifest.json and manifest.sig, in zip order
	Extra                 map[string]json.RawMessage `json:"extra,omitempty"`
}

// CameraManifest is one camera's part of the bundle. A camera that
// changed codec or picture size within the range (reconfigured or
// replaced) has one entry per part, one MP4 each, in time order: an MP4
// track holds one codec at one size.
type CameraManifest struct {
	SiteID       string `json:"site_id"`
	SiteName     string `json:"site_name"`
	EntranceID   string `json:"entrance_id"`
	EntranceName string `json:"entrance_name"`
	CameraID     string `json:"camera_id"`
	CameraName   string `json:"camera_name"`
	EdgeID       string `json:"edge_id"`

	Requested Range `json:"requested"`
	Actual    Range `json:"actual"` // of the video in the file: first frame to the end of the last
	// DurationSeconds is Actual's length; the MP4's own duration is
	// within one frame of it.
	DurationSeconds float64 `json:"duration_seconds"`
	Frames          int     `json:"frames"`
	// ClockOffsetMS is the edge clock's offset to central's (edge − central)
	// when the video was recorded; ClockSource says where the video's
	// times came from (rtcp, arrival, ntp).
	ClockOffsetMS float64 `json:"clock_offset_ms"`
	ClockSource   string  `json:"clock_source"`
	Codec         string  `json:"codec"`
	Width         int     `json:"width"`
	Height        int     `json:"height"`

	Video        string `json:"video"`         // member name of the MP4
	ContactSheet string `json:"contact_sheet"` // member name of the JPEG; empty if there is none
	// ContactSheetNote says why there is no contact sheet (empty if there is).
	ContactSheetNote string `json:"contact_sheet_note,omitempty"`

	Alerts     []json.RawMessage `json:"alerts"`      // linked alerts with their workflow history
	GateEvents []json.RawMessage `json:"gate_events"` // linked gate events
}

// CustodyManifest describes custody.jsonl, a slice of central's audit log.
type CustodyManifest struct {
	File     string `json:"file"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Entries  int    `json:"entries"`
	Prev     string `json:"prev"` // the hash the first entry links to (the log's entry first_seq−1)
	Head     string `json:"head"` // the last entry's hash
}

// FileEntry is one member's size and SHA-256.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

var (
	hexSHA256  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	memberName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
)

// safeName turns an ID into a member file name component.
func safeName(id string) string {
	var b strings.Builder
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "._-")
	if s == "" {
		s = "camera"
	}
	return s
}

// check reports the first inconsistency inside the manifest itself,
// naming the field.
func (m *Manifest) check() error {
	switch {
	case m.Format != Format:
		return badManifest("format %q, want %q", m.Format, Format)
	case strings.TrimSpace(m.CaseNumber) == "":
		return badManifest("no case number")
	case m.Requester.User == "":
		return badManifest("no requester")
	case m.ExportedAt.IsZero():
		return badManifest("no export time")
	case len(m.Cameras) == 0:
		return badManifest("no cameras")
	}
	files, err := m.checkFiles()
	if err != nil {
		return err
	}
	if m.Custody.File != CustodyName {
		return badManifest("custody.file %q", m.Custody.File)
	}
	if m.Custody.Entries == 0 || m.Custody.LastSeq < m.Custody.FirstSeq || uint64(m.Custody.Entries) != m.Custody.LastSeq-m.Custody.FirstSeq+1 {
		return badManifest("custody: %d entries for seq %d..%d", m.Custody.Entries, m.Custody.FirstSeq, m.Custody.LastSeq)
	}
	ends := map[string]time.Time{} // the end of each edge's camera's part before
	for i, c := range m.Cameras {
		name := fmt.Sprintf("cameras[%d] (%s)", i, c.CameraID)
		cam := c.EdgeID + "\x00" + c.CameraID
		end, seen := ends[cam]
		if seen && c.CameraID != "" && c.Actual.Start.Before(end) {
			return badManifest("%s: the camera is listed again with video from %s, before the end of its part before (%s): parts follow one another", name, ts(c.Actual.Start), ts(end))
		}
		if err := m.checkCamera(name, c, files); err != nil {
			return err
		}
		ends[cam] = c.Actual.End
	}
	return nil
}

// badManifest is an inconsistency inside the manifest.
func badManifest(f string, a ...any) error {
	return fmt.Errorf("%s: %s", ManifestName, fmt.Sprintf(f, a...))
}

// checkFiles checks the file list's names, sizes and hashes, and that
// the README and the chain of custody are in it; it returns the list by
// name.
func (m *Manifest) checkFiles() (map[string]FileEntry, error) {
	files := map[string]FileEntry{}
	for _, f := range m.Files {
		switch {
		case !memberName.MatchString(f.Name) || f.Name == ManifestName || f.Name == SignatureName:
			return nil, badManifest("file name %q not allowed", f.Name)
		case files[f.Name].Name != "":
			return nil, badManifest("file %s listed twice", f.Name)
		case f.Size < 0 || !hexSHA256.MatchString(f.SHA256):
			return nil, badManifest("file %s: bad size or sha256", f.Name)
		}
		files[f.Name] = f
	}
	for _, need := range []string{ReadmeName, CustodyName} {
		if _, ok := files[need]; !ok {
			return nil, badManifest("%s is not listed", need)
		}
	}
	return files, nil
}

// checkCamera checks one camera's entry (called name in errors): its
// ranges, video facts and members, which must be in files.
func (m *Manifest) checkCamera(name string, c CameraManifest, files map[string]FileEntry) error {
	req, act := c.Requested, c.Actual
	switch {
	case c.CameraID == "":
		return badManifest("%s: no camera ID", name)
	case !req.Start.Before(req.End):
		return badManifest("%s: requested range %s..%s is not ordered", name, ts(req.Start), ts(req.End))
	case !act.Start.Before(act.End):
		return badManifest("%s: actual range %s..%s is not ordered", name, ts(act.Start), ts(act.End))
	case act.Start.Before(req.Start.Add(-MaxLead)) || !act.Start.Before(req.End):
		return badManifest("%s: actual start %s is not within %v of the requested range %s..%s", name, ts(act.Start), MaxLead, ts(req.Start), ts(req.End))
	case act.End.After(req.End.Add(MaxLead)) || !act.End.After(req.Start.Add(-MaxLead)):
		return badManifest("%s: actual end %s is not within %v of the requested range %s..%s", name, ts(act.End), MaxLead, ts(req.Start), ts(req.End))
	case act.End.After(m.ExportedAt.Add(MaxLead)):
		return badManifest("%s: the video ends at %s, after the export at %s", name, ts(act.End), ts(m.ExportedAt))
	case absDur(time.Duration(c.DurationSeconds*float64(time.Second))-act.Duration()) > time.Millisecond:
		return badManifest("%s: duration_seconds %.6f is not the actual range's %.6f", name, c.DurationSeconds, act.Duration().Seconds())
	case c.Frames <= 0 || c.Width <= 0 || c.Height <= 0 || c.Codec == "":
		return badManifest("%s: frames, size or codec missing", name)
	case c.ClockSource != ClockRTCP && c.ClockSource != ClockArrival && c.ClockSource != ClockNTP:
		return badManifest("%s: clock_source %q (rtcp, arrival or ntp)", name, c.ClockSource)
	case path.Dir(c.Video) != "video" || path.Ext(c.Video) != ".mp4":
		return badManifest("%s: video %q is not video/*.mp4", name, c.Video)
	case c.ContactSheet == "" && strings.TrimSpace(c.ContactSheetNote) == "":
		return badManifest("%s: no contact sheet and no contact_sheet_note saying why", name)
	case c.ContactSheet != "" && (path.Dir(c.ContactSheet) != "contact" || path.Ext(c.ContactSheet) != ".jpg"):
		return badManifest("%s: contact sheet %q is not contact/*.jpg", name, c.ContactSheet)
	case c.ContactSheet != "" && c.ContactSheetNote != "":
		return badManifest("%s: contact sheet %s and a contact_sheet_note saying there is none", name, c.ContactSheet)
	}
	for _, f := range []string{c.Video, c.ContactSheet} {
		if f == "" {
			continue
		}
		if _, ok := files[f]; !ok {
			return badManifest("%s: %s is not listed in files", name, f)
		}
	}
	return nil
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
