package media

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MANSRTSP is playback control of GB/T 28181-2016 Annex B: RTSP-like
// requests the platform sends in SIP INFO bodies
// (Content-Type: Application/MANSRTSP) within a Playback session:
//
//	PLAY RTSP/1.0          CSeq: n   Scale: 2.0        (speed)
//	PLAY RTSP/1.0          CSeq: n   Range: npt=120-   (seek: seconds from the range's start)
//	PLAY RTSP/1.0          CSeq: n   Range: npt=now-   (resume)
//	PAUSE RTSP/1.0         CSeq: n   PauseTime: now
//	TEARDOWN RTSP/1.0      CSeq: n
//
// Lines end in CRLF or LF; header names are case-insensitive; headers
// not listed are ignored.

// MANSRTSP methods.
const (
	RTSPPlay     = "PLAY"
	RTSPPause    = "PAUSE"
	RTSPTeardown = "TEARDOWN"
)

// MaxMANSRTSP bounds a control body (platforms send a few lines).
const MaxMANSRTSP = 4096

// Errors of ParseMANSRTSP.
var (
	ErrMANSRTSP      = errors.New("media: not a MANSRTSP request")
	ErrRTSPMethod    = errors.New("media: MANSRTSP method is not PLAY, PAUSE or TEARDOWN")
	ErrRTSPScale     = errors.New("media: MANSRTSP Scale is not a positive number")
	ErrRTSPRange     = errors.New("media: MANSRTSP Range is not npt=<start>-[<end>]")
	ErrRTSPCSeq      = errors.New("media: MANSRTSP CSeq missing or not a number")
	ErrRTSPDuplicate = errors.New("media: MANSRTSP header repeated")
)

// Control is one parsed MANSRTSP request.
type Control struct {
	Method string // RTSPPlay, RTSPPause or RTSPTeardown
	CSeq   uint32
	// Scale is the speed asked for (PLAY), 0 when absent.
	Scale float64
	// HasRange: PLAY carried a Range. RangeNow: "npt=now-", resume where
	// paused. Otherwise Start is the position from the playback range's
	// start; End, when HasEnd, where to stop.
	HasRange, RangeNow, HasEnd bool
	Start, End                 time.Duration
	// PauseTime is the PauseTime header as sent ("now" or an npt), empty
	// when absent.
	PauseTime string
}

// ParseMANSRTSP reads a MANSRTSP request body.
func ParseMANSRTSP(body []byte) (*Control, error) {
	if len(body) > MaxMANSRTSP {
		return nil, fmt.Errorf("%w: %d bytes", ErrMANSRTSP, len(body))
	}
	lines := strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMANSRTSP)
	}
	f := strings.Fields(lines[0])
	if len(f) != 2 || !strings.EqualFold(f[1], "RTSP/1.0") {
		return nil, fmt.Errorf("%w: request line %q", ErrMANSRTSP, lines[0])
	}
	c := &Control{Method: strings.ToUpper(f[0])}
	switch c.Method {
	case RTSPPlay, RTSPPause, RTSPTeardown:
	default:
		return nil, fmt.Errorf("%w: %q", ErrRTSPMethod, f[0])
	}
	seen := map[string]bool{}
	for _, line := range lines[1:] {
		line = strings.TrimSpace(line)
		if line == "" {
			break // the end of the headers
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: header line %q", ErrMANSRTSP, line)
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		switch name {
		case "cseq", "scale", "range", "pausetime":
			if seen[name] {
				return nil, fmt.Errorf("%w: %s", ErrRTSPDuplicate, name)
			}
			seen[name] = true
		}
		var err error
		switch name {
		case "cseq":
			var n uint64
			n, err = strconv.ParseUint(value, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: %q", ErrRTSPCSeq, value)
			}
			c.CSeq = uint32(n)
		case "scale":
			c.Scale, err = strconv.ParseFloat(value, 64)
			if err != nil || math.IsNaN(c.Scale) || c.Scale <= 0 || c.Scale > 1024 {
				return nil, fmt.Errorf("%w: %q", ErrRTSPScale, value)
			}
		case "range":
			if err := c.parseRange(value); err != nil {
				return nil, err
			}
		case "pausetime":
			c.PauseTime = value
		}
	}
	if !seen["cseq"] {
		return nil, ErrRTSPCSeq
	}
	return c, nil
}

// parseRange reads "npt=<start>-[<end>]" (RFC 2326 3.6: seconds, or
// hh:mm:ss, with a fraction; start may be "now").
func (c *Control) parseRange(v string) error {
	spec, ok := strings.CutPrefix(strings.ToLower(v), "npt=")
	if !ok {
		spec, ok = strings.CutPrefix(strings.ToLower(v), "npt:")
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrRTSPRange, v)
	}
	from, to, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return fmt.Errorf("%w: %q", ErrRTSPRange, v)
	}
	from, to = strings.TrimSpace(from), strings.TrimSpace(to)
	c.HasRange = true
	switch from {
	case "now":
		c.RangeNow = true
	case "":
		c.Start = 0
	default:
		d, err := nptTime(from)
		if err != nil {
			return fmt.Errorf("%w: %q", ErrRTSPRange, v)
		}
		c.Start = d
	}
	if to != "" {
		d, err := nptTime(to)
		if err != nil || (!c.RangeNow && d < c.Start) {
			return fmt.Errorf("%w: %q", ErrRTSPRange, v)
		}
		c.End, c.HasEnd = d, true
	}
	return nil
}

// maxNPT bounds a position: a recording's range is hours, not years.
const maxNPT = 366 * 24 * time.Hour

// nptTime reads an npt time: seconds ("120", "120.5") or hh:mm:ss[.f].
func nptTime(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 1 && len(parts) != 3 {
		return 0, errors.New("npt: neither seconds nor hh:mm:ss")
	}
	var total float64
	for i, p := range parts {
		if p == "" || strings.ContainsAny(p, "+-eEnNiIxXpP_") {
			return 0, errors.New("npt: not a plain number")
		}
		last := i == len(parts)-1
		var v float64
		if last {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil {
				return 0, err
			}
			v = f
		} else {
			n, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				return 0, err
			}
			v = float64(n)
		}
		if len(parts) == 3 && i > 0 && v >= 60 {
			return 0, errors.New("npt: minutes or seconds over 59")
		}
		total = total*60 + v
	}
	if total < 0 || total > maxNPT.Seconds() {
		return 0, errors.New("npt: out of range")
	}
	return time.Duration(math.Round(total * float64(time.Second))), nil
}
