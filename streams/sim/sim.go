// Package sim is a camera simulator: an RTSP server (gortsplib) that plays
// real clips as live cameras, looping at their real frame rate with
// continuous RTP timestamps and RTCP sender reports that carry the wall
// clock of each frame. Tests use that wall clock as ground truth: a frame at
// clip time t of loop k was "seen" at Epoch + k·Duration + t.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/rtcptime"
)

// Clip is a video file loaded into memory, ready to be served.
type Clip struct {
	Path    string
	Info    av.FileInfo
	Packets []av.Packet
	// Duration of one loop: the last frame's PTS plus one frame.
	Duration time.Duration
}

// LoadClip reads an H.264 or H.265 file whole.
func LoadClip(path string) (*Clip, error) {
	info, pkts, err := av.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(pkts) == 0 {
		return nil, fmt.Errorf("sim: %s has no video frames", path)
	}
	frame := time.Second / 10
	if info.FPS > 0 {
		frame = time.Duration(float64(time.Second) / info.FPS)
	}
	return &Clip{Path: path, Info: info, Packets: pkts, Duration: pkts[len(pkts)-1].PTS + frame}, nil
}

// Camera is one path served by the simulator.
type Camera struct {
	Path string // URL path without the leading slash, e.g. "gate-north"
	Clip *Clip
}

// Config configures a Server.
type Config struct {
	Address  string // host:port to listen on, e.g. "127.0.0.1:8554" or "127.0.0.1:0"
	Cameras  []Camera
	User     string // optional RTSP credentials; empty means none
	Password string
	// Auth restricts the accepted methods: "basic", "digest" or "" for
	// both, as most cameras accept.
	Auth string
	// UDP also offers RTP/RTCP over UDP on a free port pair of the host.
	UDP bool
	// ClockOffset skews the wall clock the camera reports in RTCP sender
	// reports, like a camera whose NTP is off.
	ClockOffset time.Duration
	// ReportInterval is how often each camera sends an RTCP sender report
	// (default 1 s; cameras send one every 1–5 s).
	ReportInterval time.Duration
	Log            *slog.Logger
}

// Server serves every configured camera until Close.
type Server struct {
	cfg    Config
	log    *slog.Logger
	srv    *gortsplib.Server
	paths  map[string]*path
	addr   string
	epoch  time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	frozen map[string]bool
}

type path struct {
	cam    Camera
	media  *description.Media
	stream *gortsplib.ServerStream
}

// Start binds the address, starts every camera's clock and serves.
func Start(cfg Config) (*Server, error) {
	if len(cfg.Cameras) == 0 {
		return nil, errors.New("sim: no cameras")
	}
	s := &Server{cfg: cfg, log: cfg.Log, paths: map[string]*path{}, frozen: map[string]bool{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "sim")
	if s.cfg.ReportInterval <= 0 {
		s.cfg.ReportInterval = time.Second
	}
	s.srv = &gortsplib.Server{
		Handler:     (*handler)(s),
		RTSPAddress: cfg.Address,
		// gortsplib v4.16.2 writes the NTP fraction as nanoseconds; the
		// simulator writes RFC 3550 sender reports itself (play).
		DisableRTCPSenderReports: true,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err == nil {
				s.addr = l.Addr().String()
			}
			return l, err
		},
	}
	switch cfg.Auth {
	case "":
	case "basic":
		s.srv.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodBasic}
	case "digest":
		s.srv.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodDigestMD5}
	default:
		return nil, fmt.Errorf("sim: unknown auth method %q", cfg.Auth)
	}
	if cfg.UDP {
		host, _, err := net.SplitHostPort(cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		rtpAddr, rtcpAddr, err := freeUDPPair(host)
		if err != nil {
			return nil, err
		}
		s.srv.UDPRTPAddress, s.srv.UDPRTCPAddress = rtpAddr, rtcpAddr
	}
	if err := s.srv.Start(); err != nil {
		return nil, fmt.Errorf("sim: listen %s: %w", cfg.Address, err)
	}
	for _, c := range cfg.Cameras {
		p, err := s.newPath(c)
		if err != nil {
			s.srv.Close()
			return nil, err
		}
		s.paths[c.Path] = p
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.epoch = time.Now().UTC()
	for _, p := range s.paths {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.play(ctx, p)
		}()
	}
	s.log.Info("simulated cameras serving", "addr", s.addr, "cameras", len(s.paths))
	return s, nil
}

func (s *Server) newPath(c Camera) (*path, error) {
	var forma format.Format
	switch c.Clip.Info.Codec {
	case av.H264:
		forma = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: c.Clip.Info.SPS, PPS: c.Clip.Info.PPS}
	case av.H265:
		forma = &format.H265{PayloadTyp: 96, VPS: c.Clip.Info.VPS, SPS: c.Clip.Info.SPS, PPS: c.Clip.Info.PPS}
	default:
		return nil, fmt.Errorf("sim: %s: unsupported codec %v", c.Clip.Path, c.Clip.Info.Codec)
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	stream := &gortsplib.ServerStream{Server: s.srv, Desc: &description.Session{Medias: []*description.Media{media}}}
	if err := stream.Initialize(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return &path{cam: c, media: media, stream: stream}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// URL is the RTSP URL of a camera path.
func (s *Server) URL(p string) string { return "rtsp://" + s.addr + "/" + p }

// Epoch is the wall-clock (UTC) instant at which every clip's first loop
// started; a frame at clip time t of loop k is sent at Epoch + k·D + t.
func (s *Server) Epoch() time.Time { return s.epoch }

// Freeze makes a camera path hang (true) — the connection stays up but no
// video flows, as with a crashed encoder — or resume (false).
func (s *Server) Freeze(path string, frozen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen[path] = frozen
}

func (s *Server) isFrozen(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frozen[path]
}

// freeUDPPair finds an even/odd pair of free UDP ports, as RTP/RTCP need.
func freeUDPPair(host string) (string, string, error) {
	for range 50 {
		a, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", "", fmt.Errorf("sim: %w", err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if port%2 == 1 {
			port--
		}
		ok := true
		for _, p := range []int{port, port + 1} {
			c, err := net.ListenPacket("udp", net.JoinHostPort(host, fmt.Sprint(p)))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return net.JoinHostPort(host, fmt.Sprint(port)), net.JoinHostPort(host, fmt.Sprint(port+1)), nil
		}
	}
	return "", "", errors.New("sim: no free UDP port pair")
}

// Close stops serving and waits for the players to end.
func (s *Server) Close() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.srv.Close()
		for _, p := range s.paths {
			p.stream.Close()
		}
	})
}

// play paces one clip in real time, forever, whether or not anyone watches:
// a camera does not wait for viewers.
func (s *Server) play(ctx context.Context, p *path) {
	type encoder interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
	var enc encoder
	var err error
	switch f := p.media.Formats[0].(type) {
	case *format.H264:
		enc, err = f.CreateEncoder()
	case *format.H265:
		enc, err = f.CreateEncoder()
	}
	if err != nil {
		s.log.Error("creating RTP encoder", "path", p.cam.Path, "err", err)
		return
	}
	clip := p.cam.Clip
	timer := time.NewTimer(0)
	defer timer.Stop()
	var sr senderReports
	for loop := 0; ; loop++ {
		base := time.Duration(loop) * clip.Duration
		for _, pkt := range clip.Packets {
			at := s.epoch.Add(base + pkt.PTS)
			timer.Reset(time.Until(at))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			if s.isFrozen(p.cam.Path) {
				continue
			}
			rtps, err := enc.Encode(pkt.AU)
			if err != nil {
				s.log.Warn("encoding access unit", "path", p.cam.Path, "err", err)
				continue
			}
			ts := uint32(int64(base+pkt.PTS) * 90000 / int64(time.Second))
			for _, r := range rtps {
				r.Timestamp += ts
				if err := p.stream.WritePacketRTP(p.media, r); err != nil {
					s.log.Debug("writing RTP", "path", p.cam.Path, "err", err)
				}
				sr.count(r) // gortsplib has set the stream's SSRC on r
			}
			if report := sr.due(at, s.cfg.ReportInterval, ts, s.cfg.ClockOffset); report != nil {
				if err := p.stream.WritePacketRTCP(p.media, report); err != nil {
					s.log.Debug("writing RTCP", "path", p.cam.Path, "err", err)
				}
			}
		}
	}
}

// senderReports keeps what an RTCP sender report of one stream says
// (RFC 3550 §6.4.1): the wall-clock time of an RTP timestamp, and the
// packets and payload octets sent so far.
type senderReports struct {
	ssrc    uint32
	packets uint32
	octets  uint32
	last    time.Time
}

func (r *senderReports) count(p *rtp.Packet) {
	r.ssrc = p.SSRC
	r.packets++
	r.octets += uint32(len(p.Payload))
}

// due returns the report to send after the frame with RTP time ts that
// the camera captured at wall time at, when interval has passed since
// the last one; the camera's clock reads at+offset.
func (r *senderReports) due(at time.Time, interval time.Duration, ts uint32, offset time.Duration) *rtcp.SenderReport {
	if r.packets == 0 || (!r.last.IsZero() && at.Sub(r.last) < interval) {
		return nil
	}
	r.last = at
	return &rtcp.SenderReport{
		SSRC: r.ssrc, NTPTime: rtcptime.ToNTP(at.Add(offset)), RTPTime: ts,
		PacketCount: r.packets, OctetCount: r.octets,
	}
}

// handler implements gortsplib's server callbacks on the Server.
type handler Server

func (h *handler) lookup(reqPath string, conn *gortsplib.ServerConn, req *base.Request) (*base.Response, *gortsplib.ServerStream, error) {
	if h.cfg.User != "" && !conn.VerifyCredentials(req, h.cfg.User, h.cfg.Password) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	p, ok := h.paths[strings.TrimPrefix(reqPath, "/")]
	if !ok {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, fmt.Errorf("no camera at %q", reqPath)
	}
	return &base.Response{StatusCode: base.StatusOK}, p.stream, nil
}

// OnDescribe serves the SDP of a camera path.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.lookup(ctx.Path, ctx.Conn, ctx.Request)
}

// OnSetup attaches a reader to a camera path.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.lookup(ctx.Path, ctx.Conn, ctx.Request)
}

// OnPlay starts delivery.
func (h *handler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}
