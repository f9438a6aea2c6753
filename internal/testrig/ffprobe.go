package testrig

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Probe is what ffprobe says about a file's video stream.
type Probe struct {
	Codec    string
	Width    int
	Height   int
	Frames   int     // decoded: every frame was decoded without an error
	Duration float64 // of the stream, seconds
	FirstKey bool    // the first packet is a keyframe
}

// FFprobe decodes every frame of path's video with ffprobe (any decoding
// error fails the test) and reports the stream.
func FFprobe(t testing.TB, path string) Probe {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames,duration", "-of", "json", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	var r struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			NbReadFrames string `json:"nb_read_frames"`
			Duration     string `json:"duration"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	st := r.Streams[0]
	p := Probe{Codec: st.CodecName, Width: st.Width, Height: st.Height}
	p.Duration, _ = strconv.ParseFloat(st.Duration, 64)
	p.Frames, _ = strconv.Atoi(st.NbReadFrames)
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
		"-read_intervals", "%+#1", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	p.FirstKey = strings.HasPrefix(string(out), "K")
	return p
}
