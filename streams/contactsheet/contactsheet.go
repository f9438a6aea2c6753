// Package contactsheet makes the JPEG contact sheets of evidence bundles:
// a grid of pictures taken evenly over an MP4, each with its UTC time
// burned in, under a title line.
//
// It decodes (streams/av, FFmpeg) and draws (gocv, OpenCV), so it lives
// with the other decoding code and runs on the edge, which answers
// wire.MethodContactSheet with it while a retrieval's range is pinned.
// Central only stores the JPEG it is sent and copies it into the bundle:
// central itself builds without cgo, FFmpeg or OpenCV.
package contactsheet

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// Options shapes a contact sheet.
type Options struct {
	Columns, Rows int // default 4 × 3
	TileWidth     int // pixels, default 320
	Quality       int // JPEG, default 85
}

func (o Options) withDefaults() Options {
	if o.Columns <= 0 {
		o.Columns = 4
	}
	if o.Rows <= 0 {
		o.Rows = 3
	}
	if o.TileWidth <= 0 {
		o.TileWidth = 320
	}
	if o.Quality <= 0 {
		o.Quality = 85
	}
	return o
}

// Make makes a JPEG grid of Columns×Rows pictures taken evenly
// over the MP4 at path (the middle of each slice), each with its UTC time
// burned in (start + the frame's presentation time), under a title line.
// Mostly keyframes are decoded (see sampler.read); the file is read once.
func Make(path string, start time.Time, title string, o Options) ([]byte, error) {
	o = o.withDefaults()
	title = ASCII(title)
	f, err := av.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := f.Info()
	if info.Duration <= 0 {
		return nil, fmt.Errorf("contact sheet of %s: unknown duration", path)
	}
	s := &sampler{path: path, start: start, codec: info.Codec, tileWidth: o.TileWidth,
		targets: sliceMiddles(info.Duration, o.Columns*o.Rows)}
	if err := s.read(f); err != nil {
		return nil, err
	}
	if len(s.shots) == 0 {
		return nil, fmt.Errorf("contact sheet of %s: no decodable video", path)
	}
	return compose(s.shots, title, o)
}

// sliceMiddles is the middle of each of n equal slices of d.
func sliceMiddles(d time.Duration, n int) []time.Duration {
	targets := make([]time.Duration, n)
	for i := range n {
		targets[i] = time.Duration((float64(i) + 0.5) * float64(d) / float64(n))
	}
	return targets
}

// sampler takes the contact sheet's pictures from one pass over a file.
type sampler struct {
	path      string
	start     time.Time
	codec     av.Codec
	tileWidth int
	targets   []time.Duration
	next      int         // the first target not shown yet
	gop       []av.Packet // since the last keyframe
	shots     []tile
}

// read goes through the file's packets, keeping the current GOP, and
// grabs a picture for each target.
func (s *sampler) read(f *av.FileReader) error {
	n := len(s.targets)
	for s.next < n {
		p, err := f.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if p.Key {
			s.gop = s.gop[:0]
		}
		if len(s.gop) == 0 && !p.Key {
			continue // before the first keyframe
		}
		s.gop = append(s.gop, p)
		// A target is shown by the first keyframe at or after it (one
		// decode); only when the next target comes first is the GOP so far
		// decoded up to this frame.
		if p.PTS >= s.targets[s.next] && (p.Key || (s.next+1 < n && p.PTS >= s.targets[s.next+1])) {
			if err := s.grab(); err != nil {
				return err
			}
			for s.next < n && s.targets[s.next] <= p.PTS {
				s.next++
			}
		}
	}
	if s.next < n && len(s.gop) > 0 && (len(s.shots) == 0 || s.gop[len(s.gop)-1].PTS >= s.targets[s.next]) {
		return s.grab()
	}
	return nil
}

// grab decodes the GOP so far and keeps its last picture as a tile.
func (s *sampler) grab() error {
	dec, err := av.NewDecoder(s.codec)
	if err != nil {
		return err
	}
	defer dec.Close()
	got := false
	for _, p := range s.gop {
		ok, _ := dec.Decode(p.AU) // a damaged frame still gives the best picture there is
		got = got || ok
	}
	for {
		ok, _ := dec.Drain()
		if !ok {
			break
		}
		got = true
	}
	last := s.gop[len(s.gop)-1].PTS
	if !got {
		return fmt.Errorf("contact sheet of %s: no picture at %v", s.path, last)
	}
	jpg, err := dec.JPEG(s.tileWidth, 90)
	if err != nil {
		return err
	}
	s.shots = append(s.shots, tile{jpg: jpg, at: s.start.Add(last)})
	return nil
}

type tile struct {
	jpg []byte
	at  time.Time
}

// compose lays the tiles out in a grid under a title bar and burns each
// tile's UTC time into its lower edge.
func compose(tiles []tile, title string, o Options) ([]byte, error) {
	first, err := gocv.IMDecode(tiles[0].jpg, gocv.IMReadColor)
	if err != nil {
		return nil, fmt.Errorf("contact sheet: %w", err)
	}
	tw, th := first.Cols(), first.Rows()
	first.Close()
	if tw == 0 || th == 0 {
		return nil, errors.New("contact sheet: empty picture")
	}
	const bar, gap = 36, 4
	W := o.Columns*tw + (o.Columns+1)*gap
	H := bar + o.Rows*th + (o.Rows+1)*gap
	sheet := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(32, 32, 32, 0), H, W, gocv.MatTypeCV8UC3)
	defer sheet.Close()
	white, black := color.RGBA{255, 255, 255, 0}, color.RGBA{0, 0, 0, 0}
	gocv.PutText(&sheet, title, image.Pt(gap+4, bar-12), gocv.FontHersheySimplex, 0.6, white, 1)
	scale := 0.45 * float64(tw) / 320
	for i, t := range tiles {
		if i >= o.Columns*o.Rows {
			break
		}
		x := gap + (i%o.Columns)*(tw+gap)
		y := bar + gap + (i/o.Columns)*(th+gap)
		if err := placeTile(&sheet, t.jpg, image.Rect(x, y, x+tw, y+th)); err != nil {
			return nil, err
		}
		label := t.at.UTC().Format("2006-01-02 15:04:05.000") + " UTC"
		size := gocv.GetTextSize(label, gocv.FontHersheySimplex, scale, 1)
		lh := size.Y + 8
		gocv.Rectangle(&sheet, image.Rect(x, y+th-lh, x+min(tw, size.X+8), y+th), black, -1)
		gocv.PutText(&sheet, label, image.Pt(x+4, y+th-5), gocv.FontHersheySimplex, scale, white, 1)
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, sheet, []int{gocv.IMWriteJpegQuality, o.Quality})
	if err != nil {
		return nil, fmt.Errorf("contact sheet: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

func placeTile(sheet *gocv.Mat, jpg []byte, r image.Rectangle) error {
	m, err := gocv.IMDecode(jpg, gocv.IMReadColor)
	if err != nil {
		return fmt.Errorf("contact sheet: %w", err)
	}
	defer m.Close()
	if m.Empty() {
		return errors.New("contact sheet: undecodable picture")
	}
	if m.Cols() != r.Dx() || m.Rows() != r.Dy() {
		// The picture size changed within the clip.
		gocv.Resize(m, &m, r.Size(), 0, 0, gocv.InterpolationArea)
	}
	dst := sheet.Region(r)
	defer dst.Close()
	m.CopyTo(&dst)
	return nil
}

// ASCII replaces what OpenCV's Hershey fonts cannot draw.
func ASCII(s string) string {
	b := []byte{}
	for _, r := range s {
		switch {
		case r == '—':
			b = append(b, '-')
		case r >= 32 && r < 127:
			b = append(b, byte(r))
		default:
			b = append(b, '?')
		}
	}
	return string(b)
}
