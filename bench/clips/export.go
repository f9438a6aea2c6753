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
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// exportResult compares the store's export of a 10-minute range with
// ffmpeg concatenating the same segment files into one MP4 (-c copy).
type exportResult struct {
	video           time.Duration
	bytes           int64 // video bytes exported
	frames          int
	segments        int
	segBytes        int64
	mp4Bytes        int64 // the store's MP4
	ffBytes         int64 // ffmpeg's MP4
	storeFrames     string
	ffFrames        string
	storeCold       time.Duration // to a file, segments out of the page cache
	storeWarm       time.Duration // to a file, median of 3
	storeDiscard    time.Duration // to io.Discard, median of 3
	ffCold, ffWarm  time.Duration
	ttfbCold        time.Duration // OpenExport to the first Write, cold
	ttfbWarm        time.Duration // the least of the warm runs
	plan            time.Duration // OpenExport alone (warm)
	ttfbHTTP, httpT time.Duration
}

// exportBench records one camera for o.exportVideo (one segment a
// minute), then exports the whole range with Store.Export to a file and
// to io.Discard, and times `ffmpeg -f concat -c copy` of the same
// segment files to an MP4 file on the same disk: each once with the
// segments dropped from the page cache first (as after recording: the
// store drops them itself once synced) and three times warm.
func exportBench(o options, clip *sim.Clip) (exportResult, error) {
	dir, err := os.MkdirTemp(o.dir, "export-")
	if err != nil {
		return exportResult{}, err
	}
	defer os.RemoveAll(dir)
	storeDir := filepath.Join(dir, "store")
	s, err := clips.Open(clips.Config{Dir: storeDir, Log: o.log})
	if err != nil {
		return exportResult{}, err
	}
	defer s.Close()
	res := exportResult{video: o.exportVideo}
	if err := recordExport(s, clip, o.exportVideo); err != nil {
		return res, err
	}
	segs := segmentFiles(filepath.Join(storeDir, "video"))
	res.segments = len(segs)
	for _, p := range segs {
		if fi, err := os.Stat(p); err == nil {
			res.segBytes += fi.Size()
		}
	}
	from, to := epoch, epoch.Add(o.exportVideo)
	out := filepath.Join(dir, "export.mp4")

	// The store: cold, then three warm runs to a file, three to io.Discard.
	evictPages(segs)
	d, ttfb, err := res.exportTo(s, from, to, out)
	if err != nil {
		return res, err
	}
	res.storeCold, res.ttfbCold = d, ttfb
	var runs []time.Duration
	for range 3 {
		d, ttfb, err := res.exportTo(s, from, to, out)
		if err != nil {
			return res, err
		}
		runs = append(runs, d)
		if res.ttfbWarm == 0 || ttfb < res.ttfbWarm {
			res.ttfbWarm = ttfb
		}
	}
	res.storeWarm = median(runs)
	if st, err := os.Stat(out); err == nil {
		res.mp4Bytes = st.Size()
	}
	res.storeFrames = probe(out)
	runs = runs[:0]
	for range 3 {
		d, _, err := res.exportTo(s, from, to, "")
		if err != nil {
			return res, err
		}
		runs = append(runs, d)
	}
	res.storeDiscard = median(runs)
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

	// ffmpeg: the concat demuxer over the same segment files.
	list := filepath.Join(dir, "segments.txt")
	var b strings.Builder
	for _, p := range segs {
		fmt.Fprintf(&b, "file '%s'\n", p)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return res, err
	}
	ffOut := filepath.Join(dir, "ffmpeg.mp4")
	args := []string{"-f", "concat", "-safe", "0", "-i", list, "-c", "copy", "-f", "mp4", ffOut}
	evictPages(segs)
	if res.ffCold, err = timeFFmpeg(1, args...); err != nil {
		return res, err
	}
	if res.ffWarm, err = timeFFmpeg(3, args...); err != nil {
		return res, err
	}
	if st, err := os.Stat(ffOut); err == nil {
		res.ffBytes = st.Size()
	}
	res.ffFrames = probe(ffOut)
	return res, nil
}

// recordExport records video of camera "cam" into s as fast as it goes.
func recordExport(s *clips.Store, clip *sim.Clip, video time.Duration) error {
	r, err := s.Recorder("cam")
	if err != nil {
		return err
	}
	f := &feed{clip: clip, base: epoch}
	for f.pts() < video {
		au := f.next()
		for r.Pending() > 2<<20 {
			time.Sleep(time.Millisecond)
		}
		r.Write(au)
	}
	return s.Flush(context.Background())
}

// exportTo exports the range to the file out ("" for io.Discard): the
// time it took and the time from the call (OpenExport) to the first
// Write reaching the writer.
func (res *exportResult) exportTo(s *clips.Store, from, to time.Time, out string) (time.Duration, time.Duration, error) {
	var w io.Writer = io.Discard
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		w = f
	}
	tw := &timedWriter{w: w}
	start := time.Now()
	info, err := s.Export(context.Background(), tw, "cam", from, to)
	if err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	res.bytes, res.frames = info.Bytes, info.Frames
	return d, tw.first.Sub(start), nil
}

// probe is what ffprobe counts in an MP4: packets,duration.
func probe(path string) string {
	b, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_packets,duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		return "ffprobe failed: " + err.Error()
	}
	return string(trimSpace(b))
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
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("export over HTTP: %s", resp.Status)
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, one); err != nil {
		return err
	}
	res.ttfbHTTP = time.Since(start)
	io.Copy(io.Discard, resp.Body)
	res.httpT = time.Since(start)
	return nil
}

// timeFFmpeg is the median of n runs of ffmpeg with args.
func timeFFmpeg(n int, args ...string) (time.Duration, error) {
	var runs []time.Duration
	for range n {
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
