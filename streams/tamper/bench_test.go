package tamper

import (
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// BenchmarkProcess times one analysis frame (320×240 of vtest.avi).
func BenchmarkProcess(b *testing.B) {
	path := vtestClip(b, "bench", 2, "[0:v]null")
	var frames []gocv.Mat
	decode(b, path, func(gray gocv.Mat, _ time.Time) { frames = append(frames, gray.Clone()) })
	defer func() {
		for _, f := range frames {
			f.Close()
		}
	}()
	d, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.ResetTimer()
	for i := range b.N {
		d.Process(frames[i%len(frames)], epoch.Add(time.Duration(i)*200*time.Millisecond))
	}
}
