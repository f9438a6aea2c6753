package media

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// GStreamer, a peer nobody here wrote, receives the stream over TCP (we
// listen, as for an offer with a=setup:active): its rtpstreamdepay undoes
// the RFC 4571 framing and its RTP depayloader writes the payloads out,
// which must be our program stream byte for byte, and which ffprobe then
// judges. GStreamer has no PS depayloader and ffmpeg's RTP demuxer does not
// know MP2P/PS (its SDP reader leaves the codec unset), so the payloads
// are taken out by rtpL8depay, which copies them as they are (8-bit
// audio: no alignment to keep; rtpmp2tdepay would cut them to 188-byte
// TS packets).
func TestGStreamerReceivesTCP(t *testing.T) {
	const ssrc = 100000009
	s, err := NewSender(Config{Transport: TCPPassive, Local: netip.AddrPortFrom(loopback, 0), SSRC: ssrc, PayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	// Frames wait in the queue until GStreamer connects.
	f := newFeeder(t)
	var sent []int64
	var want []byte
	for range 50 {
		fr := f.next(t)
		if !s.WriteFrame(fr) {
			t.Fatal("frame refused")
		}
		sent = append(sent, fr.PTS)
		want = append(want, fr.PS...)
	}
	s.Finish() // Run ends after these 50 frames, and GStreamer sees the end of the stream
	if s.WriteFrame(f.next(t)) {
		t.Fatal("a finishing sender took a frame")
	}

	out := filepath.Join(t.TempDir(), "gst.mpg")
	gst := exec.Command("gst-launch-1.0", "-q",
		"tcpclientsrc", "host=127.0.0.1", fmt.Sprintf("port=%d", s.LocalPort()), "!",
		fmt.Sprintf("application/x-rtp-stream,media=audio,clock-rate=90000,encoding-name=L8,channels=1,payload=96,ssrc=(uint)%d", ssrc), "!",
		"rtpstreamdepay", "!", "rtpL8depay", "!", "filesink", "location="+out)
	var stderr bytes.Buffer
	gst.Stdout, gst.Stderr = &stderr, &stderr
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	if err := gst.Run(); err != nil {
		s.Close()
		<-done
		t.Fatalf("gst-launch: %v: %s", err, stderr.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GStreamer's payloads (%d bytes) differ from the program stream sent (%d bytes)", len(got), len(want))
	}
	p := testrig.FFprobePS(t, out)
	if p.Codec != "h264" || p.Width != 320 || p.Height != 240 || len(p.FramePTS) != len(sent) {
		t.Fatalf("ffprobe: %+v", p)
	}
	for i := range sent {
		if p.FramePTS[i] != sent[i] {
			t.Fatalf("frame %d: PTS %d, want %d", i, p.FramePTS[i], sent[i])
		}
	}
}
