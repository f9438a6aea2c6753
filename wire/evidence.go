package wire

import (
	"errors"
	"fmt"
	"time"
)

// Evidence retrieval: central asks an edge what it has recorded, has it
// describe (and pin) the deterministic MP4 export of a range, fetches that
// export in byte ranges, and finally tells it the pins may go.
const (
	// MethodRecordings: spans and gaps of Camera's video in From..To
	// (JSON Recordings).
	MethodRecordings = "recordings"
	// MethodExportInfo: pin Camera's video in From..To for Evidence.Key and
	// describe its MP4 export (JSON ExportManifest): size, SHA-256 of the
	// whole and of every Evidence.ChunkSize piece. Where the camera changed
	// codec or picture size in the range, the export ends there and
	// ExportManifest.Next is where the export of the rest starts.
	MethodExportInfo = "export_info"
	// MethodExportRange: bytes Evidence.Offset .. Offset+Length of the MP4
	// export of Camera's From..To (application/octet-stream).
	MethodExportRange = "export_range"
	// MethodRelease: central holds the video of Camera's From..To; the edge
	// drops the pin of Evidence.Key and every pin of Camera lying within
	// the range (JSON Released).
	MethodRelease = "release"
	// MethodContactSheet: the JPEG contact sheet (image/jpeg) of the MP4
	// export of Camera's From..To, the range of an export_info that pinned
	// it for Evidence.Key, titled Evidence.Title. The edge makes it
	// because it has the decoders; central stores it with the video and
	// copies it into the evidence bundle, so central needs no cgo.
	MethodContactSheet = "contact_sheet"
)

// MaxContactTitle bounds EvidenceParams.Title.
const MaxContactTitle = 200

// EvidencePinPrefix starts the ID of a pin an edge makes for an evidence
// retrieval: "evidence:" + EvidenceParams.Key.
const EvidencePinPrefix = "evidence:"

// MaxEvidenceChunk bounds one export_range answer.
const MaxEvidenceChunk = 16 << 20

// EvidenceParams are the extra parameters of the evidence methods.
type EvidenceParams struct {
	Key       string `json:"key,omitempty"`        // the retrieval item (pin ID suffix)
	ChunkSize int64  `json:"chunk_size,omitempty"` // export_info: piece size for the piece hashes
	Offset    int64  `json:"offset,omitempty"`     // export_range
	Length    int64  `json:"length,omitempty"`     // export_range
	Title     string `json:"title,omitempty"`      // contact_sheet: the sheet's title line
}

// Span is a stretch of time (recorded video, or a gap in it).
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Bytes int64     `json:"bytes,omitempty"`
}

// Recordings answers MethodRecordings.
type Recordings struct {
	Camera string `json:"camera"`
	Spans  []Span `json:"spans"`
	Gaps   []Span `json:"gaps"`
	// ClockOffsetMS is central's clock minus the edge's, as the edge last
	// measured it; ClockOffsetSource says how.
	ClockOffsetMS     int64  `json:"clock_offset_ms"`
	ClockOffsetSource string `json:"clock_offset_source"`
}

// ExportManifest answers MethodExportInfo: what the export of a range is,
// byte for byte, so central can verify every piece it fetches.
type ExportManifest struct {
	Camera    string        `json:"camera"`
	From      time.Time     `json:"from"` // as requested
	To        time.Time     `json:"to"`
	Start     time.Time     `json:"start"` // first frame (the keyframe at or before From)
	End       time.Time     `json:"end"`   // end of the last frame
	Duration  time.Duration `json:"duration_ns"`
	Frames    int           `json:"frames"`
	Codec     string        `json:"codec"`
	Width     int           `json:"width,omitempty"`
	Height    int           `json:"height,omitempty"`
	Size      int64         `json:"size"`
	SHA256    string        `json:"sha256"`     // hex, of the whole MP4
	ChunkSize int64         `json:"chunk_size"` // piece size of Chunks
	Chunks    []string      `json:"chunks"`     // hex SHA-256 of each piece, the last may be short
	// TimeSource is where the video's times come from: "rtcp" (the
	// camera's clock via sender reports) or "arrival" (the edge's clock);
	// the camera's source when the edge described the export.
	TimeSource string `json:"time_source,omitempty"`
	// Clock of the edge when it described the export.
	EdgeTime          time.Time `json:"edge_time"`
	ClockOffsetMS     int64     `json:"clock_offset_ms"`
	ClockOffsetSource string    `json:"clock_offset_source"`
	PinID             string    `json:"pin_id,omitempty"` // empty if the edge could not pin
	PinError          string    `json:"pin_error,omitempty"`
	// Next is set when the camera changed codec or picture size (a
	// camera reconfigured or replaced) after Start and before To: an MP4
	// holds one of each, so this export stops at the change, and the rest
	// of the range is another export, asked for as Next..To. The pin
	// then covers Start..To, the rest included, until it is released.
	Next time.Time `json:"next,omitzero"`
}

// Check reports whether the manifest is self-consistent.
func (m *ExportManifest) Check() error {
	switch {
	case m.Size <= 0:
		return errors.New("export manifest: empty export")
	case m.ChunkSize <= 0:
		return errors.New("export manifest: no chunk size")
	case int64(len(m.Chunks)) != (m.Size+m.ChunkSize-1)/m.ChunkSize:
		return fmt.Errorf("export manifest: %d chunk hashes for %d bytes in pieces of %d", len(m.Chunks), m.Size, m.ChunkSize)
	case len(m.SHA256) != 64:
		return errors.New("export manifest: sha256 is not 64 hex digits")
	case !m.Next.IsZero() && (!m.Next.After(m.From) || !m.Next.Before(m.To)):
		// A next part that does not move on would be asked for forever.
		return fmt.Errorf("export manifest: next part at %v is not within %v..%v", m.Next, m.From, m.To)
	}
	return nil
}

// Released answers MethodRelease.
type Released struct {
	Pins []string `json:"pins"` // IDs released
}

// validateEvidence checks the evidence methods; ok is false for others.
func (r *Request) validateEvidence() (ok bool, err error) {
	switch r.Method {
	case MethodRecordings:
		if r.Camera == "" || (!r.From.IsZero() && !r.To.IsZero() && r.To.Before(r.From)) {
			return true, errors.New("request: recordings needs camera and from <= to")
		}
	case MethodExportInfo, MethodExportRange, MethodRelease, MethodContactSheet:
		if r.Camera == "" || r.From.IsZero() || r.To.IsZero() || !r.To.After(r.From) {
			return true, fmt.Errorf("request: %s needs camera and from < to", r.Method)
		}
		e := r.Evidence
		switch {
		case e == nil || e.Key == "" || len(e.Key) > maxIDLen:
			return true, fmt.Errorf("request: %s needs evidence.key", r.Method)
		case r.Method == MethodExportInfo && (e.ChunkSize <= 0 || e.ChunkSize > MaxEvidenceChunk):
			return true, fmt.Errorf("request: export_info needs 0 < chunk_size <= %d", MaxEvidenceChunk)
		case r.Method == MethodExportRange && (e.Offset < 0 || e.Length <= 0 || e.Length > MaxEvidenceChunk):
			return true, fmt.Errorf("request: export_range needs offset >= 0 and 0 < length <= %d", MaxEvidenceChunk)
		case r.Method == MethodContactSheet && len(e.Title) > MaxContactTitle:
			return true, fmt.Errorf("request: contact_sheet title longer than %d bytes", MaxContactTitle)
		}
	default:
		return false, nil
	}
	return true, nil
}
