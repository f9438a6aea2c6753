package motion_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// The clips here are made with ffmpeg from Debian's opencv-doc samples,
// like internal/footage's, and cached in the same place.

// epoch is the wall-clock time of every clip's first frame.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// stillScene is the bursts clip's background: vtest.avi's first frame held
// still with camera-like sensor noise, 640×480 at 10 fps, for the given
// seconds, as a filtergraph chain on input 0 that the caller continues.
func stillScene(seconds float64) string {
	return fmt.Sprintf("[0:v]trim=end_frame=1,scale=640:480,loop=loop=-1:size=1,fps=10,trim=duration=%g,setpts=N/10/TB,noise=alls=3:allf=t", seconds)
}

// makeClip builds (once per recipe) a camera-like H.264 clip from inputs
// (each given as ffmpeg input arguments) and a filtergraph.
func makeClip(t *testing.T, name string, inputs [][]string, graph string) string {
	t.Helper()
	var args []string
	for _, in := range inputs {
		args = append(args, in...)
	}
	args = append(args, "-filter_complex", graph, "-an", "-r", "10")
	args = append(args, footage.CameraX264(20)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, name, args)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sample is an opencv-doc sample video as an ffmpeg input.
func sample(name string) []string {
	return []string{"-i", filepath.Join(footage.SamplesDir, name)}
}

// burstsClip builds a bursts clip: the still scene with a textured object
// crossing from 10 % to 80 % of the width, its top at 55 % of the height,
// 1/12 of the width wide and 1/4 of the height tall, during each burst.
func burstsClip(t *testing.T, seconds float64, bursts ...footage.Burst) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := footage.BurstsClip{Seconds: seconds, FPS: 10, Width: 640, Height: 480, Bursts: bursts}
	p, err := spec.Make(ctx, footage.Cache{Dir: footage.DefaultDir()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// motionEvents runs the edge's analysis (camera.AnalyzeFile, default
// analysis rate and width) with cfg over a clip and returns its motion
// events.
func motionEvents(t *testing.T, clip string, cfg motion.Config) []camera.FileEvent {
	t.Helper()
	var evs []camera.FileEvent
	_, err := camera.AnalyzeFile(context.Background(), clip, camera.AnalyzerConfig{Motion: cfg}, camera.FileOptions{Start: epoch},
		func(ev camera.FileEvent) error {
			if ev.Kind == camera.KindMotion {
				evs = append(evs, ev)
				t.Logf("motion %.1f–%.1f s, alert at %.1f s, zones %v, boxes %v",
					ev.Start.Sub(epoch).Seconds(), ev.End.Sub(epoch).Seconds(), ev.Raised.Sub(epoch).Seconds(), ev.Zones, ev.Boxes)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// at is an offset into a clip as wall-clock time.
func at(seconds float64) time.Time { return epoch.Add(time.Duration(seconds * float64(time.Second))) }
