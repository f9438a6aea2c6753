package testrig

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// ProbePS is what ffprobe's MPEG program stream demuxer ("-f mpeg") says
// about a file's video: the stream, and every frame it decoded.
type ProbePS struct {
	Codec     string  // h264, hevc
	Width     int     // of the decoded pictures
	Height    int     //
	FramePTS  []int64 // of the decoded frames, presentation order, 90 kHz; -1 where ffprobe had none
	Keyframes int     // decoded frames that were keyframes
	Packets   int     // demuxed video packets
}

// FFprobePS demuxes path as an MPEG program stream (forced with -f mpeg,
// as a GB/T 28181 platform would read it) and decodes every video frame;
// any message of ffprobe at level error (a demuxing or decoding error)
// fails the test.
func FFprobePS(t testing.TB, path string) ProbePS {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-f", "mpeg", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height:frame=pts,key_frame:packet=pts",
		"-of", "json", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe -f mpeg %s: %v: %s", path, err, stderr.String())
	}
	var r struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Items []struct { // packets and frames, interleaved
			Type     string `json:"type"`
			PTS      *int64 `json:"pts"`
			KeyFrame int    `json:"key_frame"`
		} `json:"packets_and_frames"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe -f mpeg %s: %v: %.2000s", path, err, out)
	}
	st := r.Streams[0]
	p := ProbePS{Codec: st.CodecName, Width: st.Width, Height: st.Height}
	for _, f := range r.Items {
		if f.Type == "packet" {
			p.Packets++
			continue
		}
		pts := int64(-1)
		if f.PTS != nil {
			pts = *f.PTS
		}
		p.FramePTS = append(p.FramePTS, pts)
		p.Keyframes += f.KeyFrame
	}
	return p
}

// Testsrc encodes secs seconds of ffmpeg's testsrc2 pattern (320x240,
// 25 fps) with the given encoder arguments into path (its extension picks
// the container: .h264 and .h265 are raw Annex-B) and returns path.
func Testsrc(t testing.TB, path string, secs int, encoder ...string) string {
	t.Helper()
	return TestsrcSize(t, path, secs, "320x240", encoder...)
}

// TestsrcSize is Testsrc at another size ("1280x720").
func TestsrcSize(t testing.TB, path string, secs int, size string, encoder ...string) string {
	t.Helper()
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=25",
		"-t", strconv.Itoa(secs), "-pix_fmt", "yuv420p"}
	args = append(append(args, encoder...), path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return path
}
