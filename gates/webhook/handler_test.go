package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/engine"
)

const (
	secret    = "north-controller-secret-0123456789"
	newSecret = "rotated-secret-abcdefghijklmnopqrstuv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var now0 = time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)

// recorder is a sink that keeps events; fail makes it refuse.
type recorder struct {
	mu   sync.Mutex
	evs  []gates.Event
	fail error
}

func (r *recorder) sink(_ context.Context, ev gates.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.evs = append(r.evs, ev)
	return nil
}

func (r *recorder) events() []gates.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gates.Event(nil), r.evs...)
}

type fixture struct {
	srv *httptest.Server
	h   *Handler
	rec *recorder
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{rec: &recorder{}, now: now0}
	h, err := New(Config{
		Controllers: []Controller{
			{ID: "ctrl-north", Secrets: []string{secret, newSecret}, Gates: []string{"north-gate"}},
			{ID: "ctrl-south", Secrets: []string{"south-controller-secret-0123"}, Gates: []string{"south-gate"}},
		},
		Now: func() time.Time { return f.now },
	}, f.rec.sink, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// post sends a request and decodes the answer.
func (f *fixture) post(t *testing.T, req *http.Request) (int, Response) {
	t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("status %d, body not JSON: %v", resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return resp.StatusCode, r
}

func (f *fixture) signed(t *testing.T, controller, sec, body string, at time.Time) *http.Request {
	t.Helper()
	req, err := NewRequest(context.Background(), f.srv.URL, controller, sec, []byte(body), at)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestAcceptsSignedEvents(t *testing.T) {
	f := newFixture(t)
	code, res := f.post(t, f.signed(t, "ctrl-north", secret, `{"id":"e1","gate":"north-gate","type":"granted","credential":"card:04A2"}`, f.now))
	if code != 200 || res.Accepted != 1 {
		t.Fatalf("%d %+v", code, res)
	}
	batch := `{"events":[{"id":"e2","gate":"north-gate","type":"opened","device":"door-1","time":"2026-03-10T11:59:59+08:00"},{"id":"e3","gate":"north-gate","type":"closed","device":"door-1"}]}`
	code, res = f.post(t, f.signed(t, "ctrl-north", newSecret, batch, f.now.Add(-time.Minute)))
	if code != 200 || res.Accepted != 2 {
		t.Fatalf("rotated secret: %d %+v", code, res)
	}
	evs := f.rec.events()
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	if evs[0].Device != "ctrl-north" || evs[0].Source != "webhook/ctrl-north" || evs[0].Credential != "card:04A2" || !evs[0].Time.Equal(f.now) {
		t.Fatalf("event 0: %+v", evs[0])
	}
	if evs[1].Device != "door-1" || !evs[1].Time.Equal(f.now.Add(-time.Second)) || evs[1].Kind != gates.Opened {
		t.Fatalf("event 1: %+v", evs[1])
	}
	if n := testutil.ToFloat64(f.h.metrics.events.WithLabelValues("ctrl-north")); n != 3 {
		t.Fatalf("events metric %v", n)
	}
}

func TestRefusals(t *testing.T) {
	event := `{"id":"r1","gate":"north-gate","type":"opened"}`
	tests := []struct {
		name   string
		req    func(f *fixture) *http.Request
		status int
		code   string
	}{
		{"GET", func(f *fixture) *http.Request { r, _ := http.NewRequest("GET", f.srv.URL, nil); return r }, 405, CodeMethod},
		{"not JSON content", func(f *fixture) *http.Request {
			r := f.signed(t, "ctrl-north", secret, event, f.now)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 415, CodeMediaType},
		{"too large", func(f *fixture) *http.Request {
			return f.signed(t, "ctrl-north", secret, strings.Repeat(" ", DefaultMaxBody+1), f.now)
		}, 413, CodeTooLarge},
		{"too large without Content-Length", func(f *fixture) *http.Request {
			r := f.signed(t, "ctrl-north", secret, "", f.now)
			r.Body = io.NopCloser(io.MultiReader(strings.NewReader(strings.Repeat(" ", DefaultMaxBody+10))))
			r.ContentLength = -1
			return r
		}, 413, CodeTooLarge},
		{"no signature", func(f *fixture) *http.Request {
			r := f.signed(t, "ctrl-north", secret, event, f.now)
			r.Header.Del(HeaderSignature)
			return r
		}, 400, CodeBadHeader},
		{"timestamp not a number", func(f *fixture) *http.Request {
			r := f.signed(t, "ctrl-north", secret, event, f.now)
			r.Header.Set(HeaderTimestamp, "2026-03-10T04:00:00Z")
			return r
		}, 400, CodeBadHeader},
		{"signature not hex", func(f *fixture) *http.Request {
			r := f.signed(t, "ctrl-north", secret, event, f.now)
			r.Header.Set(HeaderSignature, "sha256=zz")
			return r
		}, 400, CodeBadHeader},
		{"unknown controller", func(f *fixture) *http.Request { return f.signed(t, "ctrl-west", secret, event, f.now) }, 401, CodeUnknownController},
		{"wrong secret", func(f *fixture) *http.Request {
			return f.signed(t, "ctrl-north", "south-controller-secret-0123", event, f.now)
		}, 401, CodeBadSignature},
		{"body changed after signing", func(f *fixture) *http.Request {
			r := f.signed(t, "ctrl-north", secret, event, f.now)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(event, "opened", "closed", 1)))
			return r
		}, 401, CodeBadSignature},
		{"timestamp changed after signing", func(f *fixture) *http.Request {
			r := f.signed(t, "ctrl-north", secret, event, f.now)
			r.Header.Set(HeaderTimestamp, "1773115201")
			return r
		}, 401, CodeBadSignature},
		{"stale", func(f *fixture) *http.Request {
			return f.signed(t, "ctrl-north", secret, event, f.now.Add(-301*time.Second))
		}, 401, CodeStale},
		{"from the future", func(f *fixture) *http.Request {
			return f.signed(t, "ctrl-north", secret, event, f.now.Add(301*time.Second))
		}, 401, CodeStale},
		{"malformed", func(f *fixture) *http.Request { return f.signed(t, "ctrl-north", secret, `{"id":"x",`, f.now) }, 400, CodeMalformed},
		{"invalid event", func(f *fixture) *http.Request {
			return f.signed(t, "ctrl-north", secret, `{"id":"x","gate":"north-gate","type":"alarm","sensor":"fire"}`, f.now)
		}, 400, CodeInvalid},
		{"another controller's gate", func(f *fixture) *http.Request {
			return f.signed(t, "ctrl-north", secret, `{"id":"x","gate":"south-gate","type":"opened"}`, f.now)
		}, 403, CodeForbiddenGate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			code, res := f.post(t, tc.req(f))
			if code != tc.status || res.Code != tc.code || res.Error == "" {
				t.Fatalf("got %d %+v, want %d %s", code, res, tc.status, tc.code)
			}
			if n := testutil.ToFloat64(f.h.metrics.requests.WithLabelValues(tc.code)); n != 1 {
				t.Fatalf("metric for %s = %v", tc.code, n)
			}
			if len(f.rec.events()) != 0 {
				t.Fatal("a refused request delivered events")
			}
		})
	}
}

// TestReplay: the same signed request twice is refused; a retry that
// carries one new event among old ones delivers only the new one.
func TestReplay(t *testing.T) {
	f := newFixture(t)
	body := `{"id":"e1","gate":"north-gate","type":"button"}`
	t0 := f.now
	req := func() *http.Request { return f.signed(t, "ctrl-north", secret, body, t0) }
	if code, _ := f.post(t, req()); code != 200 {
		t.Fatal(code)
	}
	code, res := f.post(t, req())
	if code != 409 || res.Code != CodeReplayed || res.Duplicates != 1 {
		t.Fatalf("replay: %d %+v", code, res)
	}
	// Another controller may use the same event ID: IDs are per controller.
	if code, _ := f.post(t, f.signed(t, "ctrl-south", "south-controller-secret-0123", `{"id":"e1","gate":"south-gate","type":"button"}`, f.now)); code != 200 {
		t.Fatalf("same id from another controller: %d", code)
	}
	batch := `{"events":[{"id":"e1","gate":"north-gate","type":"button"},{"id":"e2","gate":"north-gate","type":"button"}]}`
	code, res = f.post(t, f.signed(t, "ctrl-north", secret, batch, f.now.Add(time.Second)))
	if code != 200 || res.Accepted != 1 || res.Duplicates != 1 {
		t.Fatalf("partial retry: %d %+v", code, res)
	}
	if n := len(f.rec.events()); n != 3 {
		t.Fatalf("%d events delivered, want 3", n)
	}
	// After the skew window has passed twice over, the ID is forgotten;
	// the old request is stale by then anyway.
	f.now = f.now.Add(11 * time.Minute)
	if code, res := f.post(t, req()); code != 401 || res.Code != CodeStale {
		t.Fatalf("old replay: %d %+v", code, res)
	}
}

// TestUnavailableSinkLetsTheRetryThrough: an event the edge could not take
// must not be remembered as received.
func TestUnavailableSinkLetsTheRetryThrough(t *testing.T) {
	f := newFixture(t)
	f.rec.fail = errors.New("shutting down")
	body := `{"id":"e1","gate":"north-gate","type":"opened"}`
	if code, res := f.post(t, f.signed(t, "ctrl-north", secret, body, f.now)); code != 503 || res.Code != CodeUnavailable {
		t.Fatalf("%d %+v", code, res)
	}
	f.rec.fail = nil
	if code, res := f.post(t, f.signed(t, "ctrl-north", secret, body, f.now)); code != 200 || res.Accepted != 1 {
		t.Fatalf("retry: %d %+v", code, res)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []Controller{
		{ID: "", Secrets: []string{secret}, Gates: []string{"g"}},
		{ID: "c", Gates: []string{"g"}},
		{ID: "c", Secrets: []string{"short"}, Gates: []string{"g"}},
		{ID: "c", Secrets: []string{secret}},
	} {
		if _, err := New(Config{Controllers: []Controller{c}}, nil, nil, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestMetricsExistFromStart: every result and every configured
// controller's series are exported at 0 before the first request.
func TestMetricsExistFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := New(Config{Controllers: []Controller{{ID: "ctrl-north", Secrets: []string{secret}, Gates: []string{"g"}}}}, (&recorder{}).sink, reg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("# HELP vigil_gate_webhook_requests_total Gate webhook requests by result (ok or the refusal code).\n# TYPE vigil_gate_webhook_requests_total counter\n")
	sorted := append([]string(nil), codes...)
	slices.Sort(sorted)
	for _, c := range sorted {
		fmt.Fprintf(&want, "vigil_gate_webhook_requests_total{result=%q} 0\n", c)
	}
	want.WriteString(`# HELP vigil_gate_webhook_events_total Gate events accepted over the webhook, by controller.
# TYPE vigil_gate_webhook_events_total counter
vigil_gate_webhook_events_total{controller="ctrl-north"} 0
# HELP vigil_gate_webhook_duplicates_total Gate events skipped as already received, by controller.
# TYPE vigil_gate_webhook_duplicates_total counter
vigil_gate_webhook_duplicates_total{controller="ctrl-north"} 0
`)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String())); err != nil {
		t.Fatal(err)
	}
	if len(sorted) != 13 {
		t.Fatalf("%d result codes", len(sorted))
	}
}

// TestThroughEngine: a real HTTP request to the handler ends as an alert
// from the gate's state machine.
func TestThroughEngine(t *testing.T) {
	alerts := make(chan gates.Alert, 10)
	eng, err := engine.New(engine.Options{
		Gates:   []gates.Config{{ID: "north-gate", Name: "North gate", Arming: gates.Arming{Always: true}, GrantGrace: 100 * time.Millisecond}},
		OnAlert: func(a gates.Alert) { alerts <- a },
		Log:     quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go eng.Run(ctx)
	h, err := New(Config{Controllers: []Controller{{ID: "ctrl-north", Secrets: []string{secret}, Gates: []string{"north-gate"}}}}, eng.Submit, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	body, _ := gates.MarshalPayload(gates.Event{ID: "x1", Gate: "north-gate", Kind: gates.Opened, Time: time.Now()})
	req, _ := NewRequest(ctx, srv.URL, "ctrl-north", secret, body, time.Now())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case a := <-alerts:
		if a.Key != gates.CauseForced || a.Severity != "red" {
			t.Fatalf("got %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert")
	}
}

// FuzzHandler: any body, correctly signed, gets a 2xx or a 4xx with a
// JSON error, never a 5xx or a panic.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(`{"id":"e1","gate":"north-gate","type":"opened"}`))
	f.Add([]byte(`{"events":[{"id":"a","gate":"north-gate","type":"alarm","sensor":"gas"}]}`))
	f.Add([]byte(`{"id":"e1","gate":"south-gate","type":"opened"}`))
	f.Add([]byte{0xff, 0x00})
	rec := &recorder{}
	h, err := New(Config{Controllers: []Controller{{ID: "c", Secrets: []string{secret}, Gates: []string{"north-gate"}}}, DedupSize: 64}, rec.sink, nil, quiet)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := NewRequest(context.Background(), "http://edge/api/v1/gates/events", "c", secret, body, time.Now())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 || (w.Code >= 300 && w.Code < 400) {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		var r Response
		if err := json.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(&r); err != nil {
			t.Fatalf("answer not JSON: %q", w.Body.String())
		}
		if w.Code >= 400 && r.Code == "" {
			t.Fatalf("error without code: %q", w.Body.String())
		}
	})
}

// TestSignatureExampleInREADME pins the worked example integrators copy
// from README.md ("Gates"), computed there with openssl.
func TestSignatureExampleInREADME(t *testing.T) {
	body := `{"id":"evt-000123","gate":"north-gate","device":"reader-1","type":"granted","credential":"card:04A2B9C1","time":"2026-03-10T21:14:05+08:00"}`
	got := Sign("change-me-to-32-random-bytes-hex", 1773148445, []byte(body))
	if want := "sha256=02f8b72d9255e20e730d75a718c9677393a5ec94f29a1769479afebd1540482c"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}
