package main

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gocv.io/x/gocv"
)

var errNoVideo = errors.New("no video")

// Ground-truth kinds, as described in the test data's README.md.
const (
	truthCDnet      = "cdnet"      // per pixel on a temporal ROI
	truthWallflower = "wallflower" // a script with the frame the object enters, one hand-segmented frame
	truthNone       = "none"       // nothing of interest happens: every event is a false alarm
)

// sequence is one folder of test data: a video and its ground truth.
type sequence struct {
	name, video, kind, note string
	minFraction             float64 // smallest object, as a fraction of the frame

	// cdnet
	dir      string
	roiFrom  int // temporal ROI, frame numbers (0-based, inclusive)
	roiTo    int
	objFrame map[int]bool // frames in the ROI with an object of at least the minimum size
	// extra spans with an object of interest, from annotations
	extra []Span
	// wallflower
	enters    int // frame the object enters (-1 if never)
	handFrame int
	handPath  string
}

func loadSequence(dir string, minFraction float64) (*sequence, error) {
	videos, _ := filepath.Glob(filepath.Join(dir, "*.mp4"))
	if len(videos) == 0 {
		return nil, errNoVideo
	}
	s := &sequence{name: filepath.Base(dir), video: videos[0], dir: dir, minFraction: minFraction, enters: -1, handFrame: -1}
	if a, ok := annotations[s.name]; ok {
		s.extra = append(s.extra, a.span)
		s.note = a.note
	}
	switch {
	case exists(filepath.Join(dir, "temporalROI.txt")):
		s.kind = truthCDnet
		return s, s.loadCDnet()
	case exists(filepath.Join(dir, "groundtruth", "script.txt")):
		s.kind = truthWallflower
		return s, s.loadWallflower()
	default:
		s.kind = truthNone
		return s, nil
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// loadCDnet reads the temporal ROI and marks the frames whose largest
// moving region (truth value 255) reaches the minimum object size.
// CDnet numbers its truth from 1: video frame n is gt(n+1).
func (s *sequence) loadCDnet() error {
	b, err := os.ReadFile(filepath.Join(s.dir, "temporalROI.txt"))
	if err != nil {
		return err
	}
	var from, to int
	if _, err := fmt.Sscan(string(b), &from, &to); err != nil {
		return fmt.Errorf("temporalROI.txt: %w", err)
	}
	s.roiFrom, s.roiTo = from-1, to-1
	s.objFrame = map[int]bool{}
	moving, labels, stats, cents := gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer moving.Close()
	defer labels.Close()
	defer stats.Close()
	defer cents.Close()
	for f := s.roiFrom; f <= s.roiTo; f++ {
		gt := gocv.IMRead(s.gtPath(f), gocv.IMReadGrayScale)
		if gt.Empty() {
			gt.Close()
			return fmt.Errorf("missing %s", s.gtPath(f))
		}
		gocv.InRangeWithScalar(gt, gocv.NewScalar(255, 0, 0, 0), gocv.NewScalar(255, 0, 0, 0), &moving)
		minPx := s.minFraction * float64(gt.Rows()*gt.Cols())
		gt.Close()
		n := gocv.ConnectedComponentsWithStats(moving, &labels, &stats, &cents)
		for i := 1; i < n; i++ {
			if float64(stats.GetIntAt(i, int(gocv.CC_STAT_AREA))) >= minPx {
				s.objFrame[f] = true
				break
			}
		}
	}
	return nil
}

func (s *sequence) gtPath(frame int) string {
	return filepath.Join(s.dir, "groundtruth", fmt.Sprintf("gt%06d.png", frame+1))
}

var scriptLine = regexp.MustCompile(`^\s*(\d+)\s*-\s*(.+)$`)

// loadWallflower reads the script's "NNNNN - X enters scene" line (the
// object stays to the end of the sequence) and finds the hand-segmented frame.
func (s *sequence) loadWallflower() error {
	f, err := os.Open(filepath.Join(s.dir, "groundtruth", "script.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := scriptLine.FindStringSubmatch(sc.Text())
		if m != nil && strings.Contains(strings.ToLower(m[2]), "enter") {
			s.enters, _ = strconv.Atoi(m[1])
			break
		}
	}
	hands, _ := filepath.Glob(filepath.Join(s.dir, "groundtruth", "hand_segmented_*.[bB][mM][pP]"))
	sort.Strings(hands)
	if len(hands) > 0 {
		num := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(filepath.Base(hands[0])), "hand_segmented_"), ".bmp")
		s.handFrame, _ = strconv.Atoi(num)
		s.handPath = hands[0]
	}
	return sc.Err()
}

// window is the span of frames whose events are scored.
func (s *sequence) window(frames int) (int, int) {
	if s.kind == truthCDnet {
		return s.roiFrom, min(s.roiTo, frames-1)
	}
	return 0, frames - 1
}

// truthEvents are the spans of frames with an object of interest, joining
// spans less than gap frames apart.
func (s *sequence) truthEvents(frames, gap int) []Span {
	has := func(f int) bool {
		for _, x := range s.extra {
			if f >= x.From && f <= x.To {
				return true
			}
		}
		switch s.kind {
		case truthCDnet:
			return s.objFrame[f]
		case truthWallflower:
			return s.enters >= 0 && f >= s.enters
		}
		return false
	}
	var spans []Span
	for f := 0; f < frames; f++ {
		if !has(f) {
			continue
		}
		if n := len(spans); n > 0 && f-spans[n-1].To <= gap {
			spans[n-1].To = f
			continue
		}
		spans = append(spans, Span{f, f})
	}
	return spans
}

// pixelTruth reports whether frame has per-pixel truth.
func (s *sequence) pixelTruth(frame int) bool {
	switch s.kind {
	case truthCDnet:
		return frame >= s.roiFrom && frame <= s.roiTo
	case truthWallflower:
		return frame == s.handFrame
	}
	return false
}

// scorePixels compares a foreground mask with the frame's truth, after
// resizing the mask to the truth's size (nearest neighbour, so it stays
// binary). CDnet: 255 moving, 0 and 50 (shadow) background, 85 (outside
// the ROI) and 170 (unknown) not scored. Wallflower: moving above 127.
func (s *sequence) scorePixels(frame int, fg gocv.Mat, resized *gocv.Mat, p *PixelScore) error {
	path := s.handPath
	if s.kind == truthCDnet {
		path = s.gtPath(frame)
	}
	gt := gocv.IMRead(path, gocv.IMReadGrayScale)
	defer gt.Close()
	if gt.Empty() {
		return fmt.Errorf("cannot read %s", path)
	}
	gocv.Resize(fg, resized, image.Pt(gt.Cols(), gt.Rows()), 0, 0, gocv.InterpolationNearestNeighbor)
	ours, truth := resized.ToBytes(), gt.ToBytes()
	for i, t := range truth {
		var moving bool
		switch {
		case s.kind == truthCDnet && (t == 85 || t == 170):
			continue
		case s.kind == truthCDnet:
			moving = t == 255
		default:
			moving = t > 127
		}
		switch fgPx := ours[i] != 0; {
		case fgPx && moving:
			p.TP++
		case fgPx:
			p.FP++
		case moving:
			p.FN++
		default:
			p.TN++
		}
	}
	p.Frames++
	return nil
}
