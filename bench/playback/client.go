package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client is a guard's browser: central's session cookie and the CSRF
// header on writes.
type client struct {
	api    string
	cookie string
	http   *http.Client
}

// login signs in as user.
func login(ctx context.Context, api, user, password string) (*client, error) {
	c := &client{api: api, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true}}}
	body, _ := json.Marshal(map[string]string{"user": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+api+"/api/v1/login", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vigil-Request", "1")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "vigil_session" && resp.StatusCode == http.StatusOK {
			c.cookie = ck.Name + "=" + ck.Value
			return c, nil
		}
	}
	return nil, fmt.Errorf("login as %s: %s", user, resp.Status)
}

// request sends method path with body (JSON-encoded unless nil).
func (c *client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.api+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Cookie", c.cookie)
	if method != http.MethodGet {
		req.Header.Set("X-Vigil-Request", "1")
		req.Header.Set("Content-Type", "application/json")
	}
	return c.http.Do(req)
}

// call sends a request and decodes a JSON answer of status want into out
// (nil: ignore the body).
func (c *client) call(ctx context.Context, method, path string, body, out any, want int) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// camRef names one camera of a session.
type camRef struct {
	Edge   string `json:"edge"`
	Camera string `json:"camera"`
}

// session is a playback session as POST /api/v1/playback/sessions
// answers it.
type session struct {
	ID     string    `json:"id"`
	Origin time.Time `json:"origin"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// openSession opens a playback session of the bench camera over from..to.
func (c *client) openSession(ctx context.Context, from, to time.Time) (session, error) {
	var s session
	body := map[string]any{"cameras": []camRef{{benchEdge, benchCamera}}, "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}
	if err := c.call(ctx, http.MethodPost, "/api/v1/playback/sessions", body, &s, http.StatusCreated); err != nil {
		return s, err
	}
	if s.ID == "" || !s.Origin.Equal(s.From) {
		return s, fmt.Errorf("playback session answer without id, or origin %v ≠ from %v", s.Origin, s.From)
	}
	return s, nil
}

// closeSession ends a session (DELETE → 204).
func (c *client) closeSession(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/playback/sessions/"+url.PathEscape(id), nil, nil, http.StatusNoContent)
}

// videoPath is the path of one window of a session's video.
func videoPath(sid string, from, to time.Time, keyframes bool) string {
	q := url.Values{"edge": {benchEdge}, "camera": {benchCamera},
		"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	if keyframes {
		q.Set("keyframes", "1")
	}
	return "/api/v1/playback/sessions/" + url.PathEscape(sid) + "/video?" + q.Encode()
}

// clipPath is the existing clip route for the same range (the reference).
func clipPath(from, to time.Time) string {
	q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	return "/api/v1/edges/" + benchEdge + "/cameras/" + benchCamera + "/clip?" + q.Encode()
}

// fetched is one GET of video as the client saw it arrive.
type fetched struct {
	headers   time.Duration // from t0 to the response headers
	firstByte time.Duration // to the first body byte
	firstFrag time.Duration // to the first moof+mdat whole (0: none)
	total     time.Duration // to the end of the body
	bytes     int64
	fragments int
	start     time.Time // X-Vigil-Start
	end       time.Time // X-Vigil-End
	keyOnly   string    // X-Vigil-Keyframes-Only
	frames    string    // X-Vigil-Frames
}

// fetch GETs path and reads the whole body, timing from t0 (fMP4 bodies
// are scanned for their first fragment). save, if not nil, receives the
// body.
func (c *client) fetch(ctx context.Context, path string, t0 time.Time, save io.Writer) (fetched, error) {
	var f fetched
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return f, err
	}
	defer resp.Body.Close()
	f.headers = time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return f, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	f.start, _ = time.Parse(time.RFC3339Nano, resp.Header.Get("X-Vigil-Start"))
	f.end, _ = time.Parse(time.RFC3339Nano, resp.Header.Get("X-Vigil-End"))
	f.keyOnly, f.frames = resp.Header.Get("X-Vigil-Keyframes-Only"), resp.Header.Get("X-Vigil-Frames")
	var scan boxScanner
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if f.bytes == 0 {
				f.firstByte = time.Since(t0)
			}
			f.bytes += int64(n)
			scan.Write(buf[:n])
			if f.firstFrag == 0 && scan.firstFragment() {
				f.firstFrag = time.Since(t0)
			}
			if save != nil {
				save.Write(buf[:n])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return f, fmt.Errorf("GET %s: reading after %d bytes: %w", path, f.bytes, err)
		}
	}
	f.total, f.fragments = time.Since(t0), scan.moofs
	if scan.err != nil || !scan.complete() {
		return f, fmt.Errorf("GET %s: the body (%d bytes) is not whole MP4 boxes: %v", path, f.bytes, scan.err)
	}
	return f, nil
}
