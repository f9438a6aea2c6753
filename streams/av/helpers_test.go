package av

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const vtestAVI = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// clipDir holds clips shared by all tests and benchmarks of one run;
// encoding them once keeps the package's tests fast.
var clipDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "av-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	clipDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	x264 = "-c:v libx264 -preset veryfast -profile:v main -bf 0 -g 15 -sc_threshold 0 -pix_fmt yuv420p -x264-params repeat-headers=1"
	x265 = "-c:v libx265 -preset veryfast -pix_fmt yuv420p -x265-params bframes=0:keyint=15:min-keyint=15:scenecut=0:repeat-headers=1:log-level=error"
)

func testsrc(size string, secs int) string {
	return fmt.Sprintf("-f lavfi -i testsrc2=size=%s:rate=15 -t %d", size, secs)
}

// clipArgs are the ffmpeg arguments (before the output name) of each clip;
// "@name" inputs refer to other clips.
var clipArgs = map[string]string{
	"h264_320.mp4":   testsrc("320x240", 3) + " " + x264,
	"h264_720.mp4":   testsrc("1280x720", 2) + " " + x264,
	"h264_96.mp4":    "-f lavfi -i testsrc2=size=96x64:rate=15 -t 1 " + x264,
	"h265_320.mp4":   testsrc("320x240", 3) + " " + x265,
	"h265_720.mp4":   testsrc("1280x720", 2) + " " + x265,
	"h264_320.mkv":   "-i @h264_320.mp4 -c copy",
	"h264_320.h264":  "-i @h264_320.mp4 -c copy",
	"h265_320.mkv":   "-i @h265_320.mp4 -c copy",
	"h265_320.h265":  "-i @h265_320.mp4 -c copy",
	"h264_320.avi":   "-i @h264_320.mp4 -c copy",
	"h264_full.mp4":  testsrc("320x240", 1) + " -c:v libx264 -preset veryfast -bf 0 -pix_fmt yuvj420p",
	"h265_10bit.mp4": testsrc("320x240", 1) + " -c:v libx265 -preset veryfast -pix_fmt yuv420p10le -x265-params bframes=0:log-level=error",
	"h264_bf.mp4":    testsrc("320x240", 3) + " -c:v libx264 -preset veryfast -bf 2 -g 15 -pix_fmt yuv420p",
	"vtest.mp4":      "-i " + vtestAVI + " -t 3 " + x264,
	"audio.m4a":      "-f lavfi -i sine=frequency=440 -t 1 -c:a aac",
}

var clips sync.Map // name -> *clipEntry

type clipEntry struct {
	once sync.Once
	path string
	err  error
}

// clip returns the path of a generated clip, encoding it on first use.
func clip(tb testing.TB, name string) string {
	tb.Helper()
	path, err := makeClip(name)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

func makeClip(name string) (string, error) {
	args, ok := clipArgs[name]
	if !ok {
		return "", fmt.Errorf("unknown clip %q", name)
	}
	v, _ := clips.LoadOrStore(name, &clipEntry{})
	e := v.(*clipEntry)
	e.once.Do(func() {
		var argv []string
		for _, a := range strings.Fields(args) {
			if strings.HasPrefix(a, "@") {
				if a, e.err = makeClip(a[1:]); e.err != nil {
					return
				}
			}
			argv = append(argv, a)
		}
		out := filepath.Join(clipDir, name)
		argv = append([]string{"-nostdin", "-v", "error", "-y"}, append(argv, out)...)
		if b, err := exec.Command("ffmpeg", argv...).CombinedOutput(); err != nil {
			e.err = fmt.Errorf("ffmpeg %s: %v\n%s", strings.Join(argv, " "), err, b)
			return
		}
		e.path = out
	})
	return e.path, e.err
}

type probe struct {
	Width, Height int
	FPS           float64
	Packets       int
	PTS           []float64 // seconds, in file order; DTS where PTS is unknown, NaN if neither is known
	Keys          []bool
}

func ratio(s string) float64 {
	num, den, _ := strings.Cut(s, "/")
	n, _ := strconv.ParseFloat(num, 64)
	d, _ := strconv.ParseFloat(den, 64)
	if d == 0 {
		return 0
	}
	return n / d
}

// ffprobe describes path's first video stream and its packets.
func ffprobe(tb testing.TB, path string) probe {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_packets,avg_frame_rate,width,height:packet=pts_time,dts_time,flags",
		"-of", "json", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct {
		Streams []struct {
			Width, Height int
			AvgFrameRate  string `json:"avg_frame_rate"`
			NbReadPackets string `json:"nb_read_packets"`
		}
		Packets []struct {
			PTSTime string `json:"pts_time"`
			DTSTime string `json:"dts_time"`
			Flags   string
		}
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		tb.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	s := r.Streams[0]
	p := probe{Width: s.Width, Height: s.Height, FPS: ratio(s.AvgFrameRate)}
	p.Packets, _ = strconv.Atoi(s.NbReadPackets)
	for _, pk := range r.Packets {
		t := math.NaN()
		for _, s := range []string{pk.PTSTime, pk.DTSTime} {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				t = v
				break
			}
		}
		p.PTS = append(p.PTS, t)
		p.Keys = append(p.Keys, strings.Contains(pk.Flags, "K"))
	}
	return p
}

// ffmpegGray returns ffmpeg's own GRAY8 rendering of frame 0 at w x h.
func ffmpegGray(tb testing.TB, path string, w, h int) []byte {
	tb.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-frames:v", "1",
		"-vf", fmt.Sprintf("scale=%d:%d:flags=area", w, h), "-pix_fmt", "gray", "-f", "rawvideo", "-").Output()
	if err != nil || len(out) != w*h {
		tb.Fatalf("ffmpeg gray %s: %v (%d bytes)", path, err, len(out))
	}
	return out
}

// ffmpegRGB returns ffmpeg's RGB24 rendering of frame 0 at w x h.
func ffmpegRGB(tb testing.TB, path string, w, h int) []byte {
	tb.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-frames:v", "1",
		"-vf", fmt.Sprintf("scale=%d:%d:flags=area", w, h), "-pix_fmt", "rgb24", "-f", "rawvideo", "-").Output()
	if err != nil || len(out) != w*h*3 {
		tb.Fatalf("ffmpeg rgb %s: %v (%d bytes)", path, err, len(out))
	}
	return out
}

func meanAbsDiff(a, b []byte) float64 {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return float64(sum) / float64(len(a))
}

func mean(a []byte) float64 {
	var sum int
	for _, v := range a {
		sum += int(v)
	}
	return float64(sum) / float64(len(a))
}

// readClip reads a generated clip whole.
func readClip(tb testing.TB, name string) (FileInfo, []Packet) {
	tb.Helper()
	info, pkts, err := ReadFile(clip(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return info, pkts
}

func newDecoder(tb testing.TB, c Codec) *Decoder {
	tb.Helper()
	d, err := NewDecoder(c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return d
}

// decodeAll decodes pkts and fails unless every AU yields its picture.
func decodeAll(tb testing.TB, d *Decoder, pkts []Packet) {
	tb.Helper()
	for i, p := range pkts {
		got, err := d.Decode(p.AU)
		if err != nil || !got {
			tb.Fatalf("AU %d: got=%v err=%v", i, got, err)
		}
	}
}
