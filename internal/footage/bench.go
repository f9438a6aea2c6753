package footage

import (
	"context"
	"fmt"
)

// BenchCamera is the footage the streams benchmarks pull: vtest.avi's
// pedestrians as a 15 fps IP camera of the given height (720 → 1280×720 at
// about 2 Mbit/s, 1080 → 1920×1080 at about 4 Mbit/s), encoded with
// CameraX264(30) (a keyframe every 2 s) at CRF 20 (the later -crf wins)
// capped like a camera's VBR setting, which lands at the target bitrate. Every source frame becomes one output frame (the 10 fps sample
// is played 1.5× faster) instead of repeating frames to reach 15 fps:
// repeated frames would encode as near-empty P-frames and make decoding
// look cheaper than it is on a real camera. The clip is 53 s long.
func (c Cache) BenchCamera(ctx context.Context, height int) (string, error) {
	var w, rate string
	switch height {
	case 720:
		w, rate = "1280", "2M"
	case 1080:
		w, rate = "1920", "4M"
	default:
		return "", fmt.Errorf("footage: no bench camera of height %d (720 or 1080)", height)
	}
	src, err := sample("vtest.avi")
	if err != nil {
		return "", err
	}
	args := []string{"-i", src, "-an",
		"-vf", fmt.Sprintf("scale=%s:%d:flags=bicubic,setpts=N/15/TB", w, height), "-r", "15"}
	args = append(args, CameraX264(30)...)
	args = append(args, "-crf", "20", "-maxrate", rate, "-bufsize", rate)
	return c.Make(ctx, fmt.Sprintf("bench-%dp15", height), args)
}
