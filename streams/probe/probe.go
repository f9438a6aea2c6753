// Package probe checks a camera the way an installer would: it asks the
// camera for its stream (RTSP DESCRIBE, with credentials when it wants
// them), reports the codec, resolution and frame rate from the stream's own
// parameter sets, and takes one JPEG snapshot by playing until the first
// keyframe decodes. What fails is said in plain words: a wrong password, an
// unreachable address, something that is not an RTSP camera, a codec the
// edge cannot analyse.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// Request says which camera to probe.
type Request struct {
	// URL is rtsp://host[:port]/path; it may carry user:password.
	URL string
	// User and Password, when set, replace the URL's credentials.
	User, Password string
	// Timeout bounds the whole probe, snapshot included. Default 10 s.
	Timeout time.Duration
	// Snapshot plays the stream until the first keyframe decodes and
	// returns it as a JPEG.
	Snapshot bool
	// SnapshotWidth scales the JPEG down to at most this width (0: 640).
	SnapshotWidth int
}

// Kind names what went wrong, for programs; Result.Error says it to people.
type Kind string

// Failure kinds.
const (
	KindBadURL      Kind = "bad_url"
	KindAuth        Kind = "auth"         // wrong user name or password
	KindAuthMissing Kind = "auth_missing" // the camera wants credentials, none given
	KindUnreachable Kind = "unreachable"  // refused, timed out, no route
	KindNotRTSP     Kind = "not_rtsp"     // something answered, not in RTSP
	KindNotFound    Kind = "not_found"    // no stream at that path
	KindRefused     Kind = "refused"      // another RTSP error status
	KindUnsupported Kind = "unsupported_codec"
	KindNoVideo     Kind = "no_video" // described, but no picture arrived or decoded
)

// Result is what the probe found. A failed probe has Kind and Error set and
// whatever was learnt before the failure.
type Result struct {
	URL          string  `json:"url"` // without credentials
	OK           bool    `json:"ok"`
	Codec        string  `json:"codec,omitempty"` // "H264", "H265" or what the camera offers
	Width        int     `json:"width,omitempty"`
	Height       int     `json:"height,omitempty"`
	FPS          float64 `json:"fps,omitempty"`
	AuthRequired bool    `json:"auth_required"`
	AuthMethod   string  `json:"auth_method,omitempty"` // "basic" or "digest"
	Kind         Kind    `json:"kind,omitempty"`
	Error        string  `json:"error,omitempty"`  // plain words
	Detail       string  `json:"detail,omitempty"` // the underlying error, for support
	Snapshot     []byte  `json:"-"`                // JPEG, when asked for
	Elapsed      time.Duration
}

// Err returns the failure as an error, or nil.
func (r *Result) Err() error {
	if r.OK {
		return nil
	}
	return &Error{Kind: r.Kind, Message: r.Error, Detail: r.Detail}
}

// Error is a failed probe.
type Error struct {
	Kind    Kind
	Message string
	Detail  string
}

func (e *Error) Error() string { return e.Message }

// Probe checks one camera. It never returns a nil Result; its error is
// Result.Err().
func Probe(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	res := probe(ctx, req)
	res.Elapsed = time.Since(start)
	return res, res.Err()
}

func probe(ctx context.Context, req Request) *Result {
	res := &Result{URL: req.URL}
	if req.Timeout <= 0 {
		req.Timeout = 10 * time.Second
	}
	if req.SnapshotWidth <= 0 {
		req.SnapshotWidth = 640
	}
	u, err := parseURL(req)
	if err != nil {
		return fail(res, KindBadURL, "not an RTSP address: "+err.Error(), nil)
	}
	res.URL = Redact(u.String())
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()

	var seen sessionWatch
	c := seen.client(u, req.Timeout)
	if err := c.Start2(); err != nil {
		return fail(res, KindBadURL, "not an RTSP address: "+err.Error(), err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	defer c.Close()

	desc, _, err := c.Describe(u)
	seen.copyAuth(res)
	if err != nil {
		return classify(res, ctx, err, u.User != nil, seen.connected.Load())
	}
	vid, err := pickVideo(desc)
	if err != nil {
		res.Codec = offered(desc)
		if res.Codec == "" {
			return fail(res, KindNoVideo, "the camera offers no video", err)
		}
		return fail(res, KindUnsupported, "unsupported codec: "+res.Codec+" (the edge needs H.264 or H.265)", err)
	}
	res.Codec = vid.codec.String()
	vid.readSPS(res)
	if !req.Snapshot && res.Width > 0 {
		res.OK = true
		return res
	}
	if err := snapshot(ctx, c, desc, vid, req, res); err != nil {
		return classify(res, ctx, err, u.User != nil, true)
	}
	res.OK = true
	return res
}

// sessionWatch is what the probe learns from the connection itself,
// beside the RTSP exchange: whether the TCP connection was made (to tell
// unreachable from not RTSP) and whether and how the camera asked for
// credentials.
type sessionWatch struct {
	connected    atomic.Bool
	mu           sync.Mutex
	authRequired bool
	authMethod   string
}

// client is the probe's gortsplib client for u, with w's hooks.
func (w *sessionWatch) client(u *base.URL, timeout time.Duration) *gortsplib.Client {
	transport := gortsplib.TransportTCP
	return &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		Transport:    &transport,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		DialContext: func(dctx context.Context, network, address string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(dctx, network, address)
			if err == nil {
				w.connected.Store(true)
			}
			return conn, err
		},
		OnResponse: w.onResponse,
	}
}

// onResponse notes a 401's authentication methods, preferring digest.
func (w *sessionWatch) onResponse(r *base.Response) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.StatusCode == base.StatusUnauthorized {
		w.authRequired = true
		for _, v := range r.Header["WWW-Authenticate"] {
			m := strings.ToLower(strings.SplitN(strings.TrimSpace(v), " ", 2)[0])
			if m == "digest" || w.authMethod == "" {
				w.authMethod = m
			}
		}
	}
}

// copyAuth reports what w learnt about authentication in res.
func (w *sessionWatch) copyAuth(res *Result) {
	w.mu.Lock()
	defer w.mu.Unlock()
	res.AuthRequired = res.AuthRequired || w.authRequired
	if w.authMethod != "" {
		res.AuthMethod = w.authMethod
	}
}

func fail(res *Result, k Kind, msg string, err error) *Result {
	res.OK, res.Kind, res.Error = false, k, msg
	if err != nil {
		res.Detail = err.Error()
	}
	return res
}

func parseURL(req Request) (*base.URL, error) {
	s := strings.TrimSpace(req.URL)
	if s == "" {
		return nil, errors.New("empty")
	}
	if !strings.Contains(s, "://") {
		s = "rtsp://" + s
	}
	u, err := base.ParseURL(s)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "parse "))
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	if req.User != "" || req.Password != "" {
		u.User = url.UserPassword(req.User, req.Password)
	}
	return u, nil
}

// Redact removes credentials from an RTSP URL for display.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// classify turns a client error into plain words.
func classify(res *Result, ctx context.Context, err error, haveCreds, connected bool) *Result {
	var bad liberrors.ErrClientBadStatusCode
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &bad):
		switch bad.Code {
		case base.StatusUnauthorized:
			res.AuthRequired = true
			if haveCreds {
				return fail(res, KindAuth, "wrong user name or password", err)
			}
			return fail(res, KindAuthMissing, "the camera needs a user name and password", err)
		case base.StatusForbidden:
			return fail(res, KindAuth, "the camera refuses this user (forbidden)", err)
		case base.StatusNotFound:
			return fail(res, KindNotFound, "no stream at this address on the camera (check the path)", err)
		}
		return fail(res, KindRefused, fmt.Sprintf("the camera refused the request (%d %s)", int(bad.Code), bad.Message), err)
	case errors.As(err, &dnsErr):
		return fail(res, KindUnreachable, "camera unreachable (unknown host name)", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail(res, KindUnreachable, "camera unreachable (connection refused)", err)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fail(res, KindUnreachable, "camera unreachable (no route to it)", err)
	case !connected && (isTimeout(err) || ctx.Err() != nil):
		return fail(res, KindUnreachable, "camera unreachable (timed out)", err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fail(res, KindUnreachable, "camera unreachable ("+opErr.Err.Error()+")", err)
	case isTimeout(err) || ctx.Err() != nil:
		if res.Codec != "" {
			return fail(res, KindNoVideo, "the camera sent no picture in time", err)
		}
		return fail(res, KindNotRTSP, "not an RTSP camera (something answered the connection but not in RTSP; timed out)", err)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return fail(res, KindNotRTSP, "not an RTSP camera (it closed the connection)", err)
	case errors.Is(err, errNoPicture):
		return fail(res, KindNoVideo, "the camera's video could not be decoded", err)
	}
	if res.Codec != "" {
		return fail(res, KindNoVideo, "the camera described its stream but playing it failed", err)
	}
	return fail(res, KindNotRTSP, "not an RTSP camera (it does not answer in RTSP)", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) ||
		strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "terminated")
}

// offered names the camera's formats in the words installers know.
func offered(desc *description.Session) string {
	var names []string
	for _, m := range desc.Medias {
		if m.Type != description.MediaTypeVideo {
			continue
		}
		for _, f := range m.Formats {
			names = append(names, codecName(f))
		}
	}
	return strings.Join(names, ", ")
}

func codecName(f format.Format) string {
	switch f.(type) {
	case *format.MJPEG:
		return "MJPEG"
	case *format.MPEG4Video:
		return "MPEG-4"
	case *format.AV1:
		return "AV1"
	case *format.VP8:
		return "VP8"
	case *format.VP9:
		return "VP9"
	}
	return f.Codec()
}

type video struct {
	media *description.Media
	forma format.Format
	codec av.Codec
	vps   []byte
	sps   []byte
	pps   []byte
}

func pickVideo(desc *description.Session) (*video, error) {
	var f264 *format.H264
	if m := desc.FindFormat(&f264); m != nil {
		sps, pps := f264.SafeParams()
		return &video{media: m, forma: f264, codec: av.H264, sps: sps, pps: pps}, nil
	}
	var f265 *format.H265
	if m := desc.FindFormat(&f265); m != nil {
		vps, sps, pps := f265.SafeParams()
		return &video{media: m, forma: f265, codec: av.H265, vps: vps, sps: sps, pps: pps}, nil
	}
	return nil, errors.New("no H.264 or H.265 video")
}

// readSPS fills resolution and frame rate from the sequence parameter set.
func (v *video) readSPS(res *Result) {
	if len(v.sps) == 0 {
		return
	}
	switch v.codec {
	case av.H264:
		var s h264.SPS
		if s.Unmarshal(v.sps) == nil {
			res.Width, res.Height, res.FPS = s.Width(), s.Height(), round2(s.FPS())
		}
	case av.H265:
		var s h265.SPS
		if s.Unmarshal(v.sps) == nil {
			res.Width, res.Height, res.FPS = s.Width(), s.Height(), round2(s.FPS())
		}
	}
}

func round2(f float64) float64 {
	if f <= 0 || f > 1000 {
		return 0
	}
	return float64(int(f*100+0.5)) / 100
}

var errNoPicture = errors.New("no decodable picture")

// snapshot plays the stream until a keyframe decodes.
func snapshot(ctx context.Context, c *gortsplib.Client, desc *description.Session, v *video, req Request, res *Result) error {
	if _, err := c.Setup(desc.BaseURL, v.media, 0, 0); err != nil {
		return err
	}
	g, err := newGrabber(c, v, req.SnapshotWidth)
	if err != nil {
		return err
	}
	defer g.dec.Close()
	c.OnPacketRTP(v.media, v.forma, g.onRTP)
	if _, err := c.Play(nil); err != nil {
		return err
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	select {
	case p := <-g.done:
		if p.err != nil {
			return p.err
		}
		res.Snapshot = p.jpeg
		if res.Width == 0 {
			res.Width, res.Height = p.w, p.h
		}
		if res.FPS == 0 {
			res.FPS = round2(p.fps)
		}
		return nil
	case err := <-waitErr:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// picture is what a snapshot grabbed, or why it could not.
type picture struct {
	jpeg []byte
	w, h int
	fps  float64
	err  error
}

// grabber depacketizes the played video, counting frames for the frame
// rate, and decodes random-access units until one gives a picture. Its
// state is only touched from gortsplib's reading goroutine; the result
// comes once on done.
type grabber struct {
	c     *gortsplib.Client
	v     *video
	width int // of the JPEG
	dec   *av.Decoder
	dh264 *rtph264.Decoder
	dh265 *rtph265.Decoder

	firstPTS, prevPTS   int64
	frames, undecodable int

	done chan picture
	once sync.Once
}

func newGrabber(c *gortsplib.Client, v *video, width int) (*grabber, error) {
	dec, err := av.NewDecoder(v.codec)
	if err != nil {
		return nil, err
	}
	g := &grabber{c: c, v: v, width: width, dec: dec, firstPTS: -1, prevPTS: -1, done: make(chan picture, 1)}
	switch f := v.forma.(type) {
	case *format.H264:
		g.dh264, err = f.CreateDecoder()
	case *format.H265:
		g.dh265, err = f.CreateDecoder()
	}
	if err != nil {
		dec.Close()
		return nil, err
	}
	return g, nil
}

func (g *grabber) finish(p picture) { g.once.Do(func() { g.done <- p }) }

func (g *grabber) onRTP(pkt *rtp.Packet) {
	var au [][]byte
	var err error
	if g.dh264 != nil {
		au, err = g.dh264.Decode(pkt)
	} else {
		au, err = g.dh265.Decode(pkt)
	}
	if err != nil || len(au) == 0 {
		return
	}
	pts, ok := g.c.PacketPTS2(g.v.media, pkt)
	if ok && pts != g.prevPTS {
		if g.firstPTS < 0 {
			g.firstPTS = pts
		}
		g.prevPTS = pts
		g.frames++
	}
	au, key := g.v.withParams(au)
	if !key {
		return
	}
	got, err := g.dec.Decode(au)
	if !got || err != nil {
		g.undecodable++
		if g.undecodable >= 3 {
			g.finish(picture{err: fmt.Errorf("%w: %v", errNoPicture, err)})
		}
		return
	}
	w, h := g.dec.Size()
	jpg, err := g.dec.JPEG(g.width, 80)
	fps := 0.0
	if g.frames > 1 && g.prevPTS > g.firstPTS {
		fps = float64(g.frames-1) * 90000 / float64(g.prevPTS-g.firstPTS)
	}
	g.finish(picture{jpeg: jpg, w: w, h: h, fps: fps, err: err})
}

// withParams reports whether au is a random-access unit and, if so, puts
// the SDP's parameter sets in front when the camera sends them only there.
func (v *video) withParams(au [][]byte) ([][]byte, bool) {
	if v.codec == av.H264 {
		if !h264.IsRandomAccess(au) {
			return au, false
		}
		for _, n := range au {
			if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
				return au, true
			}
		}
		if v.sps != nil && v.pps != nil {
			return append([][]byte{v.sps, v.pps}, au...), true
		}
		return au, true
	}
	if !h265.IsRandomAccess(au) {
		return au, false
	}
	for _, n := range au {
		if len(n) > 1 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT {
			return au, true
		}
	}
	if v.vps != nil && v.sps != nil && v.pps != nil {
		return append([][]byte{v.vps, v.sps, v.pps}, au...), true
	}
	return au, true
}
