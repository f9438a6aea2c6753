package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// exportResult compares exporting a 10-minute range with ffmpeg remuxing
// the same H.264 into MP4.
type exportResult struct {
	video                   time.Duration
	bytes                   int64 // video bytes exported
	store, httpTotal        time.Duration
	ttfbHTTP                time.Duration
	ttfbCold, ttfbWarm      time.Duration
	plan                    time.Duration // OpenExport: reading the part tables
	ffmpegRaw, ffmpegRemux  time.Duration
	rawBytes, mp4Bytes      int64
	frames                  int
	ffprobeFrames, probeDur string
}

// exportBench records one camera for o.exportVideo, then exports it to a
// file (median of three) and over HTTP, and times ffmpeg -c copy on the
// same access units, from a raw Annex-B file and from the exported MP4.
func exportBench(o options, clip *sim.Clip) (exportResult, error) {
	dir, err := os.MkdirTemp(o.dir, "export-")
	if err != nil {
		return exportResult{}, err
	}
	defer os.RemoveAll(dir)
	s, err := clips.Open(clips.Config{Dir: filepath.Join(dir, "store"), Log: o.log})
	if err != nil {
		return exportResult{}, err
	}
	defer s.Close()
	res := exportResult{video: o.exportVideo}
	if res.rawBytes, err = recordExport(s, clip, o.exportVideo, filepath.Join(dir, "raw.h264")); err != nil {
		return res, err
	}
	from, to := epoch, epoch.Add(o.exportVideo)
	out := filepath.Join(dir, "export.mp4")
	if err := res.exportFile(s, from, to, out); err != nil {
		return res, err
	}
	for range 2 {
		start := time.Now()
		e, err := s.OpenExport("cam", from, to)
		if err != nil {
			return res, err
		}
		res.plan = time.Since(start)
		e.Close()
	}
	if err := res.exportHTTP(s, from, o.exportVideo); err != nil {
		return res, err
	}
	if res.ffmpegRaw, err = timeFFmpeg("-f", "h264", "-framerate", fmt.Sprint(clip.Info.FPS),
		"-i", filepath.Join(dir, "raw.h264"), "-c", "copy", "-f", "mp4", filepath.Join(dir, "ffmpeg-raw.mp4")); err != nil {
		return res, err
	}
	if res.ffmpegRemux, err = timeFFmpeg("-i", out, "-c", "copy", "-f", "mp4", filepath.Join(dir, "ffmpeg-remux.mp4")); err != nil {
		return res, err
	}
	return res, nil
}

// recordExport records video of camera "cam" into s, and the same access
// units as Annex-B into rawPath, returning the raw file's size.
func recordExport(s *clips.Store, clip *sim.Clip, video time.Duration, rawPath string) (int64, error) {
	r, err := s.Recorder("cam")
	if err != nil {
		return 0, err
	}
	raw, err := os.Create(rawPath)
	if err != nil {
		return 0, err
	}
	var rawBytes int64
	f := &feed{clip: clip, base: epoch}
	for f.pts() < video {
		au := f.next()
		for r.Pending() > 2<<20 {
			time.Sleep(time.Millisecond)
		}
		r.Write(au)
		for _, nalu := range au.NALUs {
			raw.Write([]byte{0, 0, 0, 1})
			raw.Write(nalu)
			rawBytes += int64(4 + len(nalu))
		}
	}
	raw.Close()
	return rawBytes, s.Flush(context.Background())
}

// exportFile exports the range to out three times: the median time, the
// first byte's delay cold (the first read since recording) and warm, and
// what ffprobe counts in the file.
func (res *exportResult) exportFile(s *clips.Store, from, to time.Time, out string) error {
	var runs []time.Duration
	for range 3 {
		fw, err := os.Create(out)
		if err != nil {
			return err
		}
		tw := &timedWriter{w: fw}
		start := time.Now()
		info, err := s.Export(context.Background(), tw, "cam", from, to)
		fw.Close()
		if err != nil {
			return err
		}
		runs = append(runs, time.Since(start))
		if ttfb := tw.first.Sub(start); len(runs) == 1 {
			res.ttfbCold = ttfb // the first read since recording: from disk
		} else if res.ttfbWarm == 0 || ttfb < res.ttfbWarm {
			res.ttfbWarm = ttfb
		}
		res.bytes, res.frames = info.Bytes, info.Frames
	}
	res.store = median(runs)
	if st, err := os.Stat(out); err == nil {
		res.mp4Bytes = st.Size()
	}
	if b, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_packets,duration", "-of", "csv=p=0", out).Output(); err == nil {
		res.ffprobeFrames = string(trimSpace(b))
	}
	return nil
}

// exportHTTP times the same export over the store's HTTP handler: first
// byte and all of it.
func (res *exportResult) exportHTTP(s *clips.Store, from time.Time, video time.Duration) error {
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/recordings/cam/mp4?start=%s&duration=%s", srv.URL, from.Format(time.RFC3339), video))
	if err != nil {
		return err
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, one); err != nil {
		return err
	}
	res.ttfbHTTP = time.Since(start)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res.httpTotal = time.Since(start)
	return nil
}

// timeFFmpeg is the median of three runs of ffmpeg with args.
func timeFFmpeg(args ...string) (time.Duration, error) {
	var runs []time.Duration
	for range 3 {
		start := time.Now()
		if msg, err := exec.Command("ffmpeg", append([]string{"-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("ffmpeg: %v: %s", err, msg)
		}
		runs = append(runs, time.Since(start))
	}
	return median(runs), nil
}

// timedWriter notes when the first byte was written.
type timedWriter struct {
	w     io.Writer
	first time.Time
}

func (t *timedWriter) Write(b []byte) (int, error) {
	if t.first.IsZero() {
		t.first = time.Now()
	}
	return t.w.Write(b)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
