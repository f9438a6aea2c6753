// Package footage prepares the real video that the demo, the tests and the
// benchmarks play through simulated cameras. Nothing here is committed: the
// clips are made on demand with ffmpeg from Debian's opencv-doc samples and
// cached, so a fresh clone needs only `make deps`.
package footage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// SamplesDir is where Debian's opencv-doc installs its sample videos.
const SamplesDir = "/usr/share/doc/opencv-doc/examples/data"

// CameraX264 encodes like an IP camera: Main profile, no B-frames, a
// fixed GOP, SPS/PPS repeated before every IDR (the recipe of the
// evaluation footage in shared/testdata, which uses a 50-frame GOP).
// The GOP is given in frames; cameras use 1-2 s.
func CameraX264(gop int) []string {
	g := fmt.Sprint(gop)
	return []string{
		"-c:v", "libx264", "-profile:v", "main", "-preset", "veryfast", "-crf", "23",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", g, "-keyint_min", g,
		"-sc_threshold", "0", "-x264-params", "repeat-headers=1",
	}
}

// Cache makes clips into one directory, once per recipe.
type Cache struct {
	Dir string
}

// DefaultDir is $VIGIL_FOOTAGE or the .cache/footage folder of the
// repository that contains the working directory, else the user cache.
func DefaultDir() string {
	if d := os.Getenv("VIGIL_FOOTAGE"); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return filepath.Join(d, ".cache", "footage")
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "vigil", "footage")
	}
	return filepath.Join(os.TempDir(), "vigil-footage")
}

// Make returns the path of the clip named name, building it with ffmpeg
// args (output file appended) if no clip of that exact recipe exists. The
// recipe's hash is part of the file name, so a changed recipe rebuilds.
func (c Cache) Make(ctx context.Context, name string, args []string) (string, error) {
	sum := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	out := filepath.Join(c.Dir, fmt.Sprintf("%s-%s.mp4", name, hex.EncodeToString(sum[:4])))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("footage: %w", err)
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return "", errors.New("footage: ffmpeg is not installed (run `make deps`)")
	}
	// Several test binaries may build the same clip at once: each writes
	// its own temporary file and the rename makes one of them win whole.
	tmp, err := os.CreateTemp(c.Dir, name+"-*.tmp.mp4")
	if err != nil {
		return "", fmt.Errorf("footage: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	full := append([]string{"-nostdin", "-v", "error", "-y"}, args...)
	full = append(full, "-f", "mp4", tmp.Name())
	if msg, err := exec.CommandContext(ctx, "ffmpeg", full...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("footage: ffmpeg building %s: %v: %s", name, err, strings.TrimSpace(string(msg)))
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("footage: %w", err)
	}
	return out, nil
}

func sample(name string) (string, error) {
	p := filepath.Join(SamplesDir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("footage: %s is missing: install Debian's opencv-doc (`make deps`)", p)
	}
	return p, nil
}

// Pedestrians is opencv-doc's vtest.avi (768×576, 10 fps, 795 frames,
// people walking on a campus) as camera-like H.264.
func (c Cache) Pedestrians(ctx context.Context) (string, error) {
	src, err := sample("vtest.avi")
	if err != nil {
		return "", err
	}
	return c.Make(ctx, "pedestrians", append([]string{"-i", src, "-an"}, CameraX264(20)...))
}

// PedestriansMirrored is the second half of the same scene, mirrored, so a
// second simulated camera does not show the same people at the same time.
func (c Cache) PedestriansMirrored(ctx context.Context) (string, error) {
	src, err := sample("vtest.avi")
	if err != nil {
		return "", err
	}
	args := []string{"-i", src, "-an", "-vf", "hflip,trim=start=40,setpts=PTS-STARTPTS"}
	args = append(args, CameraX264(20)...)
	return c.Make(ctx, "pedestrians-mirrored", args)
}

// Tree is opencv-doc's tree.avi: leaves moving behind a window, nobody in
// the scene. Every alarm on it is a false alarm.
func (c Cache) Tree(ctx context.Context) (string, error) {
	src, err := sample("tree.avi")
	if err != nil {
		return "", err
	}
	return c.Make(ctx, "tree", append([]string{"-i", src, "-an"}, CameraX264(30)...))
}

// Burst is one span of a Bursts clip in which an object crosses the scene.
type Burst struct {
	Start, End float64 // seconds from the start of the clip
}

// BurstsClip describes a clip with a still, real background (the first
// frame of vtest.avi with camera-like sensor noise) in which a textured
// object crosses the picture during known spans: ground truth to the frame.
type BurstsClip struct {
	Seconds float64
	FPS     int
	Width   int
	Height  int
	Bursts  []Burst
	// H265 encodes with libx265 instead of libx264.
	H265 bool
}

// DefaultBursts is the clip the end-to-end tests use: 5 s of stillness to
// learn the background, then a 4 s crossing every 10 s.
func DefaultBursts() BurstsClip {
	return BurstsClip{Seconds: 40, FPS: 10, Width: 640, Height: 480,
		Bursts: []Burst{{5, 9}, {15, 19}, {25, 29}, {35, 39}}}
}

// Make builds the clip and returns its path.
func (b BurstsClip) Make(ctx context.Context, c Cache) (string, error) {
	src, err := sample("vtest.avi")
	if err != nil {
		return "", err
	}
	var enable, x []string
	for _, s := range b.Bursts {
		enable = append(enable, fmt.Sprintf("between(t,%g,%g)", s.Start, s.End))
		// Cross from 10% to 80% of the width during the burst.
		x = append(x, fmt.Sprintf("between(t,%g,%g)*(W*0.1+(t-%g)/%g*W*0.7)", s.Start, s.End, s.Start, s.End-s.Start))
	}
	ow, oh := b.Width/12, b.Height/4
	filter := fmt.Sprintf(
		"[0:v]trim=end_frame=1,scale=%d:%d,loop=loop=-1:size=1,fps=%d,trim=duration=%g,setpts=N/%d/TB,split[bg][src];"+
			"[src]crop=%d:%d:iw/2:ih/3,negate[obj];"+
			"[bg][obj]overlay=x='%s':y=H*0.55:enable='%s',noise=alls=3:allf=t",
		b.Width, b.Height, b.FPS, b.Seconds, b.FPS,
		ow, oh, strings.Join(x, "+"), strings.Join(enable, "+"))
	args := []string{"-i", src, "-filter_complex", filter, "-an", "-r", fmt.Sprint(b.FPS)}
	name := "bursts"
	if b.H265 {
		name = "bursts-h265"
		args = append(args, "-c:v", "libx265", "-pix_fmt", "yuv420p",
			"-x265-params", fmt.Sprintf("bframes=0:keyint=%d:min-keyint=%d:scenecut=0:repeat-headers=1:log-level=error", 2*b.FPS, 2*b.FPS), "-tag:v", "hvc1")
	} else {
		// Real cameras send a keyframe every 1-2 s; a client joining
		// mid-GOP waits for the next one, so keep that wait camera-like.
		args = append(args, CameraX264(2*b.FPS)...)
	}
	return c.Make(ctx, fmt.Sprintf("%s-%dx%d", name, b.Width, b.Height), args)
}
