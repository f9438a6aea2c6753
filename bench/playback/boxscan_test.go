package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func box(typ string, payload int) []byte {
	b := make([]byte, 8+payload)
	binary.BigEndian.PutUint32(b, uint32(8+payload))
	copy(b[4:], typ)
	return b
}

func box64(typ string, payload int) []byte {
	b := make([]byte, 16+payload)
	binary.BigEndian.PutUint32(b, 1)
	copy(b[4:], typ)
	binary.BigEndian.PutUint64(b[8:], uint64(16+payload))
	return b
}

// scanChunks feeds body to a scanner in chunks of n bytes and returns
// the scanner and the byte count at which the first fragment was whole.
func scanChunks(body []byte, n int) (*boxScanner, int) {
	s := &boxScanner{}
	at := -1
	for i := 0; i < len(body); i += n {
		s.Write(body[i:min(i+n, len(body))])
		if at < 0 && s.firstFragment() {
			at = min(i+n, len(body))
		}
	}
	return s, at
}

func TestBoxScannerFirstFragment(t *testing.T) {
	var body []byte
	for _, b := range [][]byte{box("ftyp", 12), box("moov", 300), box("moof", 60), box64("mdat", 5000), box("moof", 60), box("mdat", 700)} {
		body = append(body, b...)
	}
	fragEnd := 20 + 308 + 68 + 5016
	for _, n := range []int{1, 3, 7, 8, 16, 100, 4096, len(body)} {
		s, at := scanChunks(body, n)
		if s.err != nil || !s.complete() || s.moofs != 2 {
			t.Fatalf("chunks of %d: err %v, complete %v, moofs %d", n, s.err, s.complete(), s.moofs)
		}
		if s.fragEnd != int64(fragEnd) || at < fragEnd || at >= fragEnd+n {
			t.Errorf("chunks of %d: first fragment ends at %d, seen whole at %d; want %d", n, s.fragEnd, at, fragEnd)
		}
	}
	s, _ := scanChunks(body[:fragEnd-1], 64)
	if s.firstFragment() || s.complete() {
		t.Error("a body cut one byte short of the first fragment's end reads as having it")
	}
}

func TestBoxScannerRejectsBadSizes(t *testing.T) {
	bad := append(box("ftyp", 4), 0, 0, 0, 5, 'm', 'o', 'o', 'f')
	s, _ := scanChunks(bad, 5)
	if s.err == nil {
		t.Fatal("a box of 5 bytes (shorter than its header) was accepted")
	}
}

// TestBoxScannerOnFFmpegFragments checks the scanner on fragmented MP4
// written by ffmpeg (one fragment per keyframe) against ffprobe's count
// of keyframes.
func TestBoxScannerOnFFmpegFragments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frag.mp4")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "4",
		"-c:v", "libx264", "-g", "10", "-bf", "0", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	keys := strings.Count(string(probe), "K")
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, at := scanChunks(body, 1500)
	if s.err != nil || !s.complete() {
		t.Fatalf("ffmpeg's file: err %v, complete %v", s.err, s.complete())
	}
	if s.moofs != keys || keys < 4 {
		t.Errorf("scanner counted %d fragments, ffprobe %d keyframes", s.moofs, keys)
	}
	if first := bytes.Index(body, []byte("moof")); at <= first || at > len(body) {
		t.Errorf("first fragment whole at byte %d, first moof at %d of %d", at, first, len(body))
	}
}

// FuzzBoxScanner: any body, cut anywhere, reads the same as in one piece.
func FuzzBoxScanner(f *testing.F) {
	f.Add(append(box("moof", 3), box64("mdat", 9)...), 5)
	f.Add([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		whole, _ := scanChunks(body, max(len(body), 1))
		if n < 1 {
			n = 1
		}
		cut, _ := scanChunks(body, n)
		if (whole.err == nil) != (cut.err == nil) || whole.fragEnd != cut.fragEnd || whole.moofs != cut.moofs ||
			whole.complete() != cut.complete() || whole.off != cut.off {
			t.Fatalf("whole %+v, in chunks of %d %+v", whole, n, cut)
		}
	})
}
