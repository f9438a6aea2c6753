package boxlog

import (
	"errors"
	"fmt"
	"math"

	"github.com/vigil-perimeter/vigil/wire"
)

// A frame's value: a version byte, the number of boxes (one byte), then
// each box as x, y, w, h, each a big-endian uint16 of the normalised
// coordinate times 65535 (a 1/65535 grid: finer than any camera's pixel).
const (
	frameVersion = 1
	// MaxBoxes bounds the boxes kept per frame, the analyser's first.
	MaxBoxes = 64
	boxBytes = 8
)

// encodeFrame is the stored form of a frame's boxes: at most MaxBoxes,
// each coordinate clamped to 0..1.
func encodeFrame(boxes []wire.Box) []byte {
	boxes = boxes[:min(len(boxes), MaxBoxes)]
	b := make([]byte, 0, 2+boxBytes*len(boxes))
	b = append(b, frameVersion, byte(len(boxes)))
	for _, x := range boxes {
		for _, v := range [4]float64{x.X, x.Y, x.W, x.H} {
			u := uint16(math.Round(clamp01(v) * 65535))
			b = append(b, byte(u>>8), byte(u))
		}
	}
	return b
}

func clamp01(v float64) float64 {
	if v != v || v < 0 { // NaN too
		return 0
	}
	return min(v, 1)
}

var errFrame = errors.New("boxlog: bad frame record")

// decodeFrame reads a stored frame back.
func decodeFrame(v []byte) ([]wire.Box, error) {
	if len(v) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errFrame, len(v))
	}
	if v[0] != frameVersion {
		return nil, fmt.Errorf("%w: version %d", errFrame, v[0])
	}
	n := int(v[1])
	if n > MaxBoxes || len(v) != 2+boxBytes*n {
		return nil, fmt.Errorf("%w: %d boxes in %d bytes", errFrame, n, len(v))
	}
	boxes := make([]wire.Box, n)
	for i := range boxes {
		p := v[2+boxBytes*i:]
		c := func(j int) float64 { return float64(uint16(p[2*j])<<8|uint16(p[2*j+1])) / 65535 }
		boxes[i] = wire.Box{X: c(0), Y: c(1), W: c(2), H: c(3)}
	}
	return boxes, nil
}
