package camera

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// switchAt is when the reconfigured camera's stream changes.
const switchAt = 10 * time.Second

// vtestSegment encodes part of vtest.avi (people walking on a campus)
// through an ffmpeg filter, as one camera profile would send it.
func vtestSegment(t *testing.T, name string, from, seconds int, filter string, codec []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-ss", fmt.Sprint(from), "-i", footage.SamplesDir + "/vtest.avi", "-t", fmt.Sprint(seconds), "-an", "-vf", filter}
	path, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, "reframe-"+name, append(args, codec...))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// x265 encodes like an H.265 camera: no B-frames, 2 s GOP, headers in band.
var x265 = []string{"-c:v", "libx265", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
	"-x265-params", "bframes=0:keyint=20:min-keyint=20:scenecut=0:repeat-headers=1:log-level=error"}

// joinTS joins H.264 segments into one MPEG-TS with ffmpeg's concat
// demuxer, without re-encoding: one stream whose SPS, and picture size,
// change at the joins, as a camera reconfigured mid-stream sends it.
// ffprobe, not our demuxer, confirms that the sizes change.
func joinTS(t *testing.T, segments ...string) string {
	t.Helper()
	dir := t.TempDir()
	var list strings.Builder
	for _, s := range segments {
		fmt.Fprintf(&list, "file '%s'\n", s)
	}
	listPath, out := filepath.Join(dir, "list.txt"), filepath.Join(dir, "joined.ts")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "concat", "-safe", "0", "-i", listPath,
		"-c", "copy", "-f", "mpegts", out).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg concat: %v: %s", err, msg)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=width,height",
		"-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var sizes []string
	for _, l := range strings.Fields(string(probe)) {
		l = strings.TrimRight(l, ",") // some frames carry empty side data fields
		if len(sizes) == 0 || sizes[len(sizes)-1] != l {
			sizes = append(sizes, l)
		}
	}
	if len(sizes) != len(segments) {
		t.Fatalf("ffprobe sees picture sizes %v in the joined stream", sizes)
	}
	return out
}

// TestAnalyzerFollowsStreamChange: a camera reconfigured mid-stream to
// another resolution (of another aspect, or the same aspect and so the
// same analysis size) or codec keeps being analysed: no error, no tamper
// event (its reference is learned anew, not compared across pictures),
// and motion detection goes on after the change.
func TestAnalyzerFollowsStreamChange(t *testing.T) {
	h264 := footage.CameraX264(20)
	cases := []struct {
		name       string
		files      func(t *testing.T) []string // played one after the other
		before     [2]int                      // analysis size before the change
		after      [2]int
		sameFormat bool // the decoded size does not change (only the codec)
	}{
		{"4:3-to-16:9", func(t *testing.T) []string {
			return []string{joinTS(t,
				vtestSegment(t, "768x576", 0, 10, "null", h264),
				vtestSegment(t, "640x360", 10, 15, "crop=768:432,scale=640:360", h264))}
		}, [2]int{320, 240}, [2]int{320, 180}, false},
		{"768x576-to-384x288", func(t *testing.T) []string {
			return []string{joinTS(t,
				vtestSegment(t, "768x576", 0, 10, "null", h264),
				vtestSegment(t, "384x288", 10, 15, "scale=384:288", h264))}
		}, [2]int{320, 240}, [2]int{320, 240}, false},
		{"h264-to-h265", func(t *testing.T) []string {
			return []string{
				vtestSegment(t, "768x576", 0, 10, "null", h264),
				vtestSegment(t, "768x576-h265", 10, 15, "null", x265)}
		}, [2]int{320, 240}, [2]int{320, 240}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			an, err := NewAnalyzer(AnalyzerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer an.Close()
			epoch := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
			var offset time.Duration
			var errs, analysedAfter, motionAfter int
			var learnedBefore, relearning, learnedAfter bool
			var codecs []av.Codec
			for _, path := range c.files(t) {
				info, pkts, err := av.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				codecs = append(codecs, info.Codec)
				var end time.Duration
				for _, p := range pkts {
					pts := offset + p.PTS
					end = max(end, pts)
					au := streams.AccessUnit{Codec: info.Codec, NALUs: p.AU, PTS: pts, Time: epoch.Add(pts), TimeSource: streams.TimeFile, Key: p.Key}
					f, err := an.Feed(au)
					if err != nil {
						if errs++; errs <= 3 {
							t.Errorf("at %.1f s: %v", pts.Seconds(), err)
						}
						continue
					}
					for _, ev := range slices.Concat(f.Tamper.Started, f.Tamper.Cleared) {
						t.Errorf("tamper %s (cleared %v) at %.1f s: %s", ev.Kind, ev.Cleared, pts.Seconds(), ev.Detail)
					}
					if !f.Analysed {
						continue
					}
					size := [2]int{f.Width, f.Height}
					if pts < switchAt {
						if size != c.before {
							t.Fatalf("analysed %v at %.1f s, before the change", size, pts.Seconds())
						}
						learnedBefore = !f.Tamper.Learning
						continue
					}
					if size != c.after {
						t.Fatalf("analysed %v at %.1f s, after the change", size, pts.Seconds())
					}
					if analysedAfter == 0 {
						relearning = f.Tamper.Learning
					}
					analysedAfter++
					learnedAfter = !f.Tamper.Learning
					if f.Motion.Started != nil {
						motionAfter++
					}
				}
				offset = end + 100*time.Millisecond // 10 fps
			}
			t.Logf("codecs %v; after the change: %d frames analysed, %d motion events, learning at once %v, learned again %v",
				codecs, analysedAfter, motionAfter, relearning, learnedAfter)
			if !learnedBefore {
				t.Error("the view was not learned before the change")
			}
			if !relearning {
				t.Error("the tamper reference was not learned anew after the change")
			}
			if !learnedAfter {
				t.Error("the view was not learned again after the change")
			}
			if want := 15 * 5 * 9 / 10; analysedAfter < want {
				t.Errorf("%d frames analysed in the 15 s after the change, want at least %d", analysedAfter, want)
			}
			if motionAfter == 0 {
				t.Error("no motion detected after the change")
			}
		})
	}
}
