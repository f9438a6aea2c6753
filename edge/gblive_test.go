package edge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// auditRecorder keeps what the live side asks central's audit log to
// record, or refuses it (the outbox full).
type auditRecorder struct {
	mu      sync.Mutex
	records []string
	fail    error
}

func (a *auditRecorder) record(who accessActor, action, target, client string, details any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.records = append(a.records, fmt.Sprintf("%s %s %s %s %v", who.User, action, target, client, details))
	return nil
}

// gbOffer is a platform's live offer (GB/T 28181-2016 Annex G) for UDP
// to port, SSRC ssrc.
func gbOffer(session string, port int, ssrc string) []byte {
	return []byte("v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=" + session + "\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		fmt.Sprintf("m=video %d RTP/AVP 96 98 97\r\n", port) +
		"a=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\ny=" + ssrc + "\r\n")
}

// TestGBLiveToTwoViewers: two platform viewers of one camera each get
// the camera's own H.264 as MPEG-PS over RTP with their SSRC, which
// ffprobe reads as the camera's frames; each view is audited before it is
// answered; BYE ends a call; a playback offer, an unknown channel and a
// view that cannot be audited are refused with their SIP status.
func TestGBLiveToTwoViewers(t *testing.T) {
	clip := testrig.Testsrc(t, filepath.Join(t.TempDir(), "north.mp4"), 2, "-c:v", "libx264", "-bf", "0", "-g", "10")
	info, pkts, err := av.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	spawn := func(f func()) bool { wg.Add(1); go func() { defer wg.Done(); f() }(); return true }
	defer wg.Wait()
	defer cancel()
	audit := &auditRecorder{}
	l := newGBLive(ctx, spawn, gbLiveDeps{cameras: []string{"north"},
		camera:    func(ch string) (string, bool) { return "north", ch == "34020000001320000001" },
		mediaAddr: func(netip.Addr) netip.Addr { return netip.MustParseAddr("127.0.0.1") },
		audit:     audit, reg: prometheus.NewRegistry(), log: testrig.Logger(t)})
	defer l.close()

	sinks := []*testrig.RTPReceiver{testrig.ListenRTP(t), testrig.ListenRTP(t)}
	ssrcs := []string{"0100000001", "0100000002"}
	for i, s := range sinks {
		answer, err := l.Invite(ctx, device.Invite{CallID: fmt.Sprintf("call-%d", i), ChannelID: "34020000001320000001",
			From: "34020000002000000001", SDP: gbOffer("Play", s.Port(), ssrcs[i])})
		if err != nil {
			t.Fatalf("invite %d: %v", i, err)
		}
		if a := string(answer); !strings.Contains(a, "a=sendonly") || !strings.Contains(a, "PS/90000") || !strings.Contains(a, "y="+ssrcs[i]) {
			t.Errorf("answer %d:\n%s", i, a)
		}
		l.Ack(ctx, fmt.Sprintf("call-%d", i))
	}
	if got := len(audit.records); got != 2 || !strings.Contains(audit.records[0], "gb28181:34020000002000000001 view north 127.0.0.1") {
		t.Errorf("audit records %q", audit.records)
	}
	// The camera's units, as its pipeline hands them over (the first one
	// after the calls started is a keyframe).
	testrig.Until(t, "both viewers subscribed", 15*time.Second, func() bool { return l.cams["north"].hub.Len() == 2 })
	for _, p := range pkts {
		l.feed("north", streams.AccessUnit{Codec: info.Codec, NALUs: p.AU, PTS: p.PTS, Key: p.Key, Time: time.Now().UTC()})
		time.Sleep(2 * time.Millisecond) // the hub keeps 64 units a viewer; the clip has 50
	}
	for i, s := range sinks {
		testrig.Until(t, fmt.Sprintf("viewer %d's frames", i), 15*time.Second, func() bool { _, n, _ := s.Stream(); return n == len(pkts) })
		ps, _, seen := s.Stream()
		if want := map[uint32]bool{uint32(100000001 + i): true}; fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("viewer %d SSRCs %v, want %v", i, seen, want)
		}
		path := filepath.Join(t.TempDir(), "viewer.mpg")
		if err := os.WriteFile(path, ps, 0o600); err != nil {
			t.Fatal(err)
		}
		p := testrig.FFprobePS(t, path)
		if p.Codec != "h264" || p.Width != 320 || p.Height != 240 || len(p.FramePTS) != len(pkts) {
			t.Errorf("viewer %d: ffprobe %s %dx%d, %d frames; want h264 320x240, %d", i, p.Codec, p.Width, p.Height, len(p.FramePTS), len(pkts))
		}
	}
	l.Bye(ctx, "call-0")
	l.Bye(ctx, "call-1")
	if n := l.active(); n != 0 {
		t.Errorf("%d calls after BYE", n)
	}

	refused := func(what string, inv device.Invite, code int) {
		t.Helper()
		_, err := l.Invite(ctx, inv)
		var se *device.StatusError
		if !errors.As(err, &se) || se.Code != code {
			t.Errorf("%s: %v, want SIP %d", what, err, code)
		}
	}
	refused("playback", device.Invite{CallID: "p", ChannelID: "34020000001320000001", SDP: gbOffer("Playback", 9000, "1100000001")}, 488)
	refused("unknown channel", device.Invite{CallID: "u", ChannelID: "34020000001320000099", SDP: gbOffer("Play", 9000, "0100000003")}, 404)
	refused("bad SDP", device.Invite{CallID: "b", ChannelID: "34020000001320000001", SDP: []byte("v=0\r\nm=audio")}, 400)
	audit.fail = errors.New("outbox full")
	refused("not audited", device.Invite{CallID: "a", ChannelID: "34020000001320000001", SDP: gbOffer("Play", 9000, "0100000004")}, 503)
	if n := l.active(); n != 0 {
		t.Errorf("%d calls after refusals", n)
	}
}
