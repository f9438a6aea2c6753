package edge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
)

// gbEpoch is when the test recording starts: ten seconds before a whole
// hour, so that RecordInfo cuts it there.
var gbEpoch = time.Date(2026, 3, 1, 11, 59, 50, 0, time.UTC)

const gbTestChannel = "34020000001320000001"

// gbRecordedStore records 30 s of the bursts clip (640×480, 10 fps, a
// keyframe every 2 s) as camera north from gbEpoch into a real clip
// store, as the node's pipeline would.
func gbRecordedStore(t *testing.T) *clips.Store {
	t.Helper()
	clip, _ := testrig.BurstsClip(t)
	fp := clips.Footprint{MemTableSize: 1 << 20, BlockCacheSize: 1 << 20, IndexCacheSize: 1 << 20, ValueLogFileSize: 1 << 20}
	s, err := clips.Open(clips.Config{Dir: t.TempDir(), Footprint: fp, MinFreeBytes: fp.Reserve(), BucketDuration: 10 * time.Second,
		ChunkDuration: 4 * time.Second, FlushInterval: 100 * time.Millisecond, Registerer: prometheus.NewRegistry(), Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := s.Recorder("north")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range clip.Packets {
		if p.PTS >= 30*time.Second {
			break
		}
		for r.Pending() > 1<<20 {
			time.Sleep(time.Millisecond)
		}
		r.Write(streams.AccessUnit{Codec: clip.Info.Codec, NALUs: p.AU, PTS: p.PTS, Time: gbEpoch.Add(p.PTS),
			TimeSource: streams.TimeRTCP, Key: p.Key})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// gbRangeOffer is a platform's Playback or Download offer (GB/T
// 28181-2016 Annex G) for [from, to) of the test channel: over UDP to
// port, or over TCP with the platform connecting (port 0).
func gbRangeOffer(session string, port int, ssrc string, from, to time.Time, extra string) []byte {
	m := fmt.Sprintf("m=video %d RTP/AVP 96\r\n", port)
	if port == 0 {
		m = "m=video 9 TCP/RTP/AVP 96\r\na=setup:active\r\na=connection:new\r\n"
	}
	return []byte("v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=" + session + "\r\nu=" + gbTestChannel + ":0\r\n" +
		"c=IN IP4 127.0.0.1\r\n" + fmt.Sprintf("t=%d %d\r\n", from.Unix(), to.Unix()) + m +
		"a=recvonly\r\na=rtpmap:96 PS/90000\r\n" + extra + "y=" + ssrc + "\r\n")
}

// gbRecordedSide is the live side with the recorded side behind it, as
// the device gets them (one Media), with what they told the device.
type gbRecordedSide struct {
	live     *gbLive
	rec      *gbPlayback
	audit    *gbAudit
	mu       sync.Mutex
	finished []string // MediaStatus
	hungUp   []string // Hangup
}

func newGBRecordedSide(t *testing.T, ctx context.Context, spawn func(func()) bool, store *clips.Store) *gbRecordedSide {
	s := &gbRecordedSide{audit: &gbAudit{}}
	camera := func(ch string) (string, bool) { return "north", ch == gbTestChannel }
	addr := func(netip.Addr) netip.Addr { return netip.MustParseAddr("127.0.0.1") }
	reg := prometheus.NewRegistry()
	s.rec = newGBPlayback(ctx, spawn, gbPlaybackDeps{clips: store, camera: camera, mediaAddr: addr, audit: s.audit, reg: reg, log: testrig.Logger(t),
		mediaStatus: func(id string) error { s.mu.Lock(); s.finished = append(s.finished, id); s.mu.Unlock(); return nil },
		hangup:      func(id, why string) { s.mu.Lock(); s.hungUp = append(s.hungUp, id+": "+why); s.mu.Unlock() }})
	s.live = newGBLive(ctx, spawn, gbLiveDeps{cameras: []string{"north"}, camera: camera, mediaAddr: addr, audit: s.audit, reg: reg,
		log: testrig.Logger(t), recorded: s.rec})
	t.Cleanup(s.live.close)
	return s
}

func (s *gbRecordedSide) told(list *[]string, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range *list {
		if x == id || strings.HasPrefix(x, id+": ") {
			return true
		}
	}
	return false
}

// gbTasks runs the node's tasks for a test and waits for them at its end.
func gbTasks(t *testing.T) (context.Context, func(func()) bool) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ctx, func(f func()) bool { wg.Add(1); go func() { defer wg.Done(); f() }(); return true }
}

// gbAudit keeps what the recorded side asks central's audit log to
// record, or refuses it (the outbox full).
type gbAudit struct {
	mu      sync.Mutex
	records []string
	fail    error
}

func (a *gbAudit) record(who accessActor, action, target, client string, details any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.records = append(a.records, fmt.Sprintf("%s %s %s %s %v", who.User, action, target, client, details))
	return nil
}

// udpSink is the platform receiving one call's RTP over UDP.
type udpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts []rtp.Packet // in arrival order
}

func newUDPSink(t *testing.T) *udpSink {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	s := &udpSink{conn: c}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil {
				p.Payload = append([]byte(nil), p.Payload...)
				s.mu.Lock()
				s.pkts = append(s.pkts, p)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *udpSink) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// stream is the PS bytes received in sequence order and the frames
// (marker bits).
func (s *udpSink) stream() (ps []byte, frames int) {
	s.mu.Lock()
	pkts := slices.Clone(s.pkts)
	s.mu.Unlock()
	slices.SortFunc(pkts, func(a, b rtp.Packet) int {
		return int(a.SequenceNumber-pkts[0].SequenceNumber) - int(b.SequenceNumber-pkts[0].SequenceNumber)
	})
	for _, p := range pkts {
		ps = append(ps, p.Payload...)
		if p.Marker {
			frames++
		}
	}
	return ps, frames
}

// frameTimes are the RTP timestamps of the frames received so far (their
// last packets, in arrival order).
func (s *udpSink) frameTimes() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []uint32
	for _, p := range s.pkts {
		if p.Marker {
			ts = append(ts, p.Timestamp)
		}
	}
	return ts
}

func probeFile(t *testing.T, ps []byte) testrig.ProbePS {
	path := filepath.Join(t.TempDir(), "recording.mpg")
	if err := os.WriteFile(path, ps, 0o600); err != nil {
		t.Fatal(err)
	}
	return testrig.FFprobePS(t, path)
}

// checkFrames checks ffprobe's frames: n of them, 640×480 H.264, PTS
// rising by one frame (100 ms) from first.
func checkFrames(t *testing.T, what string, p testrig.ProbePS, n int) {
	t.Helper()
	if p.Codec != "h264" || p.Width != 640 || p.Height != 480 || len(p.FramePTS) != n {
		t.Fatalf("%s: ffprobe %s %dx%d, %d frames; want h264 640x480, %d", what, p.Codec, p.Width, p.Height, len(p.FramePTS), n)
	}
	for i := 1; i < len(p.FramePTS); i++ {
		if d := p.FramePTS[i] - p.FramePTS[i-1]; d != 9000 {
			t.Fatalf("%s: frame %d PTS %d after %d (step %d, want 9000)", what, i, p.FramePTS[i], p.FramePTS[i-1], d)
		}
	}
}

// TestGBPlaybackRange: a platform's Playback INVITE for 3 s of a camera's
// recording gets the recorded frames from the keyframe before the start
// as MPEG-PS over RTP (UDP), which ffprobe reads whole with the
// recording's own frame times, paced at real time; the playback was
// audited as a view before the answer; at the end the platform is told
// (MediaStatus), and its BYE ends the call.
func TestGBPlaybackRange(t *testing.T) {
	store := gbRecordedStore(t)
	ctx, spawn := gbTasks(t)
	side := newGBRecordedSide(t, ctx, spawn, store)
	sink := newUDPSink(t)
	from, to := gbEpoch.Add(13*time.Second), gbEpoch.Add(16*time.Second)
	start := time.Now()
	answer, err := side.live.Invite(ctx, device.Invite{CallID: "pb-1", ChannelID: gbTestChannel, From: "34020000002000000001",
		SDP: gbRangeOffer("Playback", sink.port(), "1100000001", from, to, "")})
	if err != nil {
		t.Fatal(err)
	}
	if a := string(answer); !strings.Contains(a, "s=Playback") || !strings.Contains(a, "y=1100000001") ||
		!strings.Contains(a, fmt.Sprintf("t=%d %d", from.Unix(), to.Unix())) {
		t.Errorf("answer:\n%s", a)
	}
	if len(side.audit.records) != 1 || !strings.Contains(side.audit.records[0], "gb28181:34020000002000000001 view north 127.0.0.1") ||
		!strings.Contains(side.audit.records[0], "gb28181:playback") || !strings.Contains(side.audit.records[0], "range:2026-03-01T12:00:03Z/2026-03-01T12:00:06Z") {
		t.Errorf("audit records %q", side.audit.records)
	}
	side.live.Ack(ctx, "pb-1")
	testrig.Until(t, "the end of the recording told", 20*time.Second, func() bool { return side.told(&side.finished, "pb-1") })
	took := time.Since(start)
	// The keyframe at 12 s up to the frame at 15.9 s.
	ps, frames := sink.stream()
	if frames != 40 {
		t.Errorf("%d frames sent, want 40", frames)
	}
	checkFrames(t, "playback", probeFile(t, ps), 40)
	if ts := sink.frameTimes(); len(ts) > 0 && ts[0] != 0 {
		t.Errorf("first RTP timestamp %d, want 0 (the first frame's)", ts[0])
	}
	t.Logf("4 s of recording played in %v", took.Round(time.Millisecond))
	if side.rec.active() != 1 {
		t.Errorf("%d recorded calls before the BYE, want 1 (the platform hangs up)", side.rec.active())
	}
	side.live.Bye(ctx, "pb-1")
	if side.rec.active() != 0 || side.live.active() != 0 {
		t.Errorf("calls after BYE: %d recorded, %d live", side.rec.active(), side.live.active())
	}
}

// tcpSink accepts nothing: it connects to the sender's TCP listener (the
// platform's a=setup:active) and reads RFC 4571 framed RTP.
type tcpSink struct {
	mu     sync.Mutex
	ps     []byte
	frames int
	done   chan struct{}
}

func dialTCPSink(t *testing.T, answer []byte) *tcpSink {
	m := regexp.MustCompile(`m=video (\d+) TCP/RTP/AVP`).FindSubmatch(answer)
	if m == nil {
		t.Fatalf("answer without a TCP port:\n%s", answer)
	}
	port, _ := strconv.Atoi(string(m[1]))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &tcpSink{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var hdr [2]byte
		buf := make([]byte, 65536)
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint16(hdr[:]))
			if _, err := io.ReadFull(c, buf[:n]); err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) != nil {
				return
			}
			s.mu.Lock()
			s.ps = append(s.ps, p.Payload...)
			if p.Marker {
				s.frames++
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// TestGBDownload: a Download INVITE (over TCP, the platform connecting)
// gets 26 s of recording unpaced, every frame (the sender's queue is
// never overrun), much faster than real time; it was audited as a
// download; the sender closes the stream at the end of the range.
func TestGBDownload(t *testing.T) {
	store := gbRecordedStore(t)
	ctx, spawn := gbTasks(t)
	side := newGBRecordedSide(t, ctx, spawn, store)
	from, to := gbEpoch.Add(2*time.Second), gbEpoch.Add(28*time.Second)
	start := time.Now()
	answer, err := side.live.Invite(ctx, device.Invite{CallID: "dl-1", ChannelID: gbTestChannel, From: "34020000002000000001",
		SDP: gbRangeOffer("Download", 0, "1100000002", from, to, "")})
	if err != nil {
		t.Fatal(err)
	}
	sink := dialTCPSink(t, answer)
	side.live.Ack(ctx, "dl-1")
	select {
	case <-sink.done: // the sender finished and closed the connection
	case <-time.After(30 * time.Second):
		t.Fatal("the download did not end")
	}
	took := time.Since(start)
	testrig.Until(t, "the end of the download told", 10*time.Second, func() bool { return side.told(&side.finished, "dl-1") })
	sink.mu.Lock()
	ps, frames := sink.ps, sink.frames
	sink.mu.Unlock()
	if frames != 260 {
		t.Errorf("%d frames downloaded, want 260 (2.0 s … 27.9 s)", frames)
	}
	checkFrames(t, "download", probeFile(t, ps), 260)
	t.Logf("26 s of recording downloaded in %v", took.Round(time.Millisecond))
	if took >= 26*time.Second {
		t.Errorf("26 s of recording took %v to download: paced, not unpaced", took)
	}
	if len(side.audit.records) != 1 || !strings.Contains(side.audit.records[0], " download north ") ||
		!strings.Contains(side.audit.records[0], "gb28181:download") {
		t.Errorf("audit records %q", side.audit.records)
	}
	side.live.Bye(ctx, "dl-1")
}

// info sends a MANSRTSP body as the platform's INFO would.
func info(t *testing.T, side *gbRecordedSide, call, body string) error {
	t.Helper()
	return side.live.Info(context.Background(), call, "Application/MANSRTSP", []byte(body))
}

// TestGBPlaybackControl steers a playback with MANSRTSP over INFO: PAUSE
// stops the packets, PLAY resumes them, a Range seeks (the RTP
// timestamps jump to the keyframe before the position), Scale 2.0 plays
// faster and 4.0 sends keyframes only; malformed or unsupported controls
// are refused with their SIP status; TEARDOWN ends the call and hangs up.
func TestGBPlaybackControl(t *testing.T) {
	store := gbRecordedStore(t)
	ctx, spawn := gbTasks(t)
	side := newGBRecordedSide(t, ctx, spawn, store)
	sink := newUDPSink(t)
	if _, err := side.live.Invite(ctx, device.Invite{CallID: "pb-2", ChannelID: gbTestChannel, From: "34020000002000000001",
		SDP: gbRangeOffer("Playback", sink.port(), "1100000003", gbEpoch, gbEpoch.Add(30*time.Second), "")}); err != nil {
		t.Fatal(err)
	}
	var se *device.StatusError
	if err := info(t, side, "pb-2", "PAUSE RTSP/1.0\r\nCSeq: 1\r\nPauseTime: now\r\n"); !errors.As(err, &se) || se.Code != 491 {
		t.Errorf("control before the ACK: %v, want 491", err)
	}
	side.live.Ack(ctx, "pb-2")
	testrig.Until(t, "ten frames", 10*time.Second, func() bool { return len(sink.frameTimes()) >= 10 })

	if err := info(t, side, "pb-2", "PAUSE RTSP/1.0\r\nCSeq: 2\r\nPauseTime: now\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a frame on its way
	paused := len(sink.frameTimes())
	time.Sleep(500 * time.Millisecond)
	if n := len(sink.frameTimes()); n != paused {
		t.Fatalf("paused: %d frames came after the pause settled", n-paused)
	}
	if err := info(t, side, "pb-2", "PLAY RTSP/1.0\r\nCSeq: 3\r\nRange: npt=now-\r\n"); err != nil {
		t.Fatal(err)
	}
	testrig.Until(t, "frames after the resume", 10*time.Second, func() bool { return len(sink.frameTimes()) > paused+3 })
	ts := sink.frameTimes()
	for i := 1; i < len(ts); i++ {
		if ts[i]-ts[i-1] != 9000 {
			t.Fatalf("frame %d: RTP timestamp %d after %d: the pause lost or repeated frames", i, ts[i], ts[i-1])
		}
	}

	// Seek to 20.5 s from the range's start: the keyframe at 20 s.
	before := len(sink.frameTimes())
	if err := info(t, side, "pb-2", "PLAY RTSP/1.0\r\nCSeq: 4\r\nRange: npt=20.5-\r\n"); err != nil {
		t.Fatal(err)
	}
	testrig.Until(t, "the frame at 20 s", 10*time.Second, func() bool {
		for _, x := range sink.frameTimes()[before:] {
			if x == 20*90000 {
				return true
			}
		}
		return false
	})
	for _, x := range sink.frameTimes()[before:] {
		if x == 20*90000 {
			break
		}
		if x > 10*90000 {
			t.Fatalf("a frame at %d ticks came between the seek and the keyframe at 20 s", x)
		}
	}

	if err := info(t, side, "pb-2", "PLAY RTSP/1.0\r\nCSeq: 5\r\nScale: 2.0\r\n"); err != nil {
		t.Fatal(err)
	}
	t0, n0 := time.Now(), len(sink.frameTimes())
	testrig.Until(t, "the frame at 23 s", 10*time.Second, func() bool {
		ts := sink.frameTimes()
		return ts[len(ts)-1] >= 23*90000
	})
	t.Logf("at Scale 2.0: %d frames (about 2 s of recording) in %v", len(sink.frameTimes())-n0, time.Since(t0).Round(time.Millisecond))

	if err := info(t, side, "pb-2", "PLAY RTSP/1.0\r\nCSeq: 6\r\nScale: 4.0\r\n"); err != nil {
		t.Fatal(err)
	}
	fast := len(sink.frameTimes())
	testrig.Until(t, "the frame at 28 s", 10*time.Second, func() bool {
		ts := sink.frameTimes()
		return ts[len(ts)-1] >= 28*90000
	})
	var between int
	for _, x := range sink.frameTimes()[fast:] {
		if x%(2*90000) != 0 {
			between++
		}
	}
	if between > 1 { // the frame in hand when the control came may go out
		t.Errorf("at Scale 4.0, %d frames that are not keyframes (every 2 s)", between)
	}

	for _, tc := range []struct {
		body string
		code int
	}{
		{"PLAY RTSP/1.0\r\nScale: 2.0\r\n", 400},
		{"PLAY RTSP/1.0\r\nCSeq: 7\r\nScale: 8.0\r\n", 488},
		{"PLAY RTSP/1.0\r\nCSeq: 8\r\nRange: npt=3600-\r\n", 488},
	} {
		if err := info(t, side, "pb-2", tc.body); !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("%q: %v, want %d", tc.body, err, tc.code)
		}
	}
	if err := info(t, side, "pb-2", "TEARDOWN RTSP/1.0\r\nCSeq: 9\r\n"); err != nil {
		t.Fatal(err)
	}
	if side.rec.active() != 0 {
		t.Errorf("%d recorded calls after TEARDOWN", side.rec.active())
	}
	testrig.Until(t, "the hang-up", 5*time.Second, func() bool { return side.told(&side.hungUp, "pb-2") })
	if err := info(t, side, "pb-2", "PLAY RTSP/1.0\r\nCSeq: 10\r\n"); !errors.As(err, &se) || se.Code != 488 {
		t.Errorf("control after the call: %v, want 488 (not a call of ours)", err)
	}
}

// TestGBRecordedRefusals: a range with no recording, a live-style t=0 0
// playback, an unknown channel and a playback that cannot be audited are
// refused with their SIP status; nothing is left running.
func TestGBRecordedRefusals(t *testing.T) {
	store := gbRecordedStore(t)
	ctx, spawn := gbTasks(t)
	side := newGBRecordedSide(t, ctx, spawn, store)
	refused := func(what string, inv device.Invite, code int) {
		t.Helper()
		_, err := side.live.Invite(ctx, inv)
		var se *device.StatusError
		if !errors.As(err, &se) || se.Code != code {
			t.Errorf("%s: %v, want SIP %d", what, err, code)
		}
	}
	refused("nothing recorded", device.Invite{CallID: "a", ChannelID: gbTestChannel,
		SDP: gbRangeOffer("Playback", 9000, "1100000004", gbEpoch.Add(time.Hour), gbEpoch.Add(2*time.Hour), "")}, 404)
	noRange := strings.Replace(string(gbRangeOffer("Playback", 9000, "1100000005", gbEpoch, gbEpoch, "")),
		fmt.Sprintf("t=%d %d", gbEpoch.Unix(), gbEpoch.Unix()), "t=0 0", 1)
	refused("no range", device.Invite{CallID: "b", ChannelID: gbTestChannel, SDP: []byte(noRange)}, 488)
	refused("unknown channel", device.Invite{CallID: "c", ChannelID: "34020000001320000099",
		SDP: gbRangeOffer("Download", 9000, "1100000006", gbEpoch, gbEpoch.Add(10*time.Second), "a=downloadspeed:4\r\n")}, 404)
	side.audit.fail = errors.New("outbox full")
	refused("not audited", device.Invite{CallID: "d", ChannelID: gbTestChannel,
		SDP: gbRangeOffer("Download", 9000, "1100000007", gbEpoch, gbEpoch.Add(10*time.Second), "a=downloadspeed:4\r\n")}, 503)
	if side.rec.active() != 0 || side.live.active() != 0 {
		t.Errorf("calls after refusals: %d recorded, %d live", side.rec.active(), side.live.active())
	}
}
