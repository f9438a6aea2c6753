package clips

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// TestTickNS checks that tickNS and the 90 kHz rounding invert each other.
func TestTickNS(t *testing.T) {
	vals := []int64{0, 1, 2, 8, 9, 10, 3000, 3003, 89999, 90000, 90001, 5_400_000, 1 << 40}
	for i := range 2000 {
		vals = append(vals, int64(i), rand.Int64N(1<<32), rand.Int64N(maxSegTicks))
	}
	for _, v := range vals {
		for _, tk := range []int64{v, -v} {
			ns := tickNS(tk)
			if got := segTicks(int64(ns)); got != tk {
				t.Fatalf("segTicks(tickNS(%d) = %d) = %d", tk, ns, got)
			}
			if tk >= 0 && tk < 1<<32 && ticks(int64(ns)) != tk {
				t.Fatalf("ticks(tickNS(%d) = %d) = %d", tk, ns, ticks(int64(ns)))
			}
			if back := tickNS(segTicks(int64(ns))); back != ns {
				t.Fatalf("tickNS(segTicks(%d)) = %d", ns, back)
			}
		}
	}
	if tickNS(90000) != time.Second || tickNS(3000) != 33333333 || tickNS(-3000) != -33333333 {
		t.Fatalf("tickNS: 90000 → %v, 3000 → %v, -3000 → %v", tickNS(90000), tickNS(3000), tickNS(-3000))
	}
}

// clipParams returns the parameter sets of a clip's first keyframe.
func clipParams(t *testing.T, clip *sim.Clip) [][]byte {
	t.Helper()
	for _, p := range clip.Packets {
		if p.Key {
			if ps := paramSets(clip.Info.Codec, p.AU); len(ps) > 0 {
				return ps
			}
		}
	}
	t.Fatal("clip has no parameter sets")
	return nil
}

// testParams are real parameter sets of both codecs.
func testParams(t *testing.T) map[av.Codec][][]byte {
	return map[av.Codec][][]byte{
		av.H264: clipParams(t, bursts(t)),
		av.H265: clipParams(t, burstsH265(t)),
	}
}

// ausAt builds a fragment's table from PTS in ticks (decode order), a
// keyframe wherever key lists the index.
func ausAt(pts []int64, key ...int) []auEntry {
	out := make([]auEntry, len(pts))
	for i, p := range pts {
		out[i] = auEntry{Offset: tickNS(p), Size: uint32(50 + 37*i%200)}
	}
	for _, k := range key {
		out[k].Key = true
	}
	return out
}

// segBuilder writes a segment in memory with filler payloads.
type segBuilder struct {
	b     []byte
	frags []scannedFragment
}

// add appends one fragment and remembers where it lies.
func (s *segBuilder) add(aus []auEntry, next time.Duration) {
	off := int64(len(s.b))
	var hl int
	seq := uint32(len(s.frags))
	s.b, hl = appendFragment(s.b, seq, aus, next)
	f := scannedFragment{Offset: off, Payload: off + int64(hl), Seq: seq, AUs: aus}
	for i, a := range aus {
		s.b = append(s.b, bytes.Repeat([]byte{byte(i)}, int(a.Size))...)
	}
	f.End = int64(len(s.b))
	s.frags = append(s.frags, f)
}

// sampleSegment builds a header and fragments covering reordering, a
// keyframe inside a fragment, repeated and negative times.
func sampleSegment(t *testing.T, c av.Codec, params [][]byte) (segHeader, []byte, []scannedFragment) {
	t.Helper()
	h := segHeader{Start: 1_772_366_400_123_456_789, StartPTS: -7 * time.Second, Source: "rtcp", Codec: c, Params: params}
	hb, err := encodeSegmentHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	s := &segBuilder{b: hb}
	s.add(ausAt([]int64{0, 3000, 6000, 9000}, 0), tickNS(12000))
	s.add(ausAt([]int64{12000, 15000, 18000, 21000, 24000}, 2), 0)                           // keyframe mid-fragment
	s.add(ausAt([]int64{27000, 36000, 30000, 33000, 45000, 39000, 42000}, 0), tickNS(48000)) // B-frames
	s.add(ausAt([]int64{48000, 48000, 51000, 50999}, 1), 0)                                  // equal and crossing times
	s.add(ausAt([]int64{-3000, 54000, 57000}), tickNS(60000))                                // open-GOP leading picture
	s.add(ausAt([]int64{60000}), 0)                                                          // a lone unit
	s.add(nil, 0)                                                                            // an empty fragment
	s.add(ausAt([]int64{63000, 66000}, 0), 0)
	return h, s.b, s.frags
}

// TestSegmentRoundTrip writes segments of both codecs and scans them back.
func TestSegmentRoundTrip(t *testing.T) {
	for c, params := range testParams(t) {
		t.Run(c.String(), func(t *testing.T) {
			h, b, want := sampleSegment(t, c, params)
			got, hl, frags, end, damage, err := scanSegment(bytes.NewReader(b), int64(len(b)), 0)
			if err != nil || damage != nil {
				t.Fatalf("scan: %v, damage %v", err, damage)
			}
			if !reflect.DeepEqual(got, h) {
				t.Fatalf("header %+v, want %+v", got, h)
			}
			if hl != want[0].Offset || end != int64(len(b)) {
				t.Fatalf("header length %d, end %d; want %d, %d", hl, end, want[0].Offset, len(b))
			}
			checkFrags(t, frags, want)
			// From a fragment boundary.
			_, _, frags, _, damage, err = scanSegment(bytes.NewReader(b), int64(len(b)), want[2].Offset)
			if err != nil || damage != nil {
				t.Fatalf("scan from %d: %v, damage %v", want[2].Offset, err, damage)
			}
			checkFrags(t, frags, want[2:])
		})
	}
}

// checkFrags compares scanned fragments with the ones written.
func checkFrags(t *testing.T, got, want []scannedFragment) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d fragments, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if len(g.AUs) == 0 && len(w.AUs) == 0 {
			g.AUs, w.AUs = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("fragment %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// TestFragmentTiming checks decode times, composition offsets and the
// last unit's duration.
func TestFragmentTiming(t *testing.T) {
	for _, tc := range []struct {
		pts      []int64
		next     time.Duration
		dts      []int64
		dur      []uint32
		reorders bool
	}{
		{[]int64{0, 3000, 6000}, 0, []int64{0, 3000, 6000}, []uint32{3000, 3000, 3000}, false},
		{[]int64{0, 3000, 6000}, tickNS(9100), []int64{0, 3000, 6000}, []uint32{3000, 3000, 3100}, false},
		{[]int64{0, 3000, 6000}, tickNS(6000), []int64{0, 3000, 6000}, []uint32{3000, 3000, 1}, false},
		{[]int64{500}, 0, []int64{500}, []uint32{3000}, false},
		{[]int64{0, 9000, 3000, 6000}, tickNS(12000), []int64{0, 3000, 6000, 9000}, []uint32{3000, 3000, 3000, 3000}, true},
		{[]int64{0, 0, 10}, 0, []int64{0, 1, 10}, []uint32{1, 9, 9}, true},
		{[]int64{-3000, 0}, tickNS(3000), []int64{0, 3000}, []uint32{3000, 3000}, false},
	} {
		pts, dts, dur := fragmentTiming(ausAt(tc.pts), tc.next)
		if !reflect.DeepEqual(pts, tc.pts) || !reflect.DeepEqual(dts, tc.dts) || !reflect.DeepEqual(dur, tc.dur) {
			t.Errorf("%v next %v: pts %v dts %v dur %v; want dts %v dur %v", tc.pts, tc.next, pts, dts, dur, tc.dts, tc.dur)
		}
	}
}

// TestSegmentTornTail cuts the file at every byte inside its last fragment.
func TestSegmentTornTail(t *testing.T) {
	params := testParams(t)[av.H264]
	_, b, want := sampleSegment(t, av.H264, params)
	last := want[len(want)-1]
	for cut := last.Offset + 1; cut < last.End; cut++ {
		_, _, frags, end, damage, err := scanSegment(bytes.NewReader(b[:cut]), cut, 0)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if end != last.Offset || damage == nil || !strings.Contains(damage.Error(), "offset") {
			t.Fatalf("cut at %d: valid end %d, damage %v; want %d and damage", cut, end, damage, last.Offset)
		}
		checkFrags(t, frags, want[:len(want)-1])
	}
	// A cut inside the header: not a segment.
	for cut := int64(0); cut < want[0].Offset; cut += 7 {
		_, _, _, _, _, err := scanSegment(bytes.NewReader(b[:cut]), cut, 0)
		if !errors.Is(err, errNotSegment) {
			t.Fatalf("header cut at %d: %v", cut, err)
		}
	}
}

// TestSegmentDamage feeds broken files: no panic, sensible errors.
func TestSegmentDamage(t *testing.T) {
	params := testParams(t)[av.H264]
	_, b, want := sampleSegment(t, av.H264, params)
	third := want[2].Offset
	huge := append([]byte(nil), b[:third]...)
	huge = binary.BigEndian.AppendUint32(huge, 0xFFFFFFF0)
	huge = append(huge, "moof"...)
	hugeMdat := append([]byte(nil), b[:want[0].End]...)
	hugeMdat, _ = appendFragment(hugeMdat, 1, ausAt([]int64{3000}), 0)
	binary.BigEndian.PutUint32(hugeMdat[len(hugeMdat)-8:], 1) // largesize, missing
	badMagic := bytes.Clone(b)
	i := bytes.Index(badMagic, []byte(segMagic))
	badMagic[i] = 'X'
	badVersion := bytes.Clone(b)
	badVersion[i+len(segMagic)] = 2
	for _, tc := range []struct {
		name    string
		b       []byte
		end     int64
		notSeg  bool
		damaged bool
	}{
		{"garbage", append(bytes.Clone(b[:third]), bytes.Repeat([]byte("garbage!"), 20)...), third, false, true},
		{"zeros", append(bytes.Clone(b[:third]), make([]byte, 100)...), third, false, true},
		{"huge moof", huge, third, false, true},
		{"torn largesize mdat", hugeMdat, want[0].End, false, true},
		{"empty", nil, 0, true, false},
		{"wrong magic", badMagic, 0, true, false},
		{"wrong version", badVersion, 0, true, false},
		{"not mp4", bytes.Repeat([]byte{0xff}, 1000), 0, true, false},
	} {
		_, _, _, end, damage, err := scanSegment(bytes.NewReader(tc.b), int64(len(tc.b)), 0)
		if tc.notSeg != errors.Is(err, errNotSegment) || (!tc.notSeg && err != nil) {
			t.Errorf("%s: err %v", tc.name, err)
		}
		if end != tc.end || tc.damaged != (damage != nil) {
			t.Errorf("%s: valid end %d, damage %v; want %d, damaged %v", tc.name, end, damage, tc.end, tc.damaged)
		}
		t.Logf("%s: %v %v", tc.name, err, damage)
	}
	if _, _, _, _, _, err := scanSegment(bytes.NewReader(b), int64(len(b)), 3); err == nil {
		t.Error("scan from inside the header: no error")
	}
}

// FuzzScanSegment scans arbitrary bytes: no panic, and validEnd within
// the file.
func FuzzScanSegment(f *testing.F) {
	clip := bursts(f)
	var params [][]byte
	for _, p := range clip.Packets {
		if params = paramSets(av.H264, p.AU); len(params) > 0 {
			break
		}
	}
	h := segHeader{Start: 1, Source: "arrival", Codec: av.H264, Params: params}
	b, err := encodeSegmentHeader(h)
	if err != nil {
		f.Fatal(err)
	}
	s := &segBuilder{b: b}
	s.add(ausAt([]int64{0, 6000, 3000}, 0), 0)
	s.add(ausAt([]int64{9000}), 0)
	f.Add(s.b)
	f.Add(s.b[:len(s.b)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, hl, frags, end, _, err := scanSegment(bytes.NewReader(b), int64(len(b)), 0)
		if end > int64(len(b)) || hl > int64(len(b)) {
			t.Fatalf("valid end %d, header %d, of %d bytes", end, hl, len(b))
		}
		if err == nil && len(frags) > 0 && frags[len(frags)-1].End != end {
			t.Fatalf("valid end %d, last fragment ends at %d", end, frags[len(frags)-1].End)
		}
	})
}

// writeClipSegment writes about dur of a clip (looped, from its first
// keyframe) as a segment in fragments of about frag; it returns the
// fragments' ends and the number of frames.
func writeClipSegment(t *testing.T, path string, clip *sim.Clip, dur, frag time.Duration) ([]int64, int) {
	t.Helper()
	c := clip.Info.Codec
	h := segHeader{Start: time.Now().UnixNano(), Source: "arrival", Codec: c, Params: clipParams(t, clip)}
	b, err := encodeSegmentHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	var aus []auEntry
	var payload []byte
	flush := func(next time.Duration) {
		b, _ = appendFragment(b, uint32(len(ends)), aus, next)
		b = append(b, payload...)
		ends = append(ends, int64(len(b)))
		aus, payload = aus[:0], payload[:0]
	}
	start := -1
	frames := 0
	var fragStart time.Duration
	for loop := 0; ; loop++ {
		for i, p := range clip.Packets {
			if start < 0 && !p.Key {
				continue
			}
			if start < 0 {
				start = i
			}
			off := time.Duration(loop)*clip.Duration + p.PTS - clip.Packets[start].PTS
			if off >= dur {
				flush(0)
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return ends, frames
			}
			if len(aus) > 0 && off-fragStart >= frag {
				flush(off)
			}
			if len(aus) == 0 {
				fragStart = off
			}
			n := len(payload)
			for _, nalu := range p.AU {
				payload = binary.BigEndian.AppendUint32(payload, uint32(len(nalu)))
				payload = append(payload, nalu...)
			}
			aus = append(aus, auEntry{Offset: off, Key: p.Key, Size: uint32(len(payload) - n)})
			frames++
		}
	}
}

// tool returns a player's path or skips the test.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed: make test installs it", name)
	}
	return p
}

// checkPlayers runs ffmpeg, ffprobe and gst-discoverer on a segment.
func checkPlayers(t *testing.T, path string, frames int, width int) {
	t.Helper()
	out, err := exec.Command(tool(t, "ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	out, err = exec.Command(tool(t, "ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width", "-of", "default=nw=1:nk=1", path).CombinedOutput()
	fields := strings.Fields(string(out))
	if err != nil || len(fields) != 2 || fields[0] != strconv.Itoa(width) || fields[1] != strconv.Itoa(frames) {
		t.Fatalf("ffprobe: %v: %q; want width %d, %d frames", err, out, width, frames)
	}
	out, err = exec.Command(tool(t, "gst-discoverer-1.0"), path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "video") || !strings.Contains(string(out), "Width: "+strconv.Itoa(width)) {
		t.Fatalf("gst-discoverer-1.0: %v\n%s", err, out)
	}
}

// TestSegmentPlayers writes real H.264 and H.265 to segment files and has
// real players read them, whole and after a torn tail was cut off.
func TestSegmentPlayers(t *testing.T) {
	tool(t, "ffmpeg")
	for _, clip := range []*sim.Clip{bursts(t), burstsH265(t)} {
		t.Run(clip.Info.Codec.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg.mp4")
			ends, frames := writeClipSegment(t, path, clip, 6*time.Second, 500*time.Millisecond)
			checkPlayers(t, path, frames, clip.Info.Width)
			// Torn: cut in the middle of the last fragment, then truncate.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cut := (ends[len(ends)-2] + ends[len(ends)-1]) / 2
			if err := os.WriteFile(path, b[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			_, _, frags, end, damage, err := scanSegment(f, cut, 0)
			f.Close()
			if err != nil || damage == nil || end != ends[len(ends)-2] || len(frags) != len(ends)-1 {
				t.Fatalf("torn scan: err %v, damage %v, end %d (want %d), %d fragments", err, damage, end, ends[len(ends)-2], len(frags))
			}
			if err := os.Truncate(path, end); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, fr := range frags {
				n += len(fr.AUs)
			}
			checkPlayers(t, path, n, clip.Info.Width)
		})
	}
}

// TestSegmentPlayersBFrames writes H.264 with B-frames (decode order is
// not presentation order) and checks that players decode every frame at
// its own time.
func TestSegmentPlayersBFrames(t *testing.T) {
	ffmpeg := tool(t, "ffmpeg")
	dir := t.TempDir()
	src := filepath.Join(dir, "bframes.mkv")
	out, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4",
		"-c:v", "libx264", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p", src).CombinedOutput()
	if err != nil {
		t.Fatalf("making a B-frame clip with libx264: %v\n%s", err, out)
	}
	clip, err := sim.LoadClip(src)
	if err != nil {
		t.Fatal(err)
	}
	reordered := false
	for i := 1; i < len(clip.Packets); i++ {
		reordered = reordered || clip.Packets[i].PTS < clip.Packets[i-1].PTS
	}
	if !reordered {
		t.Fatal("the clip has no B-frames")
	}
	path := filepath.Join(dir, "seg.mp4")
	ends, frames := writeClipSegment(t, path, clip, 3500*time.Millisecond, 500*time.Millisecond)
	checkPlayers(t, path, frames, 320)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _, frags, end, damage, err := scanSegment(f, ends[len(ends)-1], 0)
	if err != nil || damage != nil || len(frags) != len(ends) || end != ends[len(ends)-1] {
		t.Fatalf("scan: %v, %v, %d fragments", err, damage, len(frags))
	}
	// Presentation times as ffprobe sees them, against the clip's.
	out, err = exec.Command(tool(t, "ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
		"-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	// ffmpeg delays the timeline by the largest negative composition
	// offset: compare times from the first packet.
	got := strings.Fields(string(out))
	if len(got) != frames {
		t.Fatalf("ffprobe: %d packets, want %d", len(got), frames)
	}
	first, _ := strconv.ParseInt(got[0], 10, 64)
	i := 0
	for _, fr := range frags {
		for _, a := range fr.AUs {
			p, _ := strconv.ParseInt(got[i], 10, 64)
			if want := segTicks(int64(a.Offset - frags[0].AUs[0].Offset)); p-first != want {
				t.Errorf("packet %d: ffprobe pts %d (from the first %d), want %d", i, p, p-first, want)
			}
			i++
		}
	}
}
