package probe

import (
	"bytes"
	"context"
	"image/jpeg"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// smallClip is a short 320×240 camera clip at 10 fps.
func smallClip(t *testing.T, h265 bool) *sim.Clip {
	spec := footage.BurstsClip{Seconds: 10, FPS: 10, Width: 320, Height: 240,
		Bursts: []footage.Burst{{Start: 5, End: 9}}, H265: h265}
	return testrig.Clip(t, spec)
}

func startSim(t *testing.T, auth string, clip *sim.Clip) *sim.Server {
	t.Helper()
	cfg := sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: clip}}, Log: testrig.Logger(t)}
	if auth != "" {
		cfg.User, cfg.Password, cfg.Auth = "admin", "s3cret", auth
	}
	srv, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func withCreds(u, user, pass string) string {
	return strings.Replace(u, "rtsp://", "rtsp://"+user+":"+pass+"@", 1)
}

func checkJPEG(t *testing.T, b []byte, w int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("snapshot is not a JPEG: %v", err)
	}
	if got := img.Bounds().Dx(); got != w {
		t.Errorf("snapshot %d px wide, want %d", got, w)
	}
}

func TestGoodCameras(t *testing.T) {
	h264Clip, h265Clip := smallClip(t, false), smallClip(t, true)
	for _, tc := range []struct {
		name, auth, codec string
		clip              *sim.Clip
	}{
		{"h264 open", "", "H264", h264Clip},
		{"h264 digest", "digest", "H264", h264Clip},
		{"h264 basic", "basic", "H264", h264Clip},
		{"h265 digest", "digest", "H265", h265Clip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, tc.auth, tc.clip)
			req := Request{URL: srv.URL("cam"), Timeout: 8 * time.Second, Snapshot: true}
			if tc.auth != "" {
				req.User, req.Password = "admin", "s3cret"
			}
			res, err := Probe(context.Background(), req)
			if err != nil {
				t.Fatalf("probe: %v (%+v)", err, res)
			}
			t.Logf("%s %dx%d %.2f fps auth=%v/%s in %v (snapshot %d bytes)", res.Codec, res.Width, res.Height, res.FPS,
				res.AuthRequired, res.AuthMethod, res.Elapsed.Round(time.Millisecond), len(res.Snapshot))
			if res.Codec != tc.codec || res.Width != 320 || res.Height != 240 {
				t.Errorf("got %s %dx%d, want %s 320x240", res.Codec, res.Width, res.Height, tc.codec)
			}
			if res.FPS < 9 || res.FPS > 11 {
				t.Errorf("fps %v, want 10", res.FPS)
			}
			if res.AuthRequired != (tc.auth != "") {
				t.Errorf("auth required %v", res.AuthRequired)
			}
			if tc.auth != "" && res.AuthMethod != tc.auth {
				t.Errorf("auth method %q, want %q", res.AuthMethod, tc.auth)
			}
			checkJPEG(t, res.Snapshot, 320)
		})
	}
}

func TestCredentialsInURL(t *testing.T) {
	srv := startSim(t, "digest", smallClip(t, false))
	res, err := Probe(context.Background(), Request{URL: withCreds(srv.URL("cam"), "admin", "s3cret"), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.URL, "s3cret") {
		t.Errorf("result URL shows the password: %s", res.URL)
	}
	if !res.OK || res.Width != 320 || res.Snapshot != nil {
		t.Errorf("%+v", res)
	}
}

func TestFailuresInPlainWords(t *testing.T) {
	clip := smallClip(t, false)
	authSrv := startSim(t, "digest", clip)

	// A port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	// A TCP server that speaks HTTP, and one that says nothing.
	httpSrv := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		c.Read(buf)
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	})
	silent := tcpServer(t, func(c net.Conn) { time.Sleep(3 * time.Second) })

	mjpeg := mjpegCamera(t)

	for _, tc := range []struct {
		name string
		req  Request
		kind Kind
		msg  string
	}{
		{"wrong password", Request{URL: authSrv.URL("cam"), User: "admin", Password: "guess"}, KindAuth, "wrong user name or password"},
		{"no credentials", Request{URL: authSrv.URL("cam")}, KindAuthMissing, "needs a user name and password"},
		{"wrong path", Request{URL: authSrv.URL("nope"), User: "admin", Password: "s3cret"}, KindNotFound, "no stream at this address"},
		{"closed port", Request{URL: "rtsp://" + closed + "/cam"}, KindUnreachable, "camera unreachable (connection refused)"},
		{"http server", Request{URL: "rtsp://" + httpSrv + "/cam"}, KindNotRTSP, "not an RTSP camera"},
		{"silent server", Request{URL: "rtsp://" + silent + "/cam", Timeout: time.Second}, KindNotRTSP, "not an RTSP camera"},
		{"mjpeg", Request{URL: mjpeg + "/cam"}, KindUnsupported, "unsupported codec: MJPEG"},
		{"bad url", Request{URL: "http://example/"}, KindBadURL, "not an RTSP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Timeout == 0 {
				tc.req.Timeout = 5 * time.Second
			}
			tc.req.Snapshot = true
			start := time.Now()
			res, err := Probe(context.Background(), tc.req)
			if err == nil {
				t.Fatalf("probe succeeded: %+v", res)
			}
			t.Logf("%s → %q (%s) in %v", tc.name, res.Error, res.Detail, time.Since(start).Round(time.Millisecond))
			if res.Kind != tc.kind || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %s %q, want %s %q", res.Kind, err, tc.kind, tc.msg)
			}
			if time.Since(start) > tc.req.Timeout+2*time.Second {
				t.Errorf("took %v with a %v timeout", time.Since(start), tc.req.Timeout)
			}
		})
	}
}

// TestUnroutableTimesOut: an address nothing answers for is reported as
// unreachable within the timeout (TEST-NET-1 is never routed).
func TestUnroutableTimesOut(t *testing.T) {
	start := time.Now()
	res, err := Probe(context.Background(), Request{URL: "rtsp://192.0.2.1:554/cam", Timeout: 700 * time.Millisecond})
	if err == nil || res.Kind != KindUnreachable {
		t.Fatalf("got %+v", res)
	}
	t.Logf("%q after %v", res.Error, time.Since(start).Round(time.Millisecond))
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func tcpServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

// mjpegCamera is a real RTSP server whose only video is Motion JPEG.
func mjpegCamera(t *testing.T) string {
	t.Helper()
	h := &mjpegHandler{}
	srv := &gortsplib.Server{Handler: h, RTSPAddress: "127.0.0.1:0"}
	var addr string
	srv.Listen = func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, address)
		if err == nil {
			addr = l.Addr().String()
		}
		return l, err
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h.stream = &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Medias: []*description.Media{{
		Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}}}}}
	if err := h.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stream.Close)
	return "rtsp://" + addr
}

type mjpegHandler struct{ stream *gortsplib.ServerStream }

func (h *mjpegHandler) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}
