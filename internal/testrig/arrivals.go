package testrig

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/rtp"
)

// Arrivals records when each frame (by RTP timestamp) of an RTSP stream
// reached a plain client on this machine: over loopback, the moment the
// camera served it — ground truth that reads no RTCP.
type Arrivals struct {
	mu sync.Mutex
	at map[uint32]time.Time
}

// WatchArrivals plays rawURL over TCP until the test ends.
func WatchArrivals(t testing.TB, rawURL string) *Arrivals {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	a := &Arrivals{at: map[uint32]time.Time{}}
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			c.OnPacketRTP(m, f, func(p *rtp.Packet) {
				now := time.Now()
				a.mu.Lock()
				if _, seen := a.at[p.Timestamp]; !seen {
					a.at[p.Timestamp] = now
				}
				a.mu.Unlock()
			})
		}
	}
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	return a
}

// Of returns when the frame with RTP timestamp ts arrived.
func (a *Arrivals) Of(ts uint32) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[ts]
	return t, ok
}

// Served returns, for a GStreamer stream watched by a, when the frame at
// presentation time pts of its (looped) clip was served.
func (g *GstCamera) Served(t testing.TB, name string, a *Arrivals) func(pts time.Duration) (time.Time, bool) {
	first := g.FirstServed(t, name, 10*time.Second)
	return func(pts time.Duration) (time.Time, bool) {
		return a.Of(first.RTP + uint32((pts-first.PTS)*90000/time.Second))
	}
}

// Median is the middle of d (the upper one of an even count); 0 if empty.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
