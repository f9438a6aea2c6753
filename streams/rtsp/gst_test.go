package rtsp_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/rtsp"
)

type received struct {
	au streams.AccessUnit
	at time.Time
}

// collect runs a Source for d and returns every access unit with the time
// it arrived.
func collect(t *testing.T, cfg rtsp.Config, d time.Duration) []received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var got []received
	err := rtsp.Run(ctx, cfg, nil, func(au streams.AccessUnit) {
		mu.Lock()
		got = append(got, received{au: au, at: time.Now()})
		mu.Unlock()
	})
	if err != nil && ctx.Err() == nil {
		t.Fatalf("session: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// TestGStreamerFrameTimes: frames from GStreamer's RTSP server (an RFC
// 3550 sender nobody here wrote) are timed by its sender reports: no frame
// is dated after it arrived, the typical frame within a few milliseconds
// of its arrival over loopback, and frame times advance exactly as the
// camera's RTP clock across every new sender report (gortsplib v4.16.2's
// own reading puts them up to 3.3 s in the future, jumping at each report).
func TestGStreamerFrameTimes(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	for _, tr := range []string{rtsp.TransportTCP, rtsp.TransportUDP} {
		t.Run(tr, func(t *testing.T) {
			g := testrig.StartGstCamera(t, testrig.GstOptions{Streams: map[string]string{"cam": clip.Path}, Trace: []string{"cam"}})
			// GStreamer sends its first sender report 1–3 s in, then about
			// every 5 s: 14 s see three or more.
			got := collect(t, rtsp.Config{URL: g.URL("cam"), Transport: tr, Log: testrig.Logger(t)}, 14*time.Second)
			served := g.ServedFrames("cam")
			byRTP := map[uint32]testrig.ServedFrame{}
			for _, f := range served {
				byRTP[f.RTP-served[0].RTP] = f
			}
			var lags, sinceSent []time.Duration
			var prev *received
			for i, r := range got {
				if r.au.TimeSource != streams.TimeRTCP {
					continue
				}
				lag := r.at.Sub(r.au.Time)
				lags = append(lags, lag)
				if lag < -5*time.Millisecond {
					t.Errorf("frame at PTS %v is dated %v after it arrived", r.au.PTS, -lag)
				}
				if f, ok := byRTP[uint32(r.au.PTS*90000/time.Second)]; ok {
					sinceSent = append(sinceSent, r.au.Time.Sub(f.Wall))
				}
				if prev != nil {
					step, ptsStep := r.au.Time.Sub(prev.au.Time), r.au.PTS-prev.au.PTS
					if (step - ptsStep).Abs() > time.Millisecond {
						t.Errorf("frame time moved %v between PTS %v and %v (RTP clock: %v)", step, prev.au.PTS, r.au.PTS, ptsStep)
					}
				}
				prev = &got[i]
			}
			if len(lags) < 50 {
				t.Fatalf("%d of %d frames were timed by a sender report", len(lags), len(got))
			}
			med := testrig.Median(lags)
			t.Logf("%s over %s: %d frames timed by RTCP; arrival − frame time: median %v, max %v; frame time − payloader output: median %v (the server's send latency)",
				g.Version, tr, len(lags), med, slices.Max(lags), testrig.Median(sinceSent))
			if med > 20*time.Millisecond {
				t.Errorf("frames arrive a median %v after their RTCP time over loopback, want ≤ 20 ms", med)
			}
		})
	}
}
