package demo

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// cameraLog records what the control asked of the cameras, as
// sim.Server.Freeze would receive it.
type cameraLog struct {
	mu     sync.Mutex
	frozen map[string]bool
	calls  []string
}

func (l *cameraLog) Freeze(path string, frozen bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frozen[path] = frozen
	if frozen {
		l.calls = append(l.calls, "freeze "+path)
	} else {
		l.calls = append(l.calls, "resume "+path)
	}
}

func (l *cameraLog) isFrozen(path string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.frozen[path]
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, out
}

func TestControlFreezesACameraForAWhile(t *testing.T) {
	cams := &cameraLog{frozen: map[string]bool{}}
	c := newControl(cams, cameraPaths, "secret-token", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.HasPrefix(c.URL(), "http://127.0.0.1:") {
		t.Fatalf("control listens on %s, want 127.0.0.1 only", c.URL())
	}
	freeze := c.URL() + "/cameras/south-gate/freeze"

	refused := []struct {
		name, url, token, body string
		status                 int
	}{
		{"no token", freeze, "", `{"seconds":1}`, http.StatusUnauthorized},
		{"wrong token", freeze, "secret-tokeN", `{"seconds":1}`, http.StatusUnauthorized},
		{"unknown camera", c.URL() + "/cameras/east-gate/freeze", "secret-token", `{"seconds":1}`, http.StatusNotFound},
		{"no seconds", freeze, "secret-token", `{}`, http.StatusBadRequest},
		{"too long", freeze, "secret-token", `{"seconds":601}`, http.StatusBadRequest},
		{"not JSON", freeze, "secret-token", `seconds=1`, http.StatusBadRequest},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, tc.url, tc.token, tc.body)
			if status != tc.status || body["error"] == "" {
				t.Fatalf("status %d %v, want %d with an error", status, body, tc.status)
			}
		})
	}
	if cams.isFrozen("south-gate") {
		t.Fatal("a refused request froze the camera")
	}

	before := time.Now().UTC()
	status, body := post(t, freeze, "secret-token", `{"seconds":0.4}`)
	if status != http.StatusOK {
		t.Fatalf("freeze: %d %v", status, body)
	}
	from, _ := time.Parse(time.RFC3339Nano, body["from"].(string))
	to, _ := time.Parse(time.RFC3339Nano, body["to"].(string))
	if from.Before(before.Add(-time.Second)) || to.Sub(from) != 400*time.Millisecond || !strings.HasSuffix(body["to"].(string), "Z") {
		t.Fatalf("answer %v: want the UTC freeze start now and its end 0.4 s later", body)
	}
	if !cams.isFrozen("south-gate") || cams.isFrozen("north-gate") {
		t.Fatalf("cameras %v: want only south-gate frozen", cams.frozen)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cams.isFrozen("south-gate") {
		if time.Now().After(deadline) {
			t.Fatal("south-gate still frozen 5 s after a 0.4 s freeze")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := time.Now(); got.Before(to.Add(-50 * time.Millisecond)) {
		t.Fatalf("resumed at %s, before the announced end %s", got, to)
	}

	// A second freeze replaces the first's resume; Close resumes it.
	post(t, freeze, "secret-token", `{"seconds":0.2}`)
	post(t, freeze, "secret-token", `{"seconds":60}`)
	time.Sleep(400 * time.Millisecond)
	if !cams.isFrozen("south-gate") {
		t.Fatal("the first freeze's resume ended the second one")
	}
	c.Close()
	if cams.isFrozen("south-gate") {
		t.Fatal("Close left the camera frozen")
	}
}
