package camera

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// starvedClip is vtest.avi as a starved, long-GOP camera (CRF 38, one
// keyframe every 8 s): the case where skipping the in-loop filter shows.
func starvedClip(t *testing.T) (av.FileInfo, []av.Packet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-i", footage.SamplesDir + "/vtest.avi", "-t", "20", "-an",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "38", "-g", "80", "-bf", "0", "-pix_fmt", "yuv420p"}
	path, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, "starved-crf38-g80-20s", args)
	if err != nil {
		t.Fatal(err)
	}
	info, pkts, err := av.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return info, pkts
}

// feedPacket gives the analyzer one packet of a file as a camera's access
// unit.
func feedPacket(t *testing.T, an *Analyzer, codec av.Codec, p av.Packet) {
	t.Helper()
	epoch := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	au := streams.AccessUnit{Codec: codec, NALUs: p.AU, PTS: p.PTS, Time: epoch.Add(p.PTS), TimeSource: streams.TimeFile, Key: p.Key}
	if _, err := an.Feed(au); err != nil {
		t.Fatal(err)
	}
}

// standardJPEG decodes pkts with a standard decoder and encodes the last
// picture as Analyzer.Snapshot does.
func standardJPEG(t *testing.T, codec av.Codec, pkts []av.Packet) []byte {
	t.Helper()
	dec, err := av.NewDecoder(codec)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, p := range pkts {
		if _, err := dec.Decode(p.AU); err != nil {
			t.Fatal(err)
		}
	}
	jpg, err := dec.JPEG(1280, 80)
	if err != nil {
		t.Fatal(err)
	}
	return jpg
}

// TestSnapshotsAreDecodedInFull: the analysis decoder skips the in-loop
// filter, but every snapshot (asked for at any point of a GOP, twice in
// one GOP, and in the next GOP) is exactly the picture a standard decoder
// gives, not the analysis decoder's.
func TestSnapshotsAreDecodedInFull(t *testing.T) {
	info, pkts := starvedClip(t)
	an, err := NewAnalyzer(AnalyzerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	keys := 0
	checks := map[int]bool{30: true, 70: true, 79: true, 120: true}
	for i, p := range pkts {
		if p.Key {
			keys++
		}
		feedPacket(t, an, info.Codec, p)
		if !checks[i] {
			continue
		}
		got, err := an.Snapshot(1280)
		if err != nil {
			t.Fatal(err)
		}
		want := standardJPEG(t, info.Codec, pkts[:i+1])
		if !bytes.Equal(got, want) {
			t.Errorf("frame %d: snapshot is not the standard decoder's picture", i)
		}
		fast, err := an.dec.JPEG(1280, 80)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(fast, want) {
			t.Errorf("frame %d: the analysis decoder gives the standard picture: is the loop filter still on?", i)
		}
	}
	if keys < 2 {
		t.Fatalf("clip has %d keyframes, the test needs two GOPs", keys)
	}
}

// TestSnapshotWithoutTheGOP: when the GOP so far was not kept (longer
// than the buffer allows), a snapshot still comes, from the analysis
// decoder; the next keyframe brings full snapshots back.
func TestSnapshotWithoutTheGOP(t *testing.T) {
	info, pkts := starvedClip(t)
	an, err := NewAnalyzer(AnalyzerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	an.gop.limit = 32 << 10 // the keyframe and ~30 frames of this clip
	for i, p := range pkts {
		feedPacket(t, an, info.Codec, p)
		switch i {
		case 70: // far past the limit
			if _, ok := an.gop.units(); ok {
				t.Fatal("the GOP is still kept past its limit")
			}
			got, err := an.Snapshot(1280)
			if err != nil || len(got) == 0 {
				t.Fatalf("no snapshot without the GOP: %v", err)
			}
			fast, _ := an.dec.JPEG(1280, 80)
			if !bytes.Equal(got, fast) {
				t.Error("snapshot without the GOP is not the analysis decoder's picture")
			}
		case 81: // one frame after the second keyframe (frame 80)
			got, err := an.Snapshot(1280)
			if err != nil {
				t.Fatal(err)
			}
			if want := standardJPEG(t, info.Codec, pkts[:i+1]); !bytes.Equal(got, want) {
				t.Error("after the next keyframe the snapshot is not decoded in full")
			}
		}
	}
}

// TestFullDecodeOption: with FullDecode the analysis decoder is the
// standard one.
func TestFullDecodeOption(t *testing.T) {
	info, pkts := starvedClip(t)
	an, err := NewAnalyzer(AnalyzerConfig{FullDecode: true})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	for _, p := range pkts[:60] {
		feedPacket(t, an, info.Codec, p)
	}
	fast, err := an.dec.JPEG(1280, 80)
	if err != nil {
		t.Fatal(err)
	}
	if want := standardJPEG(t, info.Codec, pkts[:60]); !bytes.Equal(fast, want) {
		t.Error("FullDecode: the analysis decoder does not decode in full")
	}
}

// TestSnapshotDecoderIsReleased: the second decoder lives only while
// snapshots are taken; a GOP without one closes it, and the next
// snapshot still gets the standard picture.
func TestSnapshotDecoderIsReleased(t *testing.T) {
	info, pkts := starvedClip(t)
	an, err := NewAnalyzer(AnalyzerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	for i, p := range pkts[:170] {
		feedPacket(t, an, info.Codec, p)
		switch i {
		case 10: // a snapshot in the first GOP opens the decoder
			if _, err := an.Snapshot(1280); err != nil || an.full == nil {
				t.Fatalf("no full decoder after a snapshot (err %v)", err)
			}
		case 85: // the second GOP (from frame 80) began; the first had a snapshot
			if an.full == nil {
				t.Fatal("the decoder was closed although the last GOP took a snapshot")
			}
		case 165: // no snapshot since frame 10: closed at the keyframe at 160
			if an.full != nil {
				t.Fatal("the decoder is kept through a GOP without snapshots")
			}
			got, err := an.Snapshot(1280)
			if err != nil {
				t.Fatal(err)
			}
			if want := standardJPEG(t, info.Codec, pkts[:i+1]); !bytes.Equal(got, want) {
				t.Error("the snapshot after the decoder was released is not decoded in full")
			}
		}
	}
}
