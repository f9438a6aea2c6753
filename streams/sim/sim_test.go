package sim_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/rtcp"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// ntpToTime reads an RFC 3550 §4 NTP timestamp by hand, independently of
// streams/rtcptime: whole seconds since 1900 in the high word, the
// fraction of a second in units of 2^-32 s in the low word.
func ntpToTime(v uint64) time.Time {
	secs := float64(v>>32) + float64(v&0xffffffff)/math.Exp2(32)
	ntpEpoch := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	whole := math.Floor(secs)
	return ntpEpoch.Add(time.Duration(whole) * time.Second).Add(time.Duration((secs - whole) * 1e9))
}

// TestSenderReportsFollowRFC3550: the simulator's sender reports, decoded
// by pion/rtcp and read by hand, give each RTP timestamp the wall-clock
// time at which that frame was sent (plus the configured camera clock
// skew), so tests judged against the simulator cannot hide a misreading.
func TestSenderReportsFollowRFC3550(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	const skew = 1500 * time.Millisecond
	srv, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: clip}},
		ClockOffset: skew, ReportInterval: 500 * time.Millisecond, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	u, err := base.ParseURL(srv.URL("cam"))
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []*rtcp.SenderReport
	var arrivals []time.Time
	c.OnPacketRTCP(desc.Medias[0], func(p rtcp.Packet) {
		// gortsplib hands over what pion/rtcp decoded from the wire.
		if sr, ok := p.(*rtcp.SenderReport); ok {
			mu.Lock()
			reports, arrivals = append(reports, sr), append(arrivals, time.Now())
			mu.Unlock()
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(reports) < 4 {
		t.Fatalf("%d sender reports in 3 s, want one every 500 ms", len(reports))
	}
	for i, sr := range reports {
		got := ntpToTime(sr.NTPTime)
		// The simulator's RTP clock starts at 0 at its epoch.
		want := srv.Epoch().Add(skew).Add(time.Duration(sr.RTPTime) * time.Second / 90000)
		if d := got.Sub(want); d.Abs() > 100*time.Microsecond {
			t.Errorf("report %d: NTP %#x reads %v, but RTP time %d was sent at %v (%v apart)", i, sr.NTPTime, got, sr.RTPTime, want, d)
		}
		if d := arrivals[i].Add(skew).Sub(got); d < 0 || d > 200*time.Millisecond {
			t.Errorf("report %d says %v, arrived %v later (skew removed)", i, got, d)
		}
		if sr.PacketCount == 0 || sr.OctetCount == 0 {
			t.Errorf("report %d counts %d packets, %d octets", i, sr.PacketCount, sr.OctetCount)
		}
	}
}
