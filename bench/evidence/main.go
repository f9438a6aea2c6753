// Command bench-evidence measures evidence bundle export: an MP4 of
// -minutes of 1080p camera video at about 4 Mbit/s (the bench camera clip,
// looped with ffmpeg -c copy: real H.264, no re-encode) is bundled with
// evidence.Build into a file, then checked with evidence.VerifyFile. It
// prints the times and throughput (and JSON with -json).
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/contactsheet"
)

func main() {
	minutes := flag.Float64("minutes", 60, "length of the exported range")
	dir := flag.String("dir", "", "work directory (default: a temporary one, removed after)")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if err := run(*minutes, *dir, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "bench-evidence:", err)
		os.Exit(1)
	}
}

func run(minutes float64, dir string, asJSON bool) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "bench-evidence-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	video := filepath.Join(dir, "range.mp4")
	size, info, prep, err := prepareVideo(ctx, video, minutes)
	if err != nil {
		return err
	}
	_, key, _ := ed25519.GenerateKey(nil)
	custody, err := custodyLog(ctx, filepath.Join(dir, "audit"))
	if err != nil {
		return err
	}
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	req := evidence.Request{CaseNumber: "BENCH-1", Requester: audit.Actor{User: "li.wei", Role: "police_liaison"}, Reason: "benchmark",
		ExportedAt: start.Add(2 * time.Hour), Software: "bench", Key: key, Custody: custody,
		Cameras: []evidence.Camera{{CameraID: "north-gate", CameraName: "North gate", SiteName: "Lotus", EntranceName: "North",
			Requested: evidence.Range{Start: start, End: start.Add(info.Duration)}, Actual: evidence.Range{Start: start, End: start.Add(info.Duration)},
			ClockSource: evidence.ClockRTCP, VideoPath: video}}}
	if err := addContactSheet(&req.Cameras[0], start, filepath.Join(dir, "north-gate.jpg")); err != nil {
		return err
	}
	bundle := filepath.Join(dir, "bundle.zip")
	t1 := time.Now()
	if err := buildBundle(ctx, req, bundle); err != nil {
		return err
	}
	build := time.Since(t1)
	bst, _ := os.Stat(bundle)
	t2 := time.Now()
	if _, err := evidence.VerifyFile(ctx, bundle, key.Public().(ed25519.PublicKey)); err != nil {
		return err
	}
	verify := time.Since(t2)
	mbps := float64(size) / build.Seconds() / 1e6
	r := map[string]any{"minutes": minutes, "video_bytes": size, "video_mbit_s": float64(size) * 8 / info.Duration.Seconds() / 1e6,
		"frames": info.Frames, "bundle_bytes": bst.Size(), "build_s": build.Seconds(), "build_mb_s": mbps,
		"verify_s": verify.Seconds(), "prepare_s": prep.Seconds()}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	fmt.Printf("range %.0f min: %.2f GB of %s %dx%d at %.2f Mbit/s, %d frames (looped with ffmpeg -c copy in %.1fs)\n",
		minutes, float64(size)/1e9, info.Codec, info.Width, info.Height, r["video_mbit_s"], info.Frames, prep.Seconds())
	fmt.Printf("build (to disk, fsynced): %.2fs = %.0f MB/s   bundle %.2f GB\n", build.Seconds(), mbps, float64(bst.Size())/1e9)
	fmt.Printf("verify: %.2fs = %.0f MB/s\n", verify.Seconds(), float64(bst.Size())/verify.Seconds()/1e6)
	return nil
}

// prepareVideo loops the bench camera clip into minutes of MP4 at video
// (ffmpeg -c copy, taking prep) and probes it.
func prepareVideo(ctx context.Context, video string, minutes float64) (size int64, info evidence.MP4Info, prep time.Duration, err error) {
	src, err := footage.Cache{Dir: footage.DefaultDir()}.BenchCamera(ctx, 1080)
	if err != nil {
		return 0, info, 0, err
	}
	t0 := time.Now()
	secs := fmt.Sprintf("%.3f", minutes*60)
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", src,
		"-t", secs, "-c", "copy", "-an", video)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, info, 0, fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	prep = time.Since(t0)
	f, err := os.Open(video)
	if err != nil {
		return 0, info, prep, err
	}
	defer f.Close()
	st, _ := f.Stat()
	info, err = evidence.ProbeMP4(f, st.Size())
	return st.Size(), info, prep, err
}

// custodyLog is the export of an audit log of 50 views, as a bundle's
// chain of custody.
func custodyLog(ctx context.Context, dir string) ([]byte, error) {
	log, err := audit.OpenDir(dir, audit.Options{})
	if err != nil {
		return nil, err
	}
	defer log.Close()
	for i := range 50 {
		log.Append(ctx, audit.Entry{Actor: audit.Actor{User: "li.wei", Role: "police_liaison"}, Action: audit.ActionView, Target: fmt.Sprint("alert-", i)})
	}
	var custody bytes.Buffer
	if _, err := log.Export(ctx, &custody, 1, 0); err != nil {
		return nil, err
	}
	return custody.Bytes(), nil
}

// addContactSheet makes c's contact sheet at path. That is the edge's
// work (streams/contactsheet, asked for over the retrieval protocol);
// Build only copies it.
func addContactSheet(c *evidence.Camera, start time.Time, path string) error {
	tSheet := time.Now()
	sheet, err := contactsheet.Make(c.VideoPath, start, evidence.SheetTitle(c.SiteName, c.EntranceName, c.CameraName, c.Actual), contactsheet.Options{})
	if err != nil {
		return err
	}
	c.ContactSheetPath = path
	if err := os.WriteFile(path, sheet, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "contact sheet (made on the edge): %v\n", time.Since(tSheet).Round(time.Millisecond))
	return nil
}

// buildBundle builds req's bundle into the file at path, fsynced.
func buildBundle(ctx context.Context, req evidence.Request, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := evidence.Build(ctx, out, req); err != nil {
		return err
	}
	return out.Sync()
}
