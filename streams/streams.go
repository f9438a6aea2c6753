// Package streams holds what every part of the video path shares: the
// access unit, one coded picture with its wall-clock time. Subpackages do
// the work: rtsp (camera sessions), av (FFmpeg), motion, camera (the
// supervised per-camera pipeline) and sim (the camera simulator).
package streams

import (
	"time"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// Time sources of an access unit's wall-clock time.
const (
	TimeRTCP    = "rtcp"    // from the camera's RTCP sender reports
	TimeArrival = "arrival" // this box's clock at the first packet, plus RTP time
	TimeFile    = "file"    // a file's start time plus its presentation time
)

// AccessUnit is one coded picture with its wall-clock time.
type AccessUnit struct {
	Codec      av.Codec
	NALUs      [][]byte // without start codes; parameter sets prepended to random-access units
	PTS        time.Duration
	Time       time.Time // UTC
	TimeSource string
	Key        bool
	Bytes      int // payload size, for bitrate
}
