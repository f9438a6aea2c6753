package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// MaxPayload is the most PS bytes in one RTP packet: with the 12-byte RTP
// header, 8 of UDP and 20 of IPv4 a packet stays under a 1500-byte MTU
// with room for tunnels, as GB platforms expect.
const MaxPayload = 1400

// Queue bounds of a sender that its Config leaves at zero.
const (
	DefaultQueueFrames = 100             // 4 s at 25 fps
	DefaultQueueBytes  = 8 * 1024 * 1024 // several keyframes of a 4K main stream
)

// ErrClosed is returned by Run on a sender that was closed or already ran.
var ErrClosed = errors.New("media: sender closed")

// Config says where and how a Sender sends one viewer's stream.
type Config struct {
	Transport Transport
	// Local is the address to bind (UDP) or listen on (TCP passive); port 0
	// picks a free one (LocalPort says which). TCP active ignores it.
	Local netip.AddrPort
	// Remote is where the platform receives: the UDP destination or the
	// TCP address to connect to. TCP passive ignores it: whoever connects
	// first is the viewer.
	Remote      netip.AddrPort
	SSRC        uint32 // from the offer's y=
	PayloadType uint8  // from the offer's rtpmap (96)
	// QueueFrames and QueueBytes bound the frames waiting for the network
	// (0: the defaults). A frame that does not fit is dropped, and so is
	// every frame after it up to the next keyframe that fits.
	QueueFrames int
	QueueBytes  int
	// WriteTimeout, when set, ends Run with an error when the peer takes
	// no data for that long (a dead TCP viewer); 0 waits for the owner's
	// context.
	WriteTimeout time.Duration
	Log          *slog.Logger
}

// Frame is one program-stream pack (streams/ps) to send.
type Frame struct {
	PS  []byte // sent as is; the sender keeps it until sent, so it must not change
	PTS int64  // 90 kHz: the RTP timestamp (modulo 2^32)
	Key bool   // the pack holds a keyframe (with system header and PSM)
}

// Stats counts what a sender did.
type Stats struct {
	Frames      int64 // handed to the network in full
	Packets     int64 // RTP packets
	Bytes       int64 // RTP bytes, framing included
	Dropped     int64 // frames dropped because the queue was full (and those after, to the next keyframe)
	Skipped     int64 // frames before the first keyframe: a viewer starts at one
	PeakQueued  int64 // most bytes ever waiting in the queue
	QueuedBytes int64 // bytes waiting now
}

// Sender sends one viewer's RTP stream. WriteFrame never blocks: frames
// wait in a bounded queue that Run drains to the network, so a slow or
// stalled viewer loses frames (whole ones, resuming at a keyframe) but
// never holds up the camera or the other viewers, each of which has its
// own Sender fed with the same frames.
type Sender struct {
	cfg  Config
	log  *slog.Logger
	udp  *net.UDPConn
	ln   *net.TCPListener
	wake chan struct{} // capacity 1: the queue has frames

	mu      sync.Mutex
	q       []Frame
	qBytes  int
	waitKey bool         // dropping until a keyframe
	started bool         // a keyframe was queued: later gaps count as Dropped
	conn    *net.TCPConn // the viewer's connection, once made
	closed  bool
	ran     bool
	finish  bool // Finish was called: Run ends once the queue is sent

	frames, packets, bytes, dropped, skipped, peak, queued atomic.Int64
}

// NewSender opens the sender's socket (UDP) or listener (TCP passive) so
// that its port can go into the SDP answer before Run starts.
func NewSender(cfg Config) (*Sender, error) {
	if cfg.QueueFrames <= 0 {
		cfg.QueueFrames = DefaultQueueFrames
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Sender{cfg: cfg, wake: make(chan struct{}, 1), waitKey: true,
		log: log.With("transport", cfg.Transport.String(), "ssrc", cfg.SSRC)}
	var err error
	switch cfg.Transport {
	case UDP:
		if !cfg.Remote.IsValid() {
			return nil, errors.New("media: UDP sender without a remote address")
		}
		s.udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Local))
	case TCPPassive:
		s.ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(cfg.Local))
	case TCPActive:
		if !cfg.Remote.IsValid() {
			return nil, errors.New("media: TCP active sender without a remote address")
		}
	default:
		return nil, fmt.Errorf("media: unknown transport %v", cfg.Transport)
	}
	if err != nil {
		return nil, fmt.Errorf("media: %v sender: %w", cfg.Transport, err)
	}
	return s, nil
}

// LocalPort is the port of the UDP socket or of the TCP listener (for
// the answer's m= line); 0 for TCP active, whose port the kernel picks
// when Run connects.
func (s *Sender) LocalPort() int {
	switch {
	case s.udp != nil:
		return s.udp.LocalAddr().(*net.UDPAddr).Port
	case s.ln != nil:
		return s.ln.Addr().(*net.TCPAddr).Port
	}
	return 0
}

// Stats returns the sender's counters.
func (s *Sender) Stats() Stats {
	return Stats{Frames: s.frames.Load(), Packets: s.packets.Load(), Bytes: s.bytes.Load(),
		Dropped: s.dropped.Load(), Skipped: s.skipped.Load(), PeakQueued: s.peak.Load(), QueuedBytes: s.queued.Load()}
}

// WriteFrame queues a frame for the viewer without blocking and reports
// whether it was queued. The stream starts at a keyframe. When the queue
// is full (QueueFrames frames, or QueueBytes bytes — one frame is taken
// into an empty queue whatever its size) the frame is dropped, and the
// frames after it too until a keyframe fits: the viewer sees a jump to the
// next keyframe, never a broken picture.
func (s *Sender) WriteFrame(f Frame) bool {
	s.mu.Lock()
	switch {
	case s.closed || s.finish:
		s.mu.Unlock()
		return false
	case s.waitKey && !f.Key:
		if s.started {
			s.dropped.Add(1)
		} else {
			s.skipped.Add(1)
		}
		s.mu.Unlock()
		return false
	case len(s.q) > 0 && (len(s.q) >= s.cfg.QueueFrames || s.qBytes+len(f.PS) > s.cfg.QueueBytes):
		if !s.waitKey {
			s.log.Warn("gb28181 viewer too slow, dropping to the next keyframe", "queued_frames", len(s.q), "queued_bytes", s.qBytes)
		}
		s.waitKey = true
		s.dropped.Add(1)
		s.mu.Unlock()
		return false
	}
	s.waitKey, s.started = false, true
	s.q = append(s.q, f)
	s.qBytes += len(f.PS)
	s.queued.Store(int64(s.qBytes))
	if int64(s.qBytes) > s.peak.Load() {
		s.peak.Store(int64(s.qBytes))
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // already signalled
	}
	return true
}

// Finish ends the stream at its end (the end of a Playback or Download
// file): frames are refused from now on, and Run returns nil once those
// already queued are sent.
func (s *Sender) Finish() {
	s.mu.Lock()
	s.finish = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take empties the queue into batch (reusing its memory); last is true
// when Finish was called, so nothing comes after this batch.
func (s *Sender) take(batch []Frame) (_ []Frame, last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch = append(batch[:0], s.q...)
	clear(s.q)
	s.q = s.q[:0]
	s.qBytes = 0
	s.queued.Store(0)
	return batch, s.finish
}

// Close ends the sender: later frames are refused and its socket,
// listener and connection are closed, which ends a Run in progress (with
// an error, as if the network had failed). Run closes the sender when it
// returns, so Close is needed only for a sender whose Run never started or
// to end one without its context. It is safe to call more than once.
func (s *Sender) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *Sender) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	clear(s.q)
	s.q, s.qBytes = nil, 0
	s.queued.Store(0)
	if s.udp != nil {
		s.udp.Close()
	}
	if s.ln != nil {
		s.ln.Close()
	}
	if s.conn != nil {
		s.conn.Close()
	}
}

// connected records the viewer's connection so that Close can end it;
// false when the sender was closed meanwhile.
func (s *Sender) connected(c *net.TCPConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conn = c
	return true
}

// Run connects (TCP active) or waits for the platform to connect (TCP
// passive), then sends queued frames until ctx ends or Finish's frames
// are out (it then returns nil), or the network fails. The sender is
// closed when Run returns.
func (s *Sender) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.ran {
		s.mu.Unlock()
		return ErrClosed
	}
	s.ran = true
	s.mu.Unlock()
	defer s.Close()

	// Everything that blocks on the network (dial, accept, write) is
	// closed when ctx ends.
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()

	var w packetWriter
	switch s.cfg.Transport {
	case UDP:
		w = &udpWriter{conn: s.udp, to: s.cfg.Remote}
	case TCPActive:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.cfg.Remote.String())
		if err != nil {
			return s.end(ctx, fmt.Errorf("media: connect to %v: %w", s.cfg.Remote, err))
		}
		if !s.connected(c.(*net.TCPConn)) {
			return s.end(ctx, ErrClosed)
		}
		w = newTCPWriter(c.(*net.TCPConn))
	case TCPPassive:
		c, err := s.ln.AcceptTCP()
		if err != nil {
			return s.end(ctx, fmt.Errorf("media: accept on %v: %w", s.ln.Addr(), err))
		}
		s.ln.Close() // one viewer per sender
		if !s.connected(c) {
			return s.end(ctx, ErrClosed)
		}
		w = newTCPWriter(c)
	}
	s.log.Info("gb28181 stream started", "remote", w.remote())

	pk := packetizer{pt: s.cfg.PayloadType, ssrc: s.cfg.SSRC, seq: uint16(rand.Uint32())}
	var batch []Frame
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
		var last bool
		batch, last = s.take(batch)
		for i := range batch {
			if s.cfg.WriteTimeout > 0 {
				w.deadline(time.Now().Add(s.cfg.WriteTimeout))
			}
			err := pk.packetize(batch[i].PS, batch[i].PTS, func(p []byte) error {
				n, err := w.write(p)
				s.packets.Add(1)
				s.bytes.Add(int64(n))
				return err
			})
			if err == nil {
				err = w.flush()
			}
			if err != nil {
				return s.end(ctx, fmt.Errorf("media: send to %v: %w", w.remote(), err))
			}
			s.frames.Add(1)
			batch[i] = Frame{} // let the frame's memory go
		}
		if last {
			s.log.Info("gb28181 stream finished", "frames", s.frames.Load())
			return nil
		}
	}
}

// end turns a network error caused by the owner's cancellation into nil.
func (s *Sender) end(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// packetizer cuts a frame's PS bytes into RTP packets (RFC 3550 §5.1):
// every packet has the frame's timestamp, the last one the marker bit.
type packetizer struct {
	pt   uint8
	ssrc uint32
	seq  uint16
	buf  [12 + MaxPayload]byte
}

func (p *packetizer) packetize(ps []byte, pts int64, send func([]byte) error) error {
	for len(ps) > 0 {
		n := min(len(ps), MaxPayload)
		h := rtp.Header{Version: 2, PayloadType: p.pt, SequenceNumber: p.seq,
			Timestamp: uint32(pts), SSRC: p.ssrc, Marker: n == len(ps)}
		hn, err := h.MarshalTo(p.buf[:])
		if err != nil {
			return err
		}
		copy(p.buf[hn:], ps[:n])
		if err := send(p.buf[:hn+n]); err != nil {
			return err
		}
		p.seq++
		ps = ps[n:]
	}
	return nil
}

// packetWriter sends RTP packets on one transport.
type packetWriter interface {
	write(pkt []byte) (int, error) // bytes put on the wire, framing included
	flush() error                  // at the end of each frame
	deadline(t time.Time)
	remote() string
}

type udpWriter struct {
	conn *net.UDPConn
	to   netip.AddrPort
}

func (u *udpWriter) write(p []byte) (int, error) { return u.conn.WriteToUDPAddrPort(p, u.to) }
func (u *udpWriter) flush() error                { return nil }
func (u *udpWriter) deadline(t time.Time)        { _ = u.conn.SetWriteDeadline(t) }
func (u *udpWriter) remote() string              { return u.to.String() }
func (u *udpWriter) close()                      { u.conn.Close() }

// tcpWriter frames RTP packets per RFC 4571 §2: a 16-bit big-endian length
// before each packet; a frame's packets go out in as few writes as the
// buffer allows.
type tcpWriter struct {
	conn *net.TCPConn
	bw   *bufio.Writer
}

func newTCPWriter(c *net.TCPConn) *tcpWriter {
	return &tcpWriter{conn: c, bw: bufio.NewWriterSize(c, 64*1024)}
}

func (t *tcpWriter) write(p []byte) (int, error) {
	if err := t.bw.WriteByte(byte(len(p) >> 8)); err != nil {
		return 0, err
	}
	if err := t.bw.WriteByte(byte(len(p))); err != nil {
		return 0, err
	}
	n, err := t.bw.Write(p)
	return 2 + n, err
}
func (t *tcpWriter) flush() error         { return t.bw.Flush() }
func (t *tcpWriter) deadline(d time.Time) { _ = t.conn.SetWriteDeadline(d) }
func (t *tcpWriter) remote() string       { return t.conn.RemoteAddr().String() }
