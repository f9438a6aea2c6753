package clips

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// changeClip is 10 s of camera-like video at 10 fps with a keyframe
// every 2 s, of the given size and codec.
func changeClip(t testing.TB, width, height int, h265 bool) *sim.Clip {
	return testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: width, Height: height,
		Bursts: []footage.Burst{{Start: 2, End: 6}}, H265: h265})
}

// play writes a clip once, as a camera delivers it: PTS from pts0, the
// wall clock from wall0.
func play(t testing.TB, r *Recorder, clip *sim.Clip, pts0 time.Duration, wall0 time.Time) {
	t.Helper()
	for _, p := range clip.Packets {
		for r.Pending() > r.s.cfg.MaxPendingBytes/2 {
			time.Sleep(time.Millisecond)
		}
		r.Write(streams.AccessUnit{Codec: clip.Info.Codec, NALUs: p.AU, PTS: pts0 + p.PTS, Time: wall0.Add(p.PTS),
			TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: avccSize(p.AU)})
	}
}

// TestExportAcrossChange records a camera that changes picture size or
// codec mid-stream (reconfigured on the fly, or replaced after an
// outage) and exports a range across the change: it comes out as one MP4
// per sample description, each of which ffmpeg decodes without a word
// and ffprobe reports at its own size, with parts that abut where no
// frame was lost; the timeline shows no gap there.
func TestExportAcrossChange(t *testing.T) {
	for _, tc := range []changeCase{
		{"picture size", false, "h264", 0},
		{"h264 to h265", true, "hevc", 0},
		{"replaced after an outage", false, "h264", 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.record(t)
			parts, files := c.checkParts(t)
			c.checkTimeline(t)
			c.checkChunks(t)
			c.checkOnePart(t)
			c.checkThumbnails(t)
			c.checkHTTP(t, parts, files)
		})
	}
}

// changeCase is a camera that changes mid-stream.
type changeCase struct {
	name   string
	h265   bool          // the second camera's codec
	codec  string        // as ffprobe names it
	outage time.Duration // between the two; 0: a live change, PTS going on
}

// changeRun is a changeCase recorded, and the range exported across the
// change with the parts it should come out as.
type changeRun struct {
	changeCase
	s        *Store
	r        *Recorder
	change   time.Duration // the second camera's first frame
	from, to time.Time
	want     []ExportInfo
}

func (c *changeRun) at(d time.Duration) time.Time { return epoch.Add(d) }

// record plays the first camera's clip and then the second's.
func (tc changeCase) record(t *testing.T) *changeRun {
	c := &changeRun{changeCase: tc}
	first, second := changeClip(t, 640, 360, false), changeClip(t, 320, 240, c.h265)
	if first.Duration != 10*time.Second || second.Duration != 10*time.Second {
		t.Fatalf("clips of %v and %v, want 10 s each", first.Duration, second.Duration)
	}
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	c.s, c.r = s, r
	play(t, r, first, 0, epoch)
	change := 10*time.Second + c.outage
	c.change = change
	if c.outage == 0 {
		play(t, r, second, 10*time.Second, epoch.Add(change))
	} else {
		play(t, r, second, 0, epoch.Add(change)) // a new RTSP session
	}
	flush(t, s)
	at := c.at

	// 5 s before the change to 5 s after: from the keyframe at 4 s.
	c.from, c.to = at(5*time.Second), at(change+5*time.Second)
	c.want = []ExportInfo{
		{Camera: "gate", Codec: "H264", Width: 640, Height: 360, Start: at(4 * time.Second), End: at(10 * time.Second),
			Frames: 60, Span: 6 * time.Second, Next: at(change)},
		{Camera: "gate", Codec: map[bool]string{false: "H264", true: "H265"}[c.h265], Width: 320, Height: 240,
			Start: at(change), End: at(change + 5*time.Second), Frames: 50, Span: 5 * time.Second},
	}
	return c
}

// checkParts lists the parts, exports each on its own and has ffmpeg
// decode and ffprobe measure them; it returns the parts and their files.
func (c *changeRun) checkParts(t *testing.T) ([]ExportInfo, []string) {
	s, from, to, want := c.s, c.from, c.to, c.want
	parts, err := s.ExportParts("gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(want) {
		t.Fatalf("%d parts %+v, want %d", len(parts), parts, len(want))
	}
	var files []string
	for i, p := range parts {
		w := want[i]
		w.Bytes = p.Bytes
		if p != w {
			t.Errorf("part %d: %+v\nwant %+v", i, p, w)
		}
		// Each part is exported on its own, from where the one
		// before says the rest starts.
		start := from
		if i > 0 {
			start = parts[i-1].Next
		}
		path, info := exportFile(t, s, "gate", start, to)
		if info != p {
			t.Errorf("part %d exported as %+v, listed as %+v", i, info, p)
		}
		if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("part %d: ffmpeg decoding: %v: %s", i, err, out)
		}
		pr := ffprobe(t, path)
		codec := "h264"
		if i == 1 {
			codec = c.codec
		}
		if pr.Codec != codec || pr.Width != w.Width || pr.Height != w.Height || pr.Frames != w.Frames || !pr.FirstKey {
			t.Errorf("part %d: ffprobe %+v, want %s %dx%d, %d frames, a keyframe first", i, pr, codec, w.Width, w.Height, w.Frames)
		}
		if math.Abs(pr.Duration-w.Span.Seconds()) > 0.0005 {
			t.Errorf("part %d: %.4f s, want %.4f s", i, pr.Duration, w.Span.Seconds())
		}
		files = append(files, path)
	}
	abut := parts[0].End.Equal(parts[1].Start)
	if abut != (c.outage == 0) {
		t.Errorf("part 0 ends at %v, part 1 starts at %v: want them to abut only without an outage", parts[0].End, parts[1].Start)
	}
	return parts, files
}

// checkTimeline: one span over a live change; the outage is the only gap.
func (c *changeRun) checkTimeline(t *testing.T) {
	s, at, change := c.s, c.at, c.change
	tl, err := s.Timeline("gate", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantSpans := []Span{{Start: at(0), End: at(change + 10*time.Second)}}
	if c.outage > 0 {
		wantSpans = []Span{{Start: at(0), End: at(10 * time.Second)}, {Start: at(change), End: at(change + 10*time.Second)}}
	}
	if len(tl.Spans) != len(wantSpans) || len(tl.Gaps) != len(wantSpans)-1 {
		t.Fatalf("timeline %+v, want spans %+v", tl, wantSpans)
	}
	for i, sp := range tl.Spans {
		if !sp.Start.Equal(wantSpans[i].Start) || !sp.End.Equal(wantSpans[i].End) {
			t.Errorf("span %d: %v..%v, want %v..%v", i, sp.Start, sp.End, wantSpans[i].Start, wantSpans[i].End)
		}
	}
}

// checkChunks: chunk keys in time order; the change starts a chunk of its
// own.
func (c *changeRun) checkChunks(t *testing.T) {
	s, r, at, change, want := c.s, c.r, c.at, c.change, c.want
	var starts []int64
	var sizes []string
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: camPrefix(tagMeta, r.id)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			c, err := readChunk(it.Item())
			if err != nil {
				return err
			}
			w, h := pictureSize(c.meta.Codec, c.meta.Params)
			starts = append(starts, c.start)
			sizes = append(sizes, c.meta.Codec.String()+" "+strconv.Itoa(w)+"x"+strconv.Itoa(h))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for i := range starts {
		if i > 0 && starts[i] <= starts[i-1] {
			t.Errorf("chunk keys out of order: %v after %v", time.Unix(0, starts[i]).UTC(), time.Unix(0, starts[i-1]).UTC())
		}
		if starts[i] == at(change).UnixNano() {
			changed = i > 0 && sizes[i] != sizes[i-1] && sizes[i] == want[1].Codec+" 320x240"
		}
	}
	if !changed {
		t.Errorf("no chunk of %s 320x240 starts at the change (chunks %v)", want[1].Codec, sizes)
	}
}

// checkOnePart: ranges that end or start at the change are one part.
func (c *changeRun) checkOnePart(t *testing.T) {
	s, at, change := c.s, c.at, c.change
	for _, rg := range []struct{ from, to, start, end time.Duration }{
		{5 * time.Second, 10 * time.Second, 4 * time.Second, 10 * time.Second},
		{change, change + 5*time.Second, change, change + 5*time.Second},
	} {
		parts, err := s.ExportParts("gate", at(rg.from), at(rg.to))
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 1 || !parts[0].Start.Equal(at(rg.start)) || !parts[0].End.Equal(at(rg.end)) || !parts[0].Next.IsZero() {
			t.Errorf("%v..%v: parts %+v, want one from %v to %v", rg.from, rg.to, parts, rg.start, rg.end)
		}
	}
}

// checkThumbnails: thumbnails decode at the size of their side.
func (c *changeRun) checkThumbnails(t *testing.T) {
	s, at, change := c.s, c.at, c.change
	for _, th := range []struct {
		at   time.Duration
		w, h int
	}{{9900 * time.Millisecond, 640, 360}, {change, 320, 240}, {change + 3*time.Second, 320, 240}} {
		got, err := s.Thumbnail("gate", at(th.at), 0)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(got.JPEG))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != th.w || b.Dy() != th.h {
			t.Errorf("thumbnail at %v: %v, want %dx%d", th.at, b, th.w, th.h)
		}
	}
}

// checkHTTP: over HTTP, the first part and a Link to the rest.
func (c *changeRun) checkHTTP(t *testing.T, parts []ExportInfo, files []string) {
	s, from, to := c.s, c.from, c.to
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	link := regexp.MustCompile(`^<(/[^>]*)>; rel="next"$`)
	next := "/api/v1/recordings/gate/mp4?start=" + from.Format(time.RFC3339Nano) + "&duration=" + to.Sub(from).String()
	for i := range parts {
		res, err := http.Get(srv.URL + next)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", next, res.StatusCode, body)
		}
		h := res.Header
		if got, want := h.Get("X-Vigil-Parts"), strconv.Itoa(len(parts)-i); got != want {
			t.Errorf("part %d: X-Vigil-Parts %q, want %q", i, got, want)
		}
		if h.Get("X-Vigil-Start") != parts[i].Start.Format(time.RFC3339Nano) || h.Get("X-Vigil-Width") != strconv.Itoa(parts[i].Width) ||
			h.Get("X-Vigil-Height") != strconv.Itoa(parts[i].Height) || h.Get("X-Vigil-Codec") != parts[i].Codec {
			t.Errorf("part %d: headers %v, want those of %+v", i, h, parts[i])
		}
		if file, err := os.ReadFile(files[i]); err != nil || !bytes.Equal(body, file) {
			t.Errorf("part %d over HTTP: %d bytes differ from the export's (%v)", i, len(body), err)
		}
		m := link.FindStringSubmatch(h.Get("Link"))
		if i == len(parts)-1 {
			if m != nil {
				t.Errorf("the last part links on: %q", h.Get("Link"))
			}
			break
		}
		if m == nil {
			t.Fatalf("part %d: Link %q, want the rest as rel=next", i, h.Get("Link"))
		}
		next = m[1]
	}
}

// TestExportEndsBeforeGap: a range that ends in a gap ends with its last
// frame, not where the video resumes.
func TestExportEndsBeforeGap(t *testing.T) {
	clip := bursts(t)
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	record(t, r, newFeed(clip, epoch), epoch.Add(20*time.Second))
	record(t, r, newFeed(clip, epoch.Add(50*time.Second)), epoch.Add(60*time.Second))
	flush(t, s)
	path, info := exportFile(t, s, "gate", epoch.Add(15*time.Second), epoch.Add(30*time.Second))
	if !info.End.Equal(epoch.Add(20*time.Second)) || info.Frames != 60 || !info.Next.IsZero() {
		t.Errorf("export %+v, want 60 frames ending at 20 s", info)
	}
	if p := ffprobe(t, path); p.Frames != 60 || math.Abs(p.Duration-6) > 0.0005 {
		t.Errorf("ffprobe %+v, want 60 frames over 6 s", p)
	}
	b, _ := json.Marshal(info)
	if bytes.Contains(b, []byte(`"next"`)) {
		t.Errorf("an export without a change names a next part: %s", b)
	}
}
