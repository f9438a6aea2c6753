package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/clips"
)

// TestClipsCheck: `vigil clips check` passes an intact store and fails,
// naming the file, on a segment that is not one.
func TestClipsCheck(t *testing.T) {
	dir := t.TempDir()
	fp := clips.Footprint{MemTableSize: 1 << 20, BlockCacheSize: 1 << 20, IndexCacheSize: 1 << 20, ValueLogFileSize: 1 << 20}
	s, err := clips.Open(clips.Config{Dir: dir, Footprint: fp, MinFreeBytes: fp.Reserve(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recorder("gate"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var out, errOut bytes.Buffer
	if code := Main([]string{"clips", "check", "-dir", dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok") {
		t.Fatalf("intact store: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	bad := filepath.Join(dir, "video", "gate", "2026-03-01", "20260301T120000.000000000Z.mp4")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	os.WriteFile(bad, []byte("not an mp4 at all"), 0o644)
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"clips", "check", "-dir", dir}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "damaged: "+bad) {
		t.Fatalf("damaged store: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
