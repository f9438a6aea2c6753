package clips

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHTTP plays back over the HTTP API: spans and gaps, an MP4 and a
// JPEG, and a 400 naming the parameter or a 404 for every wrong request.
func TestHTTP(t *testing.T) {
	clip := bursts(t)
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	record(t, r, newFeed(clip, epoch), epoch.Add(60*time.Second))
	// The camera was away for 30 s: a new session, PTS from zero.
	record(t, r, newFeed(clip, epoch.Add(90*time.Second)), epoch.Add(120*time.Second))
	flush(t, s)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	at := func(d time.Duration) string { return epoch.Add(d).Format(time.RFC3339Nano) }

	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		return httpGet(t, srv.URL+path)
	}

	res, body := get("/api/v1/recordings/gate")
	var tl Timeline
	if res.StatusCode != 200 || json.Unmarshal(body, &tl) != nil {
		t.Fatalf("timeline: %d %s", res.StatusCode, body)
	}
	wantGap := Span{Start: epoch.Add(60 * time.Second), End: epoch.Add(90 * time.Second)}
	if len(tl.Spans) != 2 || len(tl.Gaps) != 1 || !tl.Gaps[0].Start.Equal(wantGap.Start) || !tl.Gaps[0].End.Equal(wantGap.End) {
		t.Errorf("timeline %s, want two spans around a gap from 60 s to 90 s", body)
	}

	res, body = get("/api/v1/recordings/gate/mp4?start=" + at(20*time.Second) + "&duration=10s")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("mp4: %d %s", res.StatusCode, body[:min(len(body), 200)])
	}
	if got := res.Header.Get("X-Vigil-Start"); got != at(20*time.Second) {
		t.Errorf("X-Vigil-Start %q", got)
	}
	path := filepath.Join(t.TempDir(), "http.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := ffprobe(t, path); p.Frames != 100 || p.Duration != 10 {
		t.Errorf("mp4 over HTTP: %d frames, %v s; want 100, 10 s", p.Frames, p.Duration)
	}

	res, body = get("/api/v1/recordings/gate/jpeg?at=" + at(95*time.Second) + "&width=160")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("jpeg: %d %s", res.StatusCode, body)
	}
	if img, err := jpeg.Decode(bytes.NewReader(body)); err != nil || img.Bounds().Dx() != 160 {
		t.Errorf("jpeg: %v", err)
	}

	res, body = get("/api/v1/recordings")
	if res.StatusCode != 200 || !strings.Contains(string(body), `"camera":"gate"`) {
		t.Errorf("stats: %d %s", res.StatusCode, body)
	}

	testHTTPErrors(t, get, at)
}

// httpGet fetches url and reads the body.
func httpGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// testHTTPErrors: every wrong request is a 400 naming the parameter, or
// a 404. at formats an offset from epoch.
func testHTTPErrors(t *testing.T, get func(string) (*http.Response, []byte), at func(time.Duration) string) {
	t.Helper()
	for _, tc := range []struct {
		path string
		code int
		says string
	}{
		{"/api/v1/recordings/nope", 404, "unknown camera"},
		{"/api/v1/recordings/gate?start=yesterday", 400, "start:"},
		{"/api/v1/recordings/gate/mp4?duration=10s", 400, "start:"},
		{"/api/v1/recordings/gate/mp4?start=2026-03-01&duration=10s", 400, "start:"},
		{"/api/v1/recordings/gate/mp4?start=" + at(0), 400, "duration:"},
		{"/api/v1/recordings/gate/mp4?start=" + at(0) + "&duration=-5s", 400, "duration:"},
		{"/api/v1/recordings/gate/mp4?start=" + at(0) + "&duration=10", 400, "duration:"},
		{"/api/v1/recordings/gate/mp4?start=" + at(0) + "&duration=3h", 400, "duration:"},
		{"/api/v1/recordings/gate/mp4?start=" + at(65*time.Second) + "&duration=20s", 404, "no video"},
		{"/api/v1/recordings/nope/mp4?start=" + at(0) + "&duration=10s", 404, "unknown camera"},
		{"/api/v1/recordings/gate/jpeg", 400, "at:"},
		{"/api/v1/recordings/gate/jpeg?at=" + at(0) + "&width=huge", 400, "width:"},
		{"/api/v1/recordings/gate/jpeg?at=" + at(70*time.Second), 404, "no video"},
		{"/api/v1/recordings/nope/jpeg?at=" + at(0), 404, "unknown camera"},
	} {
		res, body := get(tc.path)
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if res.StatusCode != tc.code || !strings.Contains(e.Error, tc.says) {
			t.Errorf("GET %s: %d %s, want %d saying %q", tc.path, res.StatusCode, body, tc.code, tc.says)
		}
	}
}
