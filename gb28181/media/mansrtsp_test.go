package media

import (
	"errors"
	"testing"
	"time"
)

// TestMANSRTSP reads the control requests of GB/T 28181-2016 Annex B as
// platforms send them, and refuses malformed ones.
func TestMANSRTSP(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Control
	}{
		{"scale", "PLAY RTSP/1.0\r\nCSeq: 2\r\nScale: 2.0\r\n", Control{Method: RTSPPlay, CSeq: 2, Scale: 2}},
		{"quarter speed, LF only", "PLAY RTSP/1.0\nCSeq: 7\nScale: 0.25\n", Control{Method: RTSPPlay, CSeq: 7, Scale: 0.25}},
		{"seek", "PLAY RTSP/1.0\r\nCSeq: 3\r\nRange: npt=120-\r\n", Control{Method: RTSPPlay, CSeq: 3, HasRange: true, Start: 120 * time.Second}},
		{"seek with fraction and end", "PLAY RTSP/1.0\r\nCSeq: 3\r\nrange: npt=12.5-30\r\n",
			Control{Method: RTSPPlay, CSeq: 3, HasRange: true, Start: 12500 * time.Millisecond, End: 30 * time.Second, HasEnd: true}},
		{"seek hh:mm:ss", "PLAY RTSP/1.0\r\nCSeq: 3\r\nRange: npt=00:02:00.5-\r\n", Control{Method: RTSPPlay, CSeq: 3, HasRange: true, Start: 120500 * time.Millisecond}},
		{"resume", "PLAY RTSP/1.0\r\nCSeq: 5\r\nRange: npt=now-\r\n", Control{Method: RTSPPlay, CSeq: 5, HasRange: true, RangeNow: true}},
		{"pause", "PAUSE RTSP/1.0\r\nCSeq: 4\r\nPauseTime: now\r\n", Control{Method: RTSPPause, CSeq: 4, PauseTime: "now"}},
		{"teardown", "TEARDOWN RTSP/1.0\r\nCSeq: 9\r\n\r\n", Control{Method: RTSPTeardown, CSeq: 9}},
		{"lower-case method, extra headers", "play RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: x\r\n", Control{Method: RTSPPlay, CSeq: 1}},
	} {
		c, err := ParseMANSRTSP([]byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if *c != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, *c, tc.want)
		}
	}
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"empty", "", ErrMANSRTSP},
		{"not RTSP", "GET / HTTP/1.1\r\nCSeq: 1\r\n", ErrMANSRTSP},
		{"method", "RECORD RTSP/1.0\r\nCSeq: 1\r\n", ErrRTSPMethod},
		{"no CSeq", "PLAY RTSP/1.0\r\nScale: 2\r\n", ErrRTSPCSeq},
		{"CSeq not a number", "PLAY RTSP/1.0\r\nCSeq: two\r\n", ErrRTSPCSeq},
		{"negative scale", "PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: -1\r\n", ErrRTSPScale},
		{"scale NaN", "PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: NaN\r\n", ErrRTSPScale},
		{"range unit", "PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: clock=20260101T000000Z-\r\n", ErrRTSPRange},
		{"range backwards", "PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=30-10\r\n", ErrRTSPRange},
		{"range negative", "PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=-5-\r\n", ErrRTSPRange},
		{"range huge", "PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=1e300-\r\n", ErrRTSPRange},
		{"range minutes", "PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=00:75:00-\r\n", ErrRTSPRange},
		{"repeated scale", "PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: 1\r\nScale: 2\r\n", ErrRTSPDuplicate},
		{"header without colon", "PLAY RTSP/1.0\r\nCSeq 1\r\n", ErrMANSRTSP},
	} {
		if _, err := ParseMANSRTSP([]byte(tc.body)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzMANSRTSP: any body parses or fails cleanly, and what parses is
// within bounds.
func FuzzMANSRTSP(f *testing.F) {
	for _, s := range []string{
		"PLAY RTSP/1.0\r\nCSeq: 2\r\nScale: 2.0\r\n",
		"PLAY RTSP/1.0\r\nCSeq: 3\r\nRange: npt=120-\r\n",
		"PLAY RTSP/1.0\r\nCSeq: 3\r\nRange: npt=00:01:02.5-00:02:00\r\n",
		"PLAY RTSP/1.0\r\nCSeq: 5\r\nRange: npt=now-\r\n",
		"PAUSE RTSP/1.0\r\nCSeq: 4\r\nPauseTime: now\r\n",
		"TEARDOWN RTSP/1.0\r\nCSeq: 9\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseMANSRTSP(b)
		if err != nil {
			if c != nil {
				t.Fatal("a control with an error")
			}
			return
		}
		switch c.Method {
		case RTSPPlay, RTSPPause, RTSPTeardown:
		default:
			t.Fatalf("method %q", c.Method)
		}
		if c.Scale < 0 || c.Scale > 1024 || c.Start < 0 || c.Start > maxNPT || c.End < 0 || c.End > maxNPT {
			t.Fatalf("out of bounds: %+v", *c)
		}
		if c.HasEnd && !c.RangeNow && c.End < c.Start {
			t.Fatalf("range backwards: %+v", *c)
		}
	})
}
