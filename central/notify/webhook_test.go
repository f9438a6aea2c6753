package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// hookServer records the events a receiver accepted; answer decides each
// reply (nil: 200).
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	accepted []Event
	requests int
	bodies   [][]byte
	urls     []*url.URL
}

func newHookServer(t *testing.T, answer func(n int, r *http.Request, body []byte) (int, string)) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.requests++
		n := h.requests
		h.bodies = append(h.bodies, body)
		h.urls = append(h.urls, r.URL)
		h.mu.Unlock()
		code, reply := http.StatusOK, ""
		if answer != nil {
			code, reply = answer(n, r, body)
		}
		if code/100 == 2 {
			var e Event
			if json.Unmarshal(body, &e) == nil {
				h.mu.Lock()
				h.accepted = append(h.accepted, e)
				h.mu.Unlock()
			}
		}
		w.WriteHeader(code)
		io.WriteString(w, reply)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.accepted)
}

func (h *hookServer) body(i int) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bodies[i]
}

func (h *hookServer) url(i int) *url.URL {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.urls[i]
}

func (h *hookServer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests
}

func hook(name, u, preset, secretFile string) WebhookConfig {
	return WebhookConfig{Name: name, URL: u, Preset: preset, SecretFile: secretFile, Timeout: config.Duration(2 * time.Second)}
}

func TestWebhookGenericSigned(t *testing.T) {
	secret := []byte("s3cret-key")
	var verr []error
	var mu sync.Mutex
	srv := newHookServer(t, func(_ int, r *http.Request, body []byte) (int, string) {
		err := Verify(secret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute)
		var e Event
		json.Unmarshal(body, &e)
		if r.Header.Get(HeaderEvent) != e.Type || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("headers %v for a %q event", r.Header, e.Type)
		}
		if err != nil {
			mu.Lock()
			verr = append(verr, err)
			mu.Unlock()
			return http.StatusUnauthorized, "bad signature"
		}
		return http.StatusNoContent, ""
	})
	n := start(t, Config{Webhooks: []WebhookConfig{hook("soc", srv.URL, "", writeSecret(t, string(secret)))}}, testOptions(t))
	n.Publish(alert(1, "a1", TypeNew, SeverityRed, StateNew))
	n.Publish(alert(2, "a1", TypeEscalated, SeverityRed, StateNew))
	waitUntil(t, "2 events", func() bool { return len(srv.got()) == 2 })
	mu.Lock()
	if s, _ := seqs(srv.got()); !slices.Equal(s, []uint64{1, 2}) || len(verr) != 0 {
		t.Fatalf("got %v, verify errors %v", s, verr)
	}
	mu.Unlock()

	// What a receiver must refuse.
	body := srv.body(0)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	good := Sign(secret, ts, body)
	mac := hmac.New(sha256.New, secret) // the documented formula, written out
	mac.Write([]byte(ts + "." + string(body)))
	if want := "sha256=" + hexString(mac.Sum(nil)); good != want {
		t.Fatalf("Sign = %s, want %s", good, want)
	}
	for name, err := range map[string]error{
		"good":         Verify(secret, ts, good, body, now, time.Minute),
		"other secret": Verify([]byte("other"), ts, good, body, now, time.Minute),
		"tampered":     Verify(secret, ts, good, append(slices.Clone(body), ' '), now, time.Minute),
		"replayed":     Verify(secret, ts, good, body, now.Add(10*time.Minute), 5*time.Minute),
		"bad ts":       Verify(secret, "x", good, body, now, time.Minute),
	} {
		if (err == nil) != (name == "good") {
			t.Errorf("%s: Verify = %v", name, err)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestWebhookRetry: the receiver answers 503 for a while; every event
// arrives once it is back, in order, and the failures are counted.
func TestWebhookRetry(t *testing.T) {
	srv := newHookServer(t, func(n int, _ *http.Request, _ []byte) (int, string) {
		if n <= 6 {
			return http.StatusServiceUnavailable, "down for maintenance"
		}
		return http.StatusOK, ""
	})
	n := start(t, Config{Webhooks: []WebhookConfig{hook("soc", srv.URL, PresetGeneric, writeSecret(t, "k"))}}, testOptions(t))
	for i := range 20 {
		n.Publish(alert(uint64(i+1), "a", TypeUpdate, SeverityYellow, StateNew))
	}
	waitUntil(t, "20 events", func() bool { return len(srv.got()) >= 20 && stats(t, n, "soc").Queued == 0 })
	want := make([]uint64, 20)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if s, dups := seqs(srv.got()); !slices.Equal(s, want) || dups != 0 {
		t.Fatalf("accepted %v (%d repeated), want 1..20 once", s, dups)
	}
	st := stats(t, n, "soc")
	if st.FailedAttempts != 6 || st.Sent != 20 || st.Dropped[DropRejected] != 0 {
		t.Errorf("stats %+v, want 6 failed attempts, 20 sent", st)
	}
}

// TestWebhookPermanent: a 4xx (not 408/429) is the receiver saying no
// for good: counted, dropped, and the next event goes on; 429 and 408 are
// retried.
func TestWebhookPermanent(t *testing.T) {
	tries := map[uint64]int{}
	var mu sync.Mutex
	srv := newHookServer(t, func(_ int, _ *http.Request, body []byte) (int, string) {
		var e Event
		json.Unmarshal(body, &e)
		mu.Lock()
		tries[e.Seq]++
		try := tries[e.Seq]
		mu.Unlock()
		switch {
		case e.Seq == 2:
			return http.StatusBadRequest, "unknown site"
		case e.Seq == 3 && try == 1:
			return http.StatusTooManyRequests, "slow down"
		case e.Seq == 4 && try == 1:
			return http.StatusRequestTimeout, ""
		}
		return http.StatusOK, ""
	})
	n := start(t, Config{Webhooks: []WebhookConfig{hook("soc", srv.URL, PresetGeneric, writeSecret(t, "k"))}}, testOptions(t))
	for i := range 5 {
		n.Publish(alert(uint64(i+1), "a", TypeUpdate, SeverityRed, StateNew))
	}
	waitUntil(t, "4 accepted", func() bool { return len(srv.got()) >= 4 && stats(t, n, "soc").Queued == 0 })
	if s, _ := seqs(srv.got()); !slices.Equal(s, []uint64{1, 3, 4, 5}) {
		t.Fatalf("accepted %v", s)
	}
	mu.Lock()
	if tries[2] != 1 {
		t.Errorf("a 400 was tried %d times, want once", tries[2])
	}
	mu.Unlock()
	if v := metric(t, n, "vigil_notify_dropped_total", map[string]string{"sink": "soc", "reason": DropRejected}); v != 1 {
		t.Errorf("rejected drops %v, want 1", v)
	}
	if st := stats(t, n, "soc"); st.FailedAttempts != 3 || st.Sent != 4 {
		t.Errorf("stats %+v, want 3 failed attempts (400, 429, 408), 4 sent", st)
	}
}

// TestWeCom checks the group-robot body and that an errcode other than 0
// (45009: rate limit) is a failure that is retried.
func TestWeCom(t *testing.T) {
	srv := newHookServer(t, func(n int, r *http.Request, body []byte) (int, string) {
		if r.URL.Path != "/cgi-bin/webhook/send" || r.URL.Query().Get("key") != "693a91f6-test" {
			return http.StatusNotFound, ""
		}
		if n == 1 {
			return http.StatusOK, `{"errcode":45009,"errmsg":"api freq out of limit"}`
		}
		return http.StatusOK, `{"errcode":0,"errmsg":"ok"}`
	})
	e := alert(7, "a7", TypeNew, SeverityRed, StateNew)
	e.TimeZone = "Asia/Shanghai"
	e.SummaryZH = "3号门被强行打开"
	e.SnapshotURL = "https://central.example/alerts/a7"
	n := start(t, Config{Webhooks: []WebhookConfig{hook("wecom", srv.URL+"/cgi-bin/webhook/send?key=693a91f6-test", PresetWeCom, "")}}, testOptions(t))
	n.Publish(e)
	waitUntil(t, "a success", func() bool { return stats(t, n, "wecom").Sent == 1 })
	if st := stats(t, n, "wecom"); st.FailedAttempts != 1 || srv.count() != 2 {
		t.Fatalf("stats %+v after %d requests: want the errcode 45009 answer counted and retried", st, srv.count())
	}
	var body struct {
		MsgType  string            `json:"msgtype"`
		Markdown map[string]string `json:"markdown"`
	}
	if err := json.Unmarshal(srv.body(1), &body); err != nil {
		t.Fatal(err)
	}
	if body.MsgType != "markdown" || len(body.Markdown) != 1 {
		t.Fatalf("body %s", srv.body(1))
	}
	c := body.Markdown["content"]
	for _, want := range []string{"RED", "红色", "forced", "强行开门", "north-village", "gate-3", "2026-12-07 05:00:00 UTC (2026-12-07 13:00:00 Asia/Shanghai)", "3号门被强行打开", "(https://central.example/alerts/a7)", "Vigil"} {
		if !strings.Contains(c, want) {
			t.Errorf("content lacks %q:\n%s", want, c)
		}
	}
	if len(c) > wecomMaxContent {
		t.Errorf("content %d bytes", len(c))
	}
}

func TestDingTalk(t *testing.T) {
	const secret = "SEC0123456789abcdef"
	at := time.UnixMilli(1700000000001)
	srv := newHookServer(t, func(n int, r *http.Request, body []byte) (int, string) {
		if n == 1 {
			return http.StatusOK, `{"errcode":310000,"errmsg":"sign not match"}`
		}
		return http.StatusOK, `{"errcode":0,"errmsg":"ok"}`
	})
	opt := testOptions(t)
	opt.Now = func() time.Time { return at }
	n := start(t, Config{Webhooks: []WebhookConfig{hook("ding", srv.URL+"/robot/send?access_token=tok", PresetDingTalk, writeSecret(t, secret))}}, opt)
	n.Publish(alert(9, "a9", TypeEscalated, SeverityRed, StateNew))
	waitUntil(t, "a success", func() bool { return stats(t, n, "ding").Sent == 1 })
	if st := stats(t, n, "ding"); st.FailedAttempts != 1 {
		t.Errorf("stats %+v: errcode 310000 should count as a failed attempt", st)
	}
	u := srv.url(1)
	// Vector computed apart from this code, with the documentation's own
	// Python sample (hmac, base64.b64encode, urllib.parse.quote_plus) for
	// this secret and timestamp.
	const wantQuery = "access_token=tok&timestamp=1700000000001&sign=h9I8htdbvJCasKF0f8Gu%2Ba2Cr5fjl9T%2Bpzb6hx3n%2BpE%3D"
	if u.Path != "/robot/send" || u.RawQuery != wantQuery {
		t.Errorf("request %s?%s\nwant query %s", u.Path, u.RawQuery, wantQuery)
	}
	// And the formula written out again here.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("1700000000001\n" + secret))
	if got := u.Query().Get("sign"); got != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		t.Errorf("sign %s", got)
	}
	var body struct {
		MsgType  string            `json:"msgtype"`
		Markdown map[string]string `json:"markdown"`
	}
	if err := json.Unmarshal(srv.body(1), &body); err != nil {
		t.Fatal(err)
	}
	if body.MsgType != "markdown" || len(body.Markdown) != 2 || !strings.Contains(body.Markdown["title"], "Vigil") {
		t.Fatalf("body %s", srv.body(1))
	}
	if txt := body.Markdown["text"]; !strings.Contains(txt, "ESCALATED") || !strings.Contains(txt, "  \n") {
		t.Errorf("text:\n%s", txt)
	}
}

func TestMinSeverity(t *testing.T) {
	srv := newHookServer(t, nil)
	w := hook("reds", srv.URL, PresetGeneric, writeSecret(t, "k"))
	w.MinSeverity = SeverityYellow
	n := start(t, Config{Webhooks: []WebhookConfig{w}}, testOptions(t))
	n.Publish(alert(1, "a", TypeNew, SeverityGreen, StateNew))
	n.Publish(alert(2, "b", TypeNew, SeverityYellow, StateNew))
	n.Publish(alert(3, "c", TypeNew, SeverityRed, StateNew))
	waitUntil(t, "2 events", func() bool { return len(srv.got()) == 2 })
	if s, _ := seqs(srv.got()); !slices.Equal(s, []uint64{2, 3}) {
		t.Fatalf("got %v", s)
	}
}

// TestNoLeaks: after Close, no goroutine of the notifier remains, with an
// MQTT connection and webhooks in flight and in backoff.
func TestNoLeaks(t *testing.T) {
	b := startBroker(t)
	ok := newHookServer(t, nil)
	down := newHookServer(t, func(int, *http.Request, []byte) (int, string) { return http.StatusBadGateway, "" })
	leaks := testrig.CheckGoroutines(t)
	opt := testOptions(t)
	opt.DrainTimeout = 50 * time.Millisecond
	n, err := New(Config{
		MQTT:     mqttConfig(b),
		Webhooks: []WebhookConfig{hook("ok", ok.URL, "", writeSecret(t, "k")), hook("down", down.URL, "", writeSecret(t, "k"))},
	}, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := n.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		n.Publish(alert(uint64(i), "a", TypeNew, SeverityRed, StateNew))
	}
	waitUntil(t, "deliveries", func() bool {
		return stats(t, n, "mqtt").Sent == 5 && stats(t, n, "ok").Sent == 5 && stats(t, n, "down").FailedAttempts > 0
	})
	n.Close()
	leaks.Check()
	if st := stats(t, n, "down"); st.Dropped[DropShutdown] != 5 {
		t.Errorf("down: %+v, want the 5 undelivered counted as shutdown drops", st)
	}
	n.Publish(alert(9, "late", TypeNew, SeverityRed, StateNew)) // after Close: counted, not queued
	if st := stats(t, n, "ok"); st.Dropped[DropShutdown] != 1 || st.Queued != 0 {
		t.Errorf("ok after a late publish: %+v", st)
	}
	if err := n.Run(ctx); err == nil {
		t.Error("Run after Close succeeded")
	}
}
