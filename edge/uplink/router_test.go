package uplink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// routerSession is one connection's request side without a websocket:
// answers arrive on replies.
func routerSession(t *testing.T, cfg Config) (*Uplink, *sessionState) {
	t.Helper()
	u := New(cfg, nil, nil, nil, nil)
	s := &sessionState{u: u, replies: make(chan []byte, 16), done: make(chan struct{}), slots: make(chan struct{}, u.cfg.MaxRequests),
		lightSlots: make(chan struct{}, u.cfg.MaxLightRequests)}
	s.stream = &Stream{frames: make(chan []byte, 1), done: s.done}
	t.Cleanup(func() { close(s.done); s.handlers.Wait() })
	return u, s
}

func nextAnswer(t *testing.T, s *sessionState) wire.Response {
	t.Helper()
	select {
	case frame := <-s.replies:
		env, err := wire.Unmarshal(frame)
		if err != nil {
			t.Fatal(err)
		}
		var r wire.Response
		if err := wire.DecodeBody(env, &r); err != nil {
			t.Fatal(err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
		return wire.Response{}
	}
}

// The uplink answers from its table: a routed method reaches its handler
// (an answer left open is ended), an unknown or unrouted method is
// bad_request, a Bounded method is refused as busy when every slot is
// taken while an Unbounded one (the audit checkpoint) is still answered.
func TestRouterDispatchAndPolicy(t *testing.T) {
	r := NewRouter()
	release := make(chan struct{})
	r.HandleFunc(wire.MethodClip, func(ctx context.Context, req wire.Request, out *Responder) {
		<-release // holds the only slot
		_ = out.Send("video/mp4", []byte("clip of "+req.Camera), true)
	})
	r.HandleFunc(wire.MethodThumbnail, func(context.Context, wire.Request, *Responder) {}) // answers nothing
	r.HandleWith(wire.MethodAuditCheckpoint, Unbounded, HandlerFunc(func(_ context.Context, _ wire.Request, out *Responder) {
		_ = out.Send("application/json", []byte(`{}`), true)
	}))
	_, s := routerSession(t, Config{Routes: r, MaxRequests: 1})
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

	s.startRequest(ctx, wire.Request{ID: "t1", Method: wire.MethodThumbnail, Camera: "cam-1", At: at})
	if a := nextAnswer(t, s); a.ID != "t1" || a.Status != wire.StatusError || !a.Final {
		t.Fatalf("handler that answered nothing: %+v", a)
	}
	for _, c := range []struct{ req wire.Request }{
		{wire.Request{ID: "u1", Method: "frobnicate"}},                               // unknown to the wire
		{wire.Request{ID: "u2", Method: wire.MethodLiveStart, Camera: "cam-1"}},      // known, not routed
		{wire.Request{ID: "u3", Method: wire.MethodClip, Camera: "cam-1", From: at}}, // malformed
		{wire.Request{ID: "u4", Method: wire.MethodRecordings, Camera: "cam-1"}},     // malformed evidence
		{wire.Request{ID: "u5", Method: wire.MethodSetupReopen}},                     // valid, not routed
		{wire.Request{ID: "", Method: wire.MethodAuditCheckpoint}},                   // no ID
	} {
		s.startRequest(ctx, c.req)
		if a := nextAnswer(t, s); a.ID != c.req.ID || a.Status != wire.StatusBadRequest || !a.Final {
			t.Errorf("%s %q: %+v, want bad_request", c.req.ID, c.req.Method, a)
		}
	}
	s.startRequest(ctx, wire.Request{ID: "n1", Method: wire.MethodSetupReopen})
	if a := nextAnswer(t, s); !strings.Contains(a.Error, "no handler") {
		t.Errorf("unrouted method: %q", a.Error)
	}

	from := at
	s.startRequest(ctx, wire.Request{ID: "c1", Method: wire.MethodClip, Camera: "cam-1", From: from, To: from.Add(time.Minute)})
	s.startRequest(ctx, wire.Request{ID: "c2", Method: wire.MethodClip, Camera: "cam-2", From: from, To: from.Add(time.Minute)})
	if a := nextAnswer(t, s); a.ID != "c2" || a.Status != wire.StatusBusy || !strings.Contains(a.Error, "busy") {
		t.Fatalf("second clip with one slot: %+v, want busy", a)
	}
	s.startRequest(ctx, wire.Request{ID: "a1", Method: wire.MethodAuditCheckpoint})
	if a := nextAnswer(t, s); a.ID != "a1" || a.Status != wire.StatusOK {
		t.Fatalf("unbounded method while the slot is taken: %+v", a)
	}
	close(release)
	if a := nextAnswer(t, s); a.ID != "c1" || a.Status != wire.StatusOK || string(a.Data) != "clip of cam-1" {
		t.Fatalf("first clip: %+v", a)
	}
}

// An uplink made without a table answers the audit checkpoint itself; a
// table given to it is used as it is.
func TestRouterDefaults(t *testing.T) {
	u, s := routerSession(t, Config{})
	if got := u.Routes().Methods(); len(got) != 1 || got[0] != wire.MethodAuditCheckpoint {
		t.Fatalf("default routes %v", got)
	}
	if rt, _ := u.Routes().Lookup(wire.MethodAuditCheckpoint); rt.Policy != Unbounded {
		t.Errorf("audit checkpoint policy %v", rt.Policy)
	}
	s.startRequest(context.Background(), wire.Request{ID: "a1", Method: wire.MethodAuditCheckpoint})
	if a := nextAnswer(t, s); a.Status != wire.StatusNotAvailable {
		t.Errorf("audit checkpoint with none held: %+v", a)
	}
	r := NewRouter()
	if got := New(Config{Routes: r}, nil, nil, nil, nil).Routes(); got != r || len(got.Methods()) != 0 {
		t.Errorf("given table changed: %v", got.Methods())
	}
	defer func() {
		if recover() == nil {
			t.Error("a method routed twice did not panic")
		}
	}()
	r.Handle(wire.MethodClip, NotAvailable{})
	r.Handle(wire.MethodClip, NotAvailable{})
}

// Light requests (playback windows) have a pool of their own: they are
// answered while every Bounded slot is taken by exports, are refused as
// busy only when their own pool is full, and free their slot as they end.
func TestRouterLightPool(t *testing.T) {
	r := NewRouter()
	hold := make(chan struct{})
	r.HandleFunc(wire.MethodClip, func(_ context.Context, _ wire.Request, out *Responder) {
		<-hold
		_ = out.Send("video/mp4", []byte("clip"), true)
	})
	r.HandleWith(wire.MethodPlayback, Light, HandlerFunc(func(_ context.Context, req wire.Request, out *Responder) {
		if req.Camera == "held" {
			<-hold
		}
		_ = out.Send("video/mp4", []byte("window of "+req.Camera), true)
	}))
	_, s := routerSession(t, Config{Routes: r, MaxRequests: 1, MaxLightRequests: 2})
	released := false
	t.Cleanup(func() { // runs before routerSession's wait: a failed test does not hang
		if !released {
			close(hold)
		}
	})
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	window := func(id, cam string) wire.Request {
		return wire.Request{ID: id, Method: wire.MethodPlayback, Camera: cam, From: at, To: at.Add(10 * time.Second),
			Playback: &wire.PlaybackParams{Origin: at}}
	}
	s.startRequest(ctx, wire.Request{ID: "c1", Method: wire.MethodClip, Camera: "cam-1", From: at, To: at.Add(time.Minute)})
	s.startRequest(ctx, window("p1", "cam-1")) // the Bounded slot is taken; the light pool is not
	if a := nextAnswer(t, s); a.ID != "p1" || a.Status != wire.StatusOK || string(a.Data) != "window of cam-1" {
		t.Fatalf("window while an export holds the bounded slot: %+v", a)
	}
	s.startRequest(ctx, window("p2", "held"))
	s.startRequest(ctx, window("p3", "held"))
	s.startRequest(ctx, window("p4", "cam-2")) // both light slots held
	if a := nextAnswer(t, s); a.ID != "p4" || a.Status != wire.StatusBusy || !strings.Contains(a.Error, "busy") {
		t.Fatalf("third window with two light slots held: %+v, want busy", a)
	}
	close(hold)
	released = true
	got := map[string]bool{}
	for range 3 {
		a := nextAnswer(t, s)
		got[a.ID] = a.Status == wire.StatusOK
	}
	if !got["c1"] || !got["p2"] || !got["p3"] {
		t.Fatalf("answers after release: %v", got)
	}
	s.startRequest(ctx, window("p5", "cam-3")) // the slots were given back
	if a := nextAnswer(t, s); a.ID != "p5" || a.Status != wire.StatusOK {
		t.Fatalf("window after the pool emptied: %+v", a)
	}
}
