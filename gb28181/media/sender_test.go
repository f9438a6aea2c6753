package media

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/ps"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// clip is a 2 s H.264 clip (GOP 25) as access units.
type clip struct {
	aus [][][]byte
	pts []int64 // 90 kHz, from 0
}

var (
	clipOnce sync.Once
	theClip  clip
	clipErr  error
)

func testClip(t *testing.T) clip {
	t.Helper()
	clipOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gbmedia-")
		if err != nil {
			clipErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := testrig.Testsrc(t, filepath.Join(dir, "in.h264"), 2, "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25")
		_, pkts, err := av.ReadFile(path)
		if err != nil {
			clipErr = err
			return
		}
		for _, p := range pkts {
			theClip.aus = append(theClip.aus, p.AU)
			theClip.pts = append(theClip.pts, int64(p.PTS)*9/100000)
		}
	})
	if clipErr != nil {
		t.Fatal(clipErr)
	}
	if len(theClip.aus) != 50 {
		t.Fatalf("clip has %d frames", len(theClip.aus))
	}
	return theClip
}

// feeder muxes the clip, looped, into frames for the senders.
type feeder struct {
	c    clip
	m    *ps.Muxer
	n    int // frames made
	loop int64
}

func newFeeder(t *testing.T) *feeder {
	m, err := ps.New(ps.H264)
	if err != nil {
		t.Fatal(err)
	}
	return &feeder{c: testClip(t), m: m}
}

func (f *feeder) next(t *testing.T) Frame {
	i := f.n % len(f.c.aus)
	pts := 90000 + int64(f.n/len(f.c.aus))*2*90000 + f.c.pts[i]
	b, key, err := f.m.Append(nil, f.c.aus[i], pts, pts)
	if err != nil {
		t.Fatal(err)
	}
	f.n++
	return Frame{PS: b, PTS: pts, Key: key}
}

// received is one frame reassembled from RTP packets.
type received struct {
	ts uint32
	ps []byte
}

// receiver is the platform's side in the test: it checks every RTP packet
// (version, payload type, SSRC, sequence continuity, one timestamp per
// frame, marker on the last packet) and hands back whole frames.
type receiver struct {
	ssrc   uint32
	pt     uint8
	frames chan received
	errs   chan error
	seq    uint16
	begun  bool
	cur    []byte
	curTS  uint32
}

func newReceiver(ssrc uint32, pt uint8) *receiver {
	return &receiver{ssrc: ssrc, pt: pt, frames: make(chan received, 100000), errs: make(chan error, 1)}
}

func (r *receiver) fail(err error) {
	select {
	case r.errs <- err:
	default:
	}
}

func (r *receiver) packet(b []byte) error {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return err
	}
	switch {
	case p.Version != 2 || p.PayloadType != r.pt || p.SSRC != r.ssrc || p.Padding || p.Extension || len(p.CSRC) > 0:
		return fmt.Errorf("bad RTP header %+v", p.Header)
	case len(p.Payload) == 0 || len(p.Payload) > MaxPayload:
		return fmt.Errorf("payload of %d bytes", len(p.Payload))
	case r.begun && p.SequenceNumber != r.seq+1:
		return fmt.Errorf("sequence %d after %d", p.SequenceNumber, r.seq)
	case len(r.cur) > 0 && p.Timestamp != r.curTS:
		return fmt.Errorf("timestamp %d inside the frame of %d", p.Timestamp, r.curTS)
	}
	r.begun, r.seq, r.curTS = true, p.SequenceNumber, p.Timestamp
	r.cur = append(r.cur, p.Payload...)
	if p.Marker {
		r.frames <- received{ts: p.Timestamp, ps: r.cur}
		r.cur = nil
	}
	return nil
}

// readUDP receives datagrams from the sender's port only.
func (r *receiver) readUDP(conn *net.UDPConn, from int) {
	buf := make([]byte, 2048)
	for {
		n, addr, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed by the test
		}
		if int(addr.Port()) != from {
			r.fail(fmt.Errorf("datagram from port %d, the sender's is %d", addr.Port(), from))
			return
		}
		if err := r.packet(buf[:n]); err != nil {
			r.fail(err)
			return
		}
	}
}

// readTCP reads RFC 4571 frames until the connection ends.
func (r *receiver) readTCP(c net.Conn) {
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		pkt := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, pkt); err != nil {
			r.fail(fmt.Errorf("RFC 4571 frame cut: %w", err))
			return
		}
		if err := r.packet(pkt); err != nil {
			r.fail(err)
			return
		}
	}
}

// wait returns the next whole frame.
func (r *receiver) wait(t *testing.T) received {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case err := <-r.errs:
		t.Fatal(err)
	}
	panic("unreachable")
}

// judge writes the received program stream to a file that ffprobe reads
// as -f mpeg, and checks it against what was sent.
func judge(t *testing.T, got []received, sentPTS []int64) {
	t.Helper()
	if len(got) != len(sentPTS) {
		t.Fatalf("received %d frames, sent %d", len(got), len(sentPTS))
	}
	var all []byte
	for i, f := range got {
		if f.ts != uint32(sentPTS[i]) {
			t.Fatalf("frame %d: RTP timestamp %d, want %d", i, f.ts, uint32(sentPTS[i]))
		}
		all = append(all, f.ps...)
	}
	path := filepath.Join(t.TempDir(), "received.mpg")
	if err := os.WriteFile(path, all, 0o644); err != nil {
		t.Fatal(err)
	}
	p := testrig.FFprobePS(t, path)
	if p.Codec != "h264" || p.Width != 320 || p.Height != 240 || len(p.FramePTS) != len(sentPTS) {
		t.Fatalf("ffprobe: %s %dx%d, %d frames; sent %d", p.Codec, p.Width, p.Height, len(p.FramePTS), len(sentPTS))
	}
	for i := range p.FramePTS {
		if p.FramePTS[i] != sentPTS[i] {
			t.Fatalf("decoded frame %d: PTS %d, want %d", i, p.FramePTS[i], sentPTS[i])
		}
	}
}

// platform is the other end of one transport, set up from an offer the
// way a GB platform would: it listens (UDP, TCP for setup:passive) or
// connects to the port in our answer (setup:active).
type platform struct {
	offer   string
	rcv     *receiver
	udp     *net.UDPConn
	ln      net.Listener
	connect func(port int) // setup:active: dial the answer's port
	closers []io.Closer
}

func newPlatform(t *testing.T, tr Transport, ssrc string) *platform {
	t.Helper()
	p := &platform{}
	t.Cleanup(func() {
		for _, c := range p.closers {
			c.Close()
		}
	})
	var port int
	var proto, setup string
	switch tr {
	case UDP:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
		if err != nil {
			t.Fatal(err)
		}
		p.udp, port, proto = c, c.LocalAddr().(*net.UDPAddr).Port, "RTP/AVP"
		p.closers = append(p.closers, c)
	case TCPActive: // the platform listens
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.ln, port, proto, setup = ln, ln.Addr().(*net.TCPAddr).Port, "TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n"
		p.closers = append(p.closers, ln)
	case TCPPassive: // the platform connects
		port, proto, setup = 9, "TCP/RTP/AVP", "a=setup:active\r\na=connection:new\r\n"
	}
	p.offer = fmt.Sprintf("v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d %s 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n%sy=%s\r\nf=\r\n", port, proto, setup, ssrc)
	return p
}

// start begins receiving from the sender s (whose answer gave port).
func (p *platform) start(t *testing.T, s *Sender, o *Offer) {
	t.Helper()
	p.rcv = newReceiver(o.SSRC, o.PayloadType)
	switch o.Transport {
	case UDP:
		go p.rcv.readUDP(p.udp, s.LocalPort())
	case TCPActive:
		go func() {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.closers = append(p.closers, c)
			p.rcv.readTCP(c)
		}()
	case TCPPassive:
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.LocalPort()))
		if err != nil {
			t.Fatal(err)
		}
		p.closers = append(p.closers, c)
		go p.rcv.readTCP(c)
	}
}

// session parses the platform's offer, opens a sender for it, answers,
// and runs it until the test ends.
func session(t *testing.T, p *platform, q Config) (*Sender, *Offer, chan error) {
	t.Helper()
	o, err := ParseOffer([]byte(p.offer))
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.SenderConfig(netip.AddrPortFrom(loopback, 0))
	cfg.QueueFrames, cfg.QueueBytes = q.QueueFrames, q.QueueBytes
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Answer(AnswerParams{DeviceID: "34020000001320000001", Addr: loopback, Port: max(s.LocalPort(), 1)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s, o, done
}

// stalledDial connects to a sender with a tiny receive buffer, for a
// viewer that stops reading.
func stalledDial(port int) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	return d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

// One viewer per transport gets the clip frame by frame; ffprobe judges
// what arrived.
func TestSendTransports(t *testing.T) {
	for _, tr := range []Transport{UDP, TCPActive, TCPPassive} {
		t.Run(tr.String(), func(t *testing.T) {
			p := newPlatform(t, tr, "0100000042")
			s, o, _ := session(t, p, Config{})
			if o.Transport != tr {
				t.Fatalf("offer gave transport %v", o.Transport)
			}
			p.start(t, s, o)
			f := newFeeder(t)
			var got []received
			var sent []int64
			for range 50 {
				fr := f.next(t)
				if !s.WriteFrame(fr) {
					t.Fatal("frame refused")
				}
				sent = append(sent, fr.PTS)
				got = append(got, p.rcv.wait(t))
			}
			judge(t, got, sent)
			st := s.Stats()
			if st.Frames != 50 || st.Dropped != 0 || st.Skipped != 0 || st.Packets < 50 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// A viewer whose TCP connection stalls loses frames, whole and up to a
// keyframe, while the camera side never blocks, the queue stays bounded
// and another viewer of the same camera gets every frame. When the slow
// viewer reads again, what it got is a valid stream.
func TestSlowViewer(t *testing.T) {
	const queueBytes = 64 * 1024
	slow := newPlatform(t, TCPPassive, "0100000007")
	slowS, slowO, _ := session(t, slow, Config{QueueFrames: 1000, QueueBytes: queueBytes})
	fast := newPlatform(t, UDP, "0100000008")
	fastS, fastO, _ := session(t, fast, Config{})
	fast.start(t, fastS, fastO)

	// The slow platform connects with a tiny receive window and reads
	// nothing until told.
	conn, err := stalledDial(slowS.LocalPort())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	slow.rcv = newReceiver(slowO.SSRC, slowO.PayloadType)
	resume := make(chan struct{})
	go func() {
		<-resume
		slow.rcv.readTCP(conn)
	}()

	f := newFeeder(t)
	var fastGot []received
	var allPTS []int64
	maxFrame, accepted := 0, 0
	feed := func() (Frame, bool) {
		fr := f.next(t)
		maxFrame = max(maxFrame, len(fr.PS))
		ok := slowS.WriteFrame(fr) // never blocks, whatever the slow viewer does
		if ok {
			accepted++
		}
		if !fastS.WriteFrame(fr) {
			t.Fatal("the fast viewer lost a frame")
		}
		allPTS = append(allPTS, fr.PTS)
		fastGot = append(fastGot, fast.rcv.wait(t))
		return fr, ok
	}
	// Feed until the slow viewer has dropped frames for a whole GOP.
	for slowS.Stats().Dropped < 50 {
		if f.n > 50000 {
			t.Fatalf("a stalled viewer never dropped: %+v", slowS.Stats())
		}
		feed()
	}
	st := slowS.Stats()
	if st.PeakQueued > int64(queueBytes+maxFrame) {
		t.Fatalf("queue grew to %d bytes, bound %d + one frame", st.PeakQueued, queueBytes)
	}
	// Finish the GOP and let the slow viewer read; feed whole GOPs until
	// it takes one to its end, then it must catch up to that frame.
	for f.n%25 != 0 {
		feed()
	}
	close(resume)
	var last Frame
	for took := false; !took; {
		if f.n > 50000 {
			t.Fatalf("the slow viewer never caught up: %+v", slowS.Stats())
		}
		for range 25 {
			last, took = feed()
		}
	}
	var slowGot []received
	for {
		r := slow.rcv.wait(t)
		slowGot = append(slowGot, r)
		if r.ts == uint32(last.PTS) {
			break
		}
	}

	judge(t, fastGot, allPTS)
	if fs := fastS.Stats(); fs.Dropped != 0 || fs.Frames != int64(len(allPTS)) {
		t.Fatalf("fast viewer: %+v", fs)
	}
	st = slowS.Stats()
	if accepted != len(slowGot) || int64(accepted)+st.Dropped != int64(len(allPTS)) || st.Skipped != 0 {
		t.Fatalf("slow viewer: %+v, received %d of %d", st, len(slowGot), len(allPTS))
	}
	// The slow viewer's frames are a subsequence of what was sent; each
	// jump starts at a keyframe (every 25th frame).
	var slowPTS []int64
	j := 0
	for _, r := range slowGot {
		skipped := false
		for uint32(allPTS[j]) != r.ts {
			j, skipped = j+1, true
		}
		if skipped && j%25 != 0 {
			t.Fatalf("after a drop the slow viewer resumed at frame %d, not at a keyframe", j)
		}
		slowPTS = append(slowPTS, allPTS[j])
		j++
	}
	judge(t, slowGot, slowPTS)
	t.Logf("%d frames: slow viewer got %d, dropped %d, peak queue %d bytes", len(allPTS), len(slowGot), st.Dropped, st.PeakQueued)
}

// Run ends with its owner's context wherever it is waiting: accepting,
// connecting, or idle between frames; a closed sender refuses frames.
func TestSenderEndsWithContext(t *testing.T) {
	leaks := testrig.CheckGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts nothing: the dial waits in the backlog or completes
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	remote := netip.MustParseAddrPort(ln.Addr().String())
	for _, cfg := range []Config{
		{Transport: UDP, Local: netip.AddrPortFrom(loopback, 0), Remote: remote},
		{Transport: TCPActive, Remote: remote},
		{Transport: TCPPassive, Local: netip.AddrPortFrom(loopback, 0)},
	} {
		s, err := NewSender(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("%v: Run: %v", cfg.Transport, err)
		}
		if s.WriteFrame(Frame{PS: []byte{0, 0, 1, 0xBA}, Key: true}) {
			t.Fatalf("%v: a closed sender took a frame", cfg.Transport)
		}
		if err := s.Run(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("%v: second Run: %v", cfg.Transport, err)
		}
	}
	// A sender that never ran is released by Close.
	s, err := NewSender(Config{Transport: TCPPassive, Local: netip.AddrPortFrom(loopback, 0)})
	if err != nil {
		t.Fatal(err)
	}
	port := s.LocalPort()
	s.Close()
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Fatal("the listener of a closed sender still accepts")
	}
	leaks.Check()
}

// With WriteTimeout, a viewer that takes nothing ends Run with an error
// instead of holding the sender until the session ends.
func TestSenderWriteTimeout(t *testing.T) {
	s, err := NewSender(Config{Transport: TCPPassive, Local: netip.AddrPortFrom(loopback, 0), SSRC: 1, PayloadType: 96,
		WriteTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	conn, err := stalledDial(s.LocalPort())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Feed until the socket buffers are full and a write times out.
	f := newFeeder(t)
	for err == nil {
		if f.n > 1_000_000 {
			t.Fatalf("no write timeout: %+v", s.Stats())
		}
		s.WriteFrame(f.next(t))
		select {
		case err = <-done:
		default:
		}
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Run: %v, want a write timeout", err)
	}
	if st := s.Stats(); st.Dropped == 0 {
		t.Fatalf("stats %+v", st)
	}
}
