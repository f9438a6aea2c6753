package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/sipp"
)

// answerSDP is what the test's media answers: a valid GB SDP answer for a
// PS stream sent from 127.0.0.1:30100.
const answerSDP = "v=0\r\n" +
	"o=" + cam1 + " 0 0 IN IP4 127.0.0.1\r\n" +
	"s=Play\r\n" +
	"c=IN IP4 127.0.0.1\r\n" +
	"t=0 0\r\n" +
	"m=video 30100 RTP/AVP 96\r\n" +
	"a=rtpmap:96 PS/90000\r\n" +
	"a=sendonly\r\n" +
	"y=0100000001\r\n"

// testMedia stands in for the edge's media (gb28181/media) at the seam:
// it answers every INVITE with answerSDP and records the calls it gets.
// With barrier > 1 an Invite waits until that many are in progress at
// once, which proves the device handles calls concurrently.
type testMedia struct {
	barrier int

	mu      sync.Mutex
	invites []Invite
	events  []string
	waiting int
	release chan struct{}
	acks    chan string
}

func newTestMedia(barrier int) *testMedia {
	return &testMedia{barrier: barrier, release: make(chan struct{}), acks: make(chan string, 16)}
}

func (m *testMedia) Invite(ctx context.Context, inv Invite) ([]byte, error) {
	m.mu.Lock()
	m.invites = append(m.invites, inv)
	m.events = append(m.events, "invite "+inv.CallID)
	m.waiting++
	if m.waiting == m.barrier {
		close(m.release)
	}
	m.mu.Unlock()
	if m.barrier > 1 {
		select {
		case <-m.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []byte(answerSDP), nil
}

func (m *testMedia) Ack(ctx context.Context, callID string) {
	m.record("ack " + callID)
	m.acks <- callID
}

func (m *testMedia) Bye(ctx context.Context, callID string) { m.record("bye " + callID) }

func (m *testMedia) Info(ctx context.Context, callID, contentType string, body []byte) error {
	m.record(fmt.Sprintf("info %s %s %q", callID, contentType, body))
	return nil
}

func (m *testMedia) record(e string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

// count returns how many recorded events start with prefix.
func (m *testMedia) count(prefix string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func (m *testMedia) dump() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.events, "\n")
}

// quietPlatform is a platform address that never answers: the device
// tries to register there while the test's SIPp plays the platform's
// media side.
func quietPlatform(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func mediaDevice(t *testing.T, m Media, transport ...string) (*Device, Config) {
	t.Helper()
	tr := UDP
	if len(transport) > 0 {
		tr = transport[0]
	}
	cfg := testConfig(t, quietPlatform(t), tr)
	cfg.Expires, cfg.Keepalive = time.Hour, time.Hour
	d, err := New(cfg, edgeChannels{}, Options{Media: m})
	if err != nil {
		t.Fatal(err)
	}
	return d, cfg
}

// sippOK waits for a SIPp run and fails the test unless every call went
// as its scenario demands.
func sippOK(t *testing.T, p *sipp.Run) sipp.Result {
	t.Helper()
	res := p.Wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s\nlogs:\n%s\nmessages:\n%s", res.ExitCode, res.Errors, res.Logs, res.Messages)
	}
	return res
}

var platformKeys = map[string]string{"cam": cam1, "dev": deviceID, "alarm": alarm1, "srv": serverID, "domain": domain}

// Three platform viewers at once: INVITE with a GB SDP offer, 200 with
// the media's answer, ACK, MANSRTSP over INFO, a replayed CSeq refused
// 500, BYE, and an INFO after the BYE refused 481.
func TestMediaSessionsSIPp(t *testing.T) {
	for _, transport := range []string{UDP, TCP} {
		t.Run(transport, func(t *testing.T) { testMediaSessions(t, transport) })
	}
}

func testMediaSessions(t *testing.T, transport string) {
	const calls = 3
	media := newTestMedia(calls)
	d, cfg := mediaDevice(t, media, transport)
	runDevice(t, d)
	sippOK(t, sipp.Start(t, sipp.Options{Scenario: "testdata/platform_play.xml", Remote: cfg.LocalAddr, Calls: calls, Timeout: 15 * time.Second, Keys: platformKeys, TCP: transport == TCP}))
	media.mu.Lock()
	invites := append([]Invite(nil), media.invites...)
	media.mu.Unlock()
	if len(invites) != calls {
		t.Fatalf("%d INVITEs reached the media, want %d", len(invites), calls)
	}
	for _, inv := range invites {
		if inv.ChannelID != cam1 || inv.From != serverID || inv.Subject != cam1+":0100000001,"+serverID+":0" ||
			!strings.Contains(string(inv.SDP), "s=Play") || !strings.Contains(string(inv.SDP), "a=rtpmap:96 PS/90000") {
			t.Errorf("invite %+v", inv)
		}
	}
	// Each call: one ACK, one INFO (the replayed CSeq and the INFO after
	// BYE never reach the media), one BYE.
	for _, want := range []string{"ack ", "info ", "bye "} {
		if n := media.count(want); n != calls {
			t.Errorf("%d %q events, want %d:\n%s", n, want, calls, media.dump())
		}
	}
	if n := media.count(`info `); n > 0 && !strings.Contains(media.dump(), `Application/MANSRTSP "PLAY RTSP/1.0\r\nCSeq: 2\r\nScale: 2.0\r\n"`) {
		t.Errorf("MANSRTSP body not passed as sent:\n%s", media.dump())
	}
	if n := count(d.m.calls, "ok"); n != calls {
		t.Errorf("%d sessions confirmed, want %d", n, calls)
	}
	eventually(t, 2*time.Second, "no session left", func() bool { return d.current().callByID(invites[0].CallID) == nil })
}

// A platform that never ACKs: the device retransmits its 200, then ends
// the session (Media.Bye) and sends a BYE, which SIPp receives.
func TestMediaSessionWithoutAckSIPp(t *testing.T) {
	media := newTestMedia(1)
	d, cfg := mediaDevice(t, media)
	d.t1, d.t2, d.ackWait = 50*time.Millisecond, 200*time.Millisecond, time.Second
	runDevice(t, d)
	res := sippOK(t, sipp.Start(t, sipp.Options{Scenario: "testdata/platform_noack.xml", Remote: cfg.LocalAddr, Calls: 1, Timeout: 10 * time.Second, Keys: platformKeys}))
	if !strings.Contains(res.Logs, "BYE from the device") {
		t.Errorf("no BYE logged:\n%s", res.Logs)
	}
	if n := strings.Count(res.Messages, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1"); n < 2 {
		t.Errorf("the 200 was not retransmitted (%d seen):\n%s", n, res.Messages)
	}
	if media.count("ack ") != 0 || media.count("bye ") != 1 {
		t.Errorf("media events:\n%s", media.dump())
	}
	if n := count(d.m.calls, "no_ack"); n != 1 {
		t.Errorf("%d sessions ended for want of an ACK, want 1", n)
	}
}

// The device ends a download: MediaStatus (NotifyType 121) in the dialog,
// then a BYE with the reason; SIPp checks both.
func TestDeviceHangupSIPp(t *testing.T) {
	for _, transport := range []string{UDP, TCP} {
		t.Run(transport, func(t *testing.T) { testDeviceHangup(t, transport) })
	}
}

func testDeviceHangup(t *testing.T, transport string) {
	media := newTestMedia(1)
	d, cfg := mediaDevice(t, media, transport)
	runDevice(t, d)
	if err := d.Hangup(context.Background(), "nobody", "x"); !errors.Is(err, ErrNoCall) {
		t.Errorf("Hangup of an unknown call: %v", err)
	}
	p := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_hangup.xml", Remote: cfg.LocalAddr, Calls: 1, Timeout: 10 * time.Second, Keys: platformKeys, TCP: transport == TCP})
	var callID string
	select {
	case callID = <-media.acks:
	case <-time.After(10 * time.Second):
		t.Fatalf("no ACK reached the media\n%s", p.Wait().Messages)
	}
	ctx := context.Background()
	if err := d.MediaStatus(ctx, callID); err != nil {
		t.Fatal(err)
	}
	if err := d.Hangup(ctx, callID, "download finished"); err != nil {
		t.Fatal(err)
	}
	res := sippOK(t, p)
	if want := "media status device=" + cam1 + "; bye reason=download finished"; !strings.Contains(res.Logs, want) {
		t.Errorf("no %q in:\n%s", want, res.Logs)
	}
	if err := d.Hangup(ctx, callID, "again"); !errors.Is(err, ErrNoCall) {
		t.Errorf("second Hangup: %v", err)
	}
	if media.count("bye ") != 0 {
		t.Errorf("Media.Bye called for the device's own hang-up:\n%s", media.dump())
	}
}
