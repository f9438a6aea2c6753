package wire

import (
	"errors"
	"time"
)

// Recorded playback: central asks an edge for a window of a camera's
// recording as fragmented MP4 a browser's Media Source Extensions play as
// they are (the camera's own bitstream, never re-encoded), and for what
// to draw over it. The timeline's spans and gaps are MethodRecordings.
const (
	// MethodPlayback: Camera's video in From..To (at most MaxPlaybackWindow)
	// from the keyframe at or before From. The first part is a JSON
	// PlaybackInfo; the parts after it are video/mp4: an initialisation
	// segment (ftyp+moov with mvex) and then moof+mdat fragments, one
	// per group of pictures, whose decode times are 90 kHz ticks since
	// Playback.Origin. Every window of one playback session uses the same
	// origin, so a player's media time t is the wall time Origin+t on
	// every camera of the session: that is how several cameras play in
	// step. With Playback.KeyframesOnly only the keyframes are sent, each
	// lasting until the next one (a slow link, fast scrubbing).
	MethodPlayback = "playback"
	// MethodOverlay: what to draw over Camera's playback in From..To
	// (JSON Overlay): the motion boxes the analyser found, and the zones
	// and lines of the camera's configuration in force.
	MethodOverlay = "overlay"
)

// MaxPlaybackWindow bounds one playback answer; a player asks for the
// next window as its buffer drains.
const MaxPlaybackWindow = 60 * time.Second

// MaxOverlayRange bounds one overlay answer.
const MaxOverlayRange = 10 * time.Minute

// PlaybackParams are the extra parameters of MethodPlayback.
type PlaybackParams struct {
	// Origin is the wall time at media time 0 (the session's start).
	Origin time.Time `json:"origin"`
	// KeyframesOnly sends keyframes only.
	KeyframesOnly bool `json:"keyframes_only,omitempty"`
}

// PlaybackInfo is the first part of a MethodPlayback answer.
type PlaybackInfo struct {
	Camera string    `json:"camera"`
	Codec  string    `json:"codec"` // RFC 6381, e.g. "avc1.4d401f"
	Width  int       `json:"width,omitempty"`
	Height int       `json:"height,omitempty"`
	Origin time.Time `json:"origin"`
	// Start is the wall time of the first frame sent (the keyframe at or
	// before From, or the first one after it when From falls in a gap);
	// End the end of the last frame sent.
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Frames        int       `json:"frames"`
	Bytes         int64     `json:"bytes"` // video payload bytes
	KeyframesOnly bool      `json:"keyframes_only,omitempty"`
	// Next is set when the window stops early because the camera changed
	// codec or picture size: the rest starts there, with a new
	// initialisation segment.
	Next time.Time `json:"next,omitzero"`
}

// Overlay answers MethodOverlay.
type Overlay struct {
	Camera string `json:"camera"`
	// Boxes are the motion boxes of analysed frames with motion, in time
	// order (at most a few per second).
	Boxes []BoxFrame    `json:"boxes"`
	Zones []OverlayZone `json:"zones"`
	Lines []OverlayLine `json:"lines"`
}

// BoxFrame is the motion boxes of one analysed frame.
type BoxFrame struct {
	Time  time.Time `json:"t"`
	Boxes []Box     `json:"boxes"`
}

// OverlayZone is a zone of the camera's configuration (normalised points).
type OverlayZone struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// OverlayLine is a tripwire of the camera's configuration.
type OverlayLine struct {
	Name      string `json:"name"`
	A         Point  `json:"a"`
	B         Point  `json:"b"`
	Direction string `json:"direction,omitempty"`
}

// validatePlayback checks the playback methods' requests.
func (r *Request) validatePlayback() (bool, error) {
	switch r.Method {
	case MethodPlayback:
		switch {
		case r.Camera == "" || r.From.IsZero() || r.To.IsZero() || !r.To.After(r.From):
			return true, errors.New("request: playback needs camera and from < to")
		case r.To.Sub(r.From) > MaxPlaybackWindow:
			return true, errors.New("request: playback window over " + MaxPlaybackWindow.String())
		case r.Playback == nil || r.Playback.Origin.IsZero():
			return true, errors.New("request: playback needs an origin")
		}
		return true, nil
	case MethodOverlay:
		switch {
		case r.Camera == "" || r.From.IsZero() || r.To.IsZero() || !r.To.After(r.From):
			return true, errors.New("request: overlay needs camera and from < to")
		case r.To.Sub(r.From) > MaxOverlayRange:
			return true, errors.New("request: overlay range over " + MaxOverlayRange.String())
		}
		return true, nil
	}
	return false, nil
}
