// Package rtsp pulls one camera's video over RTSP (gortsplib v4) and turns
// RTP into timestamped access units. A Source runs until the connection
// fails, stalls or its context ends; reconnecting is its supervisor's job.
package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/rtcptime"
)

// Transports.
const (
	TransportTCP = "tcp"
	TransportUDP = "udp"
)

// Config says how to reach a camera.
type Config struct {
	URL       string // rtsp://user:pass@host:port/path
	Transport string // "tcp" (default: interleaved, works through NAT and firewalls) or "udp"
	// StallTimeout ends the session when no access unit arrives for this
	// long although the connection is up (a camera stuck sending nothing
	// decodable). Default 10 s.
	StallTimeout time.Duration
	// OnPacketsLost, if set, is told of every run of RTP packets lost
	// (also counted in Stats.Lost), as gortsplib detects them.
	OnPacketsLost func(n uint64)
	Log           *slog.Logger
}

// ErrStalled is returned when the camera sends no access unit for StallTimeout.
var ErrStalled = errors.New("rtsp: no video received (stalled)")

// Stats are counters a Source updates; safe to read concurrently.
type Stats struct {
	RTPErrors atomic.Uint64 // RTP packets that could not be depacketised
	Lost      atomic.Uint64 // RTP packets lost
}

// Run connects, plays and calls onAU for every access unit, from
// gortsplib's reading goroutine, until ctx ends (returns ctx.Err()) or the
// session fails. onAU must not block: hand the unit on and return.
func Run(ctx context.Context, cfg Config, stats *Stats, onAU func(streams.AccessUnit)) error {
	if stats == nil {
		stats = &Stats{}
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	u, transport, err := cfg.normalize()
	if err != nil {
		return err
	}
	c := newClient(u, transport, cfg, stats)
	// gortsplib dials without a context; closing the client from a watcher
	// is what makes a hanging DESCRIBE return when ctx ends.
	if err := c.Start2(); err != nil {
		return fmt.Errorf("rtsp: %w", err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	defer c.Close()

	desc, _, err := c.Describe(u)
	if err != nil {
		return fmt.Errorf("rtsp: describe %s: %w", redact(u), err)
	}
	p, err := newDepacketizer(desc, stats)
	if err != nil {
		return err
	}
	if _, err := c.Setup(desc.BaseURL, p.media, 0, 0); err != nil {
		return fmt.Errorf("rtsp: setup: %w", err)
	}
	r := newAUReader(c, p, onAU)
	if _, err := c.Play(nil); err != nil {
		return fmt.Errorf("rtsp: play: %w", err)
	}
	log.Info("camera connected", "url", redact(u), "codec", p.codec.String(), "transport", cfg.Transport)
	return watch(ctx, c, &r.lastAU, cfg.StallTimeout)
}

// normalize fills cfg's defaults and parses its URL and transport.
func (cfg *Config) normalize() (*base.URL, gortsplib.Transport, error) {
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 10 * time.Second
	}
	u, err := base.ParseURL(cfg.URL)
	if err != nil {
		return nil, 0, fmt.Errorf("rtsp: bad camera URL: %w", err)
	}
	transport := gortsplib.TransportTCP
	switch cfg.Transport {
	case "":
		cfg.Transport = TransportTCP
	case TransportTCP:
	case TransportUDP:
		transport = gortsplib.TransportUDP
	default:
		return nil, 0, fmt.Errorf("rtsp: unknown transport %q", cfg.Transport)
	}
	return u, transport, nil
}

// newClient is the gortsplib client for u, counting lost packets and
// decode errors in stats.
func newClient(u *base.URL, transport gortsplib.Transport, cfg Config, stats *Stats) *gortsplib.Client {
	return &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		Transport:    &transport,
		ReadTimeout:  cfg.StallTimeout,
		WriteTimeout: 5 * time.Second,
		OnPacketsLost: func(n uint64) {
			stats.Lost.Add(n)
			if cfg.OnPacketsLost != nil {
				cfg.OnPacketsLost(n)
			}
		},
		OnDecodeError: func(error) {
			stats.RTPErrors.Add(1)
		},
	}
}

// auReader turns the session's RTP into timestamped access units. Its
// state is only touched from gortsplib's reading goroutine, except
// lastAU, which the stall watch reads.
type auReader struct {
	c      *gortsplib.Client
	p      *depacketizer
	onAU   func(streams.AccessUnit)
	clock  *rtcptime.Mapper
	anchor time.Time // arrival-clock anchor: wall time of PTS 0
	lastAU atomic.Int64
}

// newAUReader registers the reader's RTP and RTCP callbacks on c.
func newAUReader(c *gortsplib.Client, p *depacketizer, onAU func(streams.AccessUnit)) *auReader {
	// Sender reports are read here, not by gortsplib's PacketNTP, which
	// misreads the NTP fraction (see package rtcptime).
	r := &auReader{c: c, p: p, onAU: onAU, clock: rtcptime.NewMapper(p.forma.ClockRate())}
	r.lastAU.Store(time.Now().UnixNano())
	c.OnPacketRTCP(p.media, r.onRTCP)
	c.OnPacketRTP(p.media, p.forma, r.onRTP)
	return r
}

func (r *auReader) onRTCP(pkt rtcp.Packet) {
	if sr, ok := pkt.(*rtcp.SenderReport); ok {
		r.clock.SenderReport(sr.SSRC, sr.NTPTime, sr.RTPTime)
	}
}

func (r *auReader) onRTP(pkt *rtp.Packet) {
	pts, ok := r.c.PacketPTS2(r.p.media, pkt)
	if !ok {
		return
	}
	r.clock.SetSSRC(pkt.SSRC)
	nalus, key, err := r.p.decode(pkt)
	if err != nil || nalus == nil {
		return
	}
	r.lastAU.Store(time.Now().UnixNano())
	ptsD := time.Duration(pts) * time.Second / 90000
	au := streams.AccessUnit{Codec: r.p.codec, NALUs: nalus, PTS: ptsD, Key: key}
	if ntp, ok := r.clock.Time(pkt.Timestamp); ok {
		au.Time, au.TimeSource = ntp, streams.TimeRTCP
	} else {
		if r.anchor.IsZero() {
			r.anchor = time.Now().UTC().Add(-ptsD)
		}
		au.Time, au.TimeSource = r.anchor.Add(ptsD), streams.TimeArrival
	}
	for _, n := range nalus {
		au.Bytes += len(n)
	}
	r.onAU(au)
}

// watch waits for the session to end: ctx ends, the connection fails,
// or no access unit arrives for stall.
func watch(ctx context.Context, c *gortsplib.Client, lastAU *atomic.Int64, stall time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	tick := time.NewTicker(stall / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Close()
			<-done
			return ctx.Err()
		case err := <-done:
			return fmt.Errorf("rtsp: connection lost: %w", err)
		case <-tick.C:
			if time.Since(time.Unix(0, lastAU.Load())) > stall {
				c.Close()
				<-done
				return ErrStalled
			}
		}
	}
}

// redact hides credentials in log lines.
func redact(u *base.URL) string {
	c := *u
	if c.User != nil {
		c.User = nil
		return c.String() + " (with credentials)"
	}
	return c.String()
}

// depacketizer turns RTP into access units for one H.264 or H.265 format,
// keeping the latest parameter sets so every random-access unit decodes on
// its own (cameras often send SPS/PPS only in the SDP).
type depacketizer struct {
	media    *description.Media
	forma    format.Format
	codec    av.Codec
	h264     *rtph264.Decoder
	h265     *rtph265.Decoder
	vps      []byte
	sps, pps []byte
	synced   bool // a random-access unit has been seen
	stats    *Stats
}

func newDepacketizer(desc *description.Session, stats *Stats) (*depacketizer, error) {
	var f264 *format.H264
	if m := desc.FindFormat(&f264); m != nil {
		dec, err := f264.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("rtsp: %w", err)
		}
		sps, pps := f264.SafeParams()
		return &depacketizer{media: m, forma: f264, codec: av.H264, h264: dec, sps: sps, pps: pps, stats: stats}, nil
	}
	var f265 *format.H265
	if m := desc.FindFormat(&f265); m != nil {
		dec, err := f265.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("rtsp: %w", err)
		}
		vps, sps, pps := f265.SafeParams()
		return &depacketizer{media: m, forma: f265, codec: av.H265, h265: dec, vps: vps, sps: sps, pps: pps, stats: stats}, nil
	}
	return nil, errors.New("rtsp: the camera offers no H.264 or H.265 video (" + describeFormats(desc) + ")")
}

func describeFormats(desc *description.Session) string {
	s := ""
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			if s != "" {
				s += ", "
			}
			s += f.Codec()
		}
	}
	if s == "" {
		return "no media"
	}
	return "offers " + s
}

// decode returns a complete access unit, or nil while more packets are needed.
func (d *depacketizer) decode(pkt *rtp.Packet) ([][]byte, bool, error) {
	var au [][]byte
	var err error
	if d.h264 != nil {
		au, err = d.h264.Decode(pkt)
		if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
			return nil, false, nil
		}
	} else {
		au, err = d.h265.Decode(pkt)
		if errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
			return nil, false, nil
		}
	}
	if err != nil {
		d.stats.RTPErrors.Add(1)
		return nil, false, err
	}
	if d.codec == av.H264 {
		return d.finishH264(au)
	}
	return d.finishH265(au)
}

func (d *depacketizer) finishH264(au [][]byte) ([][]byte, bool, error) {
	hasParams := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			d.sps, hasParams = n, true
		case h264.NALUTypePPS:
			d.pps = n
		}
	}
	key := h264.IsRandomAccess(au)
	if key {
		d.synced = true
		if !hasParams && d.sps != nil && d.pps != nil {
			au = append([][]byte{d.sps, d.pps}, au...)
		}
	}
	if !d.synced {
		return nil, false, nil
	}
	return au, key, nil
}

func (d *depacketizer) finishH265(au [][]byte) ([][]byte, bool, error) {
	hasParams := false
	for _, n := range au {
		if len(n) < 2 {
			continue
		}
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			d.vps, hasParams = n, true
		case h265.NALUType_SPS_NUT:
			d.sps = n
		case h265.NALUType_PPS_NUT:
			d.pps = n
		}
	}
	key := h265.IsRandomAccess(au)
	if key {
		d.synced = true
		if !hasParams && d.vps != nil && d.sps != nil && d.pps != nil {
			au = append([][]byte{d.vps, d.sps, d.pps}, au...)
		}
	}
	if !d.synced {
		return nil, false, nil
	}
	return au, key, nil
}
