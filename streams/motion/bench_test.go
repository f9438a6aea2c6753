package motion_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// BenchmarkProcess measures the detector alone on real analysis frames:
// vtest.avi's pedestrians as 320×240 gray, the edge's default analysis
// size, decoded beforehand.
func BenchmarkProcess(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clip, err := footage.Cache{Dir: footage.DefaultDir()}.Pedestrians(ctx)
	if err != nil {
		b.Fatal(err)
	}
	frames := grayFrames(b, clip, 320, 200)
	defer func() {
		for _, m := range frames {
			m.Close()
		}
	}()
	d, err := motion.New(motion.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	t := time.Unix(0, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t = t.Add(200 * time.Millisecond) // 5 fps
		d.Process(frames[i%len(frames)], t)
	}
}

// grayFrames decodes up to n pictures of a clip as gray Mats width wide.
func grayFrames(b *testing.B, clip string, width, n int) []gocv.Mat {
	r, err := av.OpenFile(clip)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	dec, err := av.NewDecoder(r.Info().Codec)
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	var out []gocv.Mat
	for len(out) < n {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		ok, err := dec.Decode(p.AU)
		if err != nil || !ok {
			continue
		}
		buf, w, h, err := dec.Gray(width, nil)
		if err != nil {
			b.Fatal(err)
		}
		m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, buf)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, m.Clone()) // NewMatFromBytes aliases buf
		m.Close()
	}
	return out
}
