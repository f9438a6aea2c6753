package evidence

import (
	"context"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/contactsheet"
)

// BenchmarkBuild bundles the 53 s 1080p bench camera clip (~4 Mbit/s) to
// io.Discard: copy + CRC-32 + SHA-256 (the contact sheet, made by the
// edge, is only copied). The hour-long
// figure is bench/evidence's (BENCHMARKS.md).
func BenchmarkBuild(b *testing.B) {
	clip, err := footage.Cache{Dir: footage.DefaultDir()}.BenchCamera(context.Background(), 1080)
	if err != nil {
		b.Fatal(err)
	}
	f, _ := os.Open(clip)
	st, _ := f.Stat()
	info, err := ProbeMP4(f, st.Size())
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	req := testRequest(b, key, Camera{CameraID: "cam", ClockSource: ClockRTCP, VideoPath: clip,
		Requested: Range{start, start.Add(info.Duration)}, Actual: Range{start, start.Add(info.Duration)}})
	jpg, err := contactsheet.Make(clip, start, "bench", contactsheet.Options{})
	if err != nil {
		b.Fatal(err)
	}
	req.Cameras[0].ContactSheetPath = filepath.Join(b.TempDir(), "cam.jpg")
	if err := os.WriteFile(req.Cameras[0].ContactSheetPath, jpg, 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ResetTimer()
	for range b.N {
		if _, err := Build(ctx, io.Discard, req); err != nil {
			b.Fatal(err)
		}
	}
}
