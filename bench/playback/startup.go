package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dist is a distribution of durations in milliseconds.
type dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func distOf(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	q := func(p float64) float64 { return ms(s[min(len(s)-1, int(p*float64(len(s))))]) }
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return dist{N: len(s), P50: q(0.5), P95: q(0.95), P99: q(0.99), Max: ms(s[len(s)-1]), Mean: ms(sum) / float64(len(s))}
}

// startupResult is the startup part's figures.
type startupResult struct {
	Tries int `json:"tries"`
	// Click is POST session → first moof+mdat of the window whole at the
	// client; Session the POST alone; Window the whole 10 s window.
	Click          dist `json:"click_to_first_fragment"`
	ClickKeyframes dist `json:"click_to_first_fragment_keyframes_only"`
	ClickTTFB      dist `json:"click_to_first_byte"`
	Session        dist `json:"session_post"`
	Window         dist `json:"whole_window"`
	WindowKey      dist `json:"whole_window_keyframes_only"`
	// ClipTTFB is the reference: the clip route's time to first byte for
	// the same 10 s; ClipWhole its whole answer.
	ClipTTFB     dist    `json:"clip_ttfb"`
	ClipWhole    dist    `json:"clip_whole"`
	WindowMB     float64 `json:"window_mb"`
	WindowKeyMB  float64 `json:"window_keyframes_only_mb"`
	Probe        string  `json:"ffprobe"`
	RatioP50     float64 `json:"click_over_clip_ttfb_p50"`
	RatioP95     float64 `json:"click_over_clip_ttfb_p95"`
	KeyRatioP50  float64 `json:"keyframes_click_over_clip_ttfb_p50"`
	WithinTarget bool    `json:"within_2s_target"` // every try, both kinds, ≤ 2 s
	// OthersCPU is every other process on the machine during the tries
	// (% of one core).
	OthersCPU float64 `json:"others_cpu_pct"`
}

// startupSamples collects the tries.
type startupSamples struct {
	click, clickKey, clickTTFB, post, window, windowKey, clipTTFB, clipWhole []time.Duration
	bytes, keyBytes                                                          int64
	saved, savedKey                                                          bytes.Buffer
	fullFrames, keyFrames                                                    string
}

// measureStartup times ~30 clicks of each kind at moments spread over
// the recorded history, the three kinds of a try in rotating order,
// every request reading the recording cold.
func measureStartup(ctx context.Context, e *env, o options) (startupResult, error) {
	fmt.Fprintf(os.Stderr, "startup: %d tries of each kind …\n", o.tries)
	var s startupSamples
	m0 := markCPU(e.serverPid())
	span := e.recTo.Sub(e.recFrom) - o.window - time.Second
	for i := range o.tries {
		at := e.recFrom.Add(time.Duration(i) * span / time.Duration(o.tries))
		for j := range 3 {
			var err error
			switch (i + j) % 3 {
			case 0:
				err = s.clickTry(ctx, e, at, o.window, false, i == 0)
			case 1:
				err = s.clickTry(ctx, e, at, o.window, true, i == 0)
			case 2:
				err = s.clipTry(ctx, e, at, o.window)
			}
			if err != nil {
				return startupResult{}, fmt.Errorf("try %d at %s: %w", i, at.Format(time.RFC3339), err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	others := markCPU(e.serverPid()).since(m0).others
	probe, err := s.probe(e.dir)
	if err != nil {
		return startupResult{}, err
	}
	r := startupResult{Tries: o.tries, Click: distOf(s.click), ClickKeyframes: distOf(s.clickKey), ClickTTFB: distOf(s.clickTTFB), Session: distOf(s.post),
		Window: distOf(s.window), WindowKey: distOf(s.windowKey), ClipTTFB: distOf(s.clipTTFB), ClipWhole: distOf(s.clipWhole),
		WindowMB: float64(s.bytes) / 1e6 / float64(o.tries), WindowKeyMB: float64(s.keyBytes) / 1e6 / float64(o.tries), Probe: probe}
	r.RatioP50, r.RatioP95 = r.Click.P50/r.ClipTTFB.P50, r.Click.P95/r.ClipTTFB.P95
	r.KeyRatioP50 = r.ClickKeyframes.P50 / r.ClipTTFB.P50
	r.WithinTarget = r.Click.Max <= 2000 && r.ClickKeyframes.Max <= 2000
	r.OthersCPU = others
	return r, nil
}

// clickTry opens a session around at and GETs the window from at, timing
// from before the POST to the first fragment whole.
func (s *startupSamples) clickTry(ctx context.Context, e *env, at time.Time, window time.Duration, keyframes, save bool) error {
	e.evictRecording()
	var body io.Writer
	if save && keyframes {
		body = &s.savedKey
	} else if save {
		body = &s.saved
	}
	from, to := at.Add(-15*time.Minute), at.Add(15*time.Minute)
	if now := time.Now().UTC(); to.After(now) {
		to = now
	}
	t0 := time.Now()
	sess, err := e.guard.openSession(ctx, from, to)
	if err != nil {
		return err
	}
	post := time.Since(t0)
	f, err := e.guard.fetch(ctx, videoPath(sess.ID, at, at.Add(window), keyframes), t0, body)
	if cerr := e.guard.closeSession(ctx, sess.ID); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if want := map[bool]string{true: "1", false: "0"}[keyframes]; f.keyOnly != want || f.firstFrag == 0 {
		return fmt.Errorf("window (keyframes %v): X-Vigil-Keyframes-Only %q, %d fragments", keyframes, f.keyOnly, f.fragments)
	}
	s.post = append(s.post, post)
	if keyframes {
		s.clickKey, s.windowKey, s.keyBytes = append(s.clickKey, f.firstFrag), append(s.windowKey, f.total), s.keyBytes+f.bytes
		if save {
			s.keyFrames = f.frames
		}
	} else {
		s.click, s.window, s.bytes = append(s.click, f.firstFrag), append(s.window, f.total), s.bytes+f.bytes
		s.clickTTFB = append(s.clickTTFB, f.firstByte)
		if save {
			s.fullFrames = f.frames
		}
	}
	return nil
}

// clipTry is the reference: the clip route's time to first byte for the
// same range.
func (s *startupSamples) clipTry(ctx context.Context, e *env, at time.Time, window time.Duration) error {
	e.evictRecording()
	t0 := time.Now()
	f, err := e.guard.fetch(ctx, clipPath(at, at.Add(window)), t0, nil)
	if err != nil {
		return err
	}
	s.clipTTFB, s.clipWhole = append(s.clipTTFB, f.firstByte), append(s.clipWhole, f.total)
	return nil
}

// probe has ffprobe read the first try's windows: every frame the
// headers announce, and only keyframes in the keyframes-only one.
func (s *startupSamples) probe(dir string) (string, error) {
	count := func(name string, b []byte) (pkts, keys int, err error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return 0, 0, err
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags", "-of", "csv=p=0", p).CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("ffprobe %s: %v: %s", name, err, out)
		}
		for _, l := range strings.Fields(string(out)) {
			pkts++
			if strings.HasPrefix(l, "K") {
				keys++
			}
		}
		return pkts, keys, nil
	}
	fp, fk, err := count("window.mp4", s.saved.Bytes())
	if err != nil {
		return "", err
	}
	kp, kk, err := count("window-keyframes.mp4", s.savedKey.Bytes())
	if err != nil {
		return "", err
	}
	if strconv.Itoa(fp) != s.fullFrames || kp != kk || strconv.Itoa(kp) != s.keyFrames || fp == 0 {
		return "", fmt.Errorf("ffprobe reads %d packets (%d key) in a window that says X-Vigil-Frames %s, %d (%d key) in a keyframes-only one that says %s",
			fp, fk, s.fullFrames, kp, kk, s.keyFrames)
	}
	return fmt.Sprintf("first window %d packets (%d key), keyframes-only %d packets, all key; both as X-Vigil-Frames says", fp, fk, kp), nil
}
