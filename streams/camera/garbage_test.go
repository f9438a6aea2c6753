package camera

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// garbageServer is an RTSP server whose H.264 track carries random bytes:
// a broken camera or an attacker on the camera VLAN.
type garbageServer struct {
	stream *gortsplib.ServerStream
}

func (g *garbageServer) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, g.stream, nil
}

func (g *garbageServer) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, g.stream, nil
}

func (g *garbageServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func TestGarbageRTPIsLoggedNotFatal(t *testing.T) {
	g := &garbageServer{}
	srv := &gortsplib.Server{Handler: g, RTSPAddress: "127.0.0.1:0"}
	var addr string
	srv.Listen = listenRecording(&addr)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}
	g.stream = &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Medias: []*description.Media{media}}}
	if err := g.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer g.stream.Close()

	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		rng := rand.New(rand.NewPCG(1, 2))
		seq := uint16(0)
		// Bounded: 10 s of 100 packets/s. Among the garbage, NAL type 5
		// (IDR) starts make the depacketiser emit "keyframes" the decoder
		// must reject without crashing.
		for i := 0; i < 1000 && ctx.Err() == nil; i++ {
			payload := make([]byte, 20+rng.IntN(1200))
			for j := range payload {
				payload[j] = byte(rng.UintN(256))
			}
			if i%3 == 0 {
				payload[0] = 0x65 // IDR slice header followed by noise
			}
			seq++
			g.stream.WritePacketRTP(media, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(i) * 900, Marker: true}, Payload: payload})
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-sent }()

	log, buf := testrig.CapturingLogger(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cam, err := New(Config{ID: "broken", URL: "rtsp://" + addr + "/x", StallTimeout: 20 * time.Second}, newCollector(), m, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithTimeout(context.Background(), 7*time.Second)
	defer stop()
	cam.Run(runCtx) // returns when runCtx ends; a crash would fail the test binary

	if !strings.Contains(buf.String(), "camera sends undecodable video") {
		t.Errorf("no clear log line about the broken stream:\n%s", buf.String())
	}
	if n := float64(m.countsOf("broken").DecodeErrors); n == 0 {
		t.Error("decode errors were not counted")
	}
}
