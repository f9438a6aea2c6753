package edge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// centralSide is the fake central's view of one edge connection: what
// the edge sent (every item acknowledged), and a way to send it frames.
type centralSide struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	alerts  chan wire.Alert
	updates chan wire.AlertUpdate
	mu      sync.Mutex
	events  []wire.Event
}

func newCentralSide(t *testing.T, conn *websocket.Conn) *centralSide {
	c := &centralSide{conn: conn, alerts: make(chan wire.Alert, 64), updates: make(chan wire.AlertUpdate, 256)}
	go func() {
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				return
			}
			env, err := wire.Unmarshal(frame)
			if err != nil {
				continue
			}
			var id string
			switch env.Type {
			case wire.TypeAlert:
				var a wire.Alert
				if wire.DecodeBody(env, &a) == nil {
					id = a.ID
					c.alerts <- a
				}
			case wire.TypeAlertUpdate:
				var u wire.AlertUpdate
				if wire.DecodeBody(env, &u) == nil {
					id = u.ID
					c.updates <- u
				}
			case wire.TypeEventBatch:
				var b wire.EventBatch
				if wire.DecodeBody(env, &b) == nil {
					id = b.ID
					c.mu.Lock()
					c.events = append(c.events, b.Events...)
					c.mu.Unlock()
				}
			}
			if id != "" {
				c.send(t, wire.TypeAck, wire.Ack{IDs: []string{id}})
			}
		}
	}()
	return c
}

func (c *centralSide) send(t *testing.T, typ string, body any) {
	b, err := wire.Marshal(typ, body)
	if err != nil {
		t.Error(err)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.WriteMessage(websocket.TextMessage, b)
}

// alert returns the next alert of kind, skipping others (the camera's
// motion).
func (c *centralSide) alert(t *testing.T, kind string) wire.Alert {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case a := <-c.alerts:
			if a.Kind == kind {
				return a
			}
		case <-deadline:
			t.Fatalf("central got no %s alert", kind)
		}
	}
}

// update returns the next update of alert id, skipping others.
func (c *centralSide) update(t *testing.T, id string, ok func(wire.AlertUpdate) bool) wire.AlertUpdate {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case u := <-c.updates:
			if u.AlertID == id && ok(u) {
				return u
			}
		case <-deadline:
			t.Fatalf("central got no such update of %s", id)
		}
	}
}

func (c *centralSide) eventKinds(source string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.events {
		if e.Source == source {
			out = append(out, e.Kind)
		}
	}
	return out
}

// TestGateAlertClosedAtCentralRaisesANewAlert: a forced gate raises an
// alert and a gate.forced event in central's event log; a second forcing
// folds into it (an update counting 2); once central says a guard closed
// it (alert_closed), the next forcing is a new wire.Alert with its own
// picture, not an update of the closed one.
func TestGateAlertClosedAtCentralRaisesANewAlert(t *testing.T) {
	url, conns := fakeCentral(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: smallSimClip(t)})
	off := config.Duration(-1)
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: url, Token: token},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", URL: cams.URL("gate")}},
		Gates: []conf.GateConfig{{ID: "north-gate", Name: "North gate", Cameras: []string{"gate-cam"},
			Arming: conf.ArmingConfig{Always: true}, GrantGrace: off, Debounce: off, UpdateEvery: off}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	var c *centralSide
	select {
	case conn := <-conns:
		defer conn.Close()
		c = newCentralSide(t, conn)
	case <-time.After(10 * time.Second):
		t.Fatal("the edge did not connect")
	}
	time.Sleep(2 * time.Second) // the camera's first pictures
	ctx := context.Background()
	force := func() {
		t.Helper()
		for _, k := range []gates.Kind{gates.Opened, gates.Closed} {
			if err := node.SubmitGateEvent(ctx, gates.Event{Gate: "north-gate", Device: "contact", Kind: k, Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	pictured := func(a wire.Alert) {
		t.Helper()
		if len(a.Snapshot) == 0 {
			c.update(t, a.ID, func(u wire.AlertUpdate) bool { return len(u.Snapshot) > 0 })
		}
	}

	force()
	first := c.alert(t, "gate.forced")
	if first.Source != "north-gate" {
		t.Fatalf("first alert from %s", first.Source)
	}
	pictured(first)
	force()
	c.update(t, first.ID, func(u wire.AlertUpdate) bool { return u.Count == 2 })

	c.send(t, wire.TypeAlertClosed, wire.AlertClosed{AlertID: first.ID, State: "resolved", By: "guard-wang", Time: time.Now().UTC()})
	time.Sleep(300 * time.Millisecond) // the engine forgets the fold on its own goroutine
	force()
	second := c.alert(t, "gate.forced")
	if second.ID == first.ID {
		t.Fatalf("after alert_closed: alert %s again, want a new one", second.ID)
	}
	select {
	case a := <-c.alerts:
		if a.Kind == "gate.forced" {
			t.Fatalf("a third gate.forced alert %s", a.ID)
		}
	default:
	}
	pictured(second)

	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := 0
		for _, k := range c.eventKinds("north-gate") {
			if k == "gate.forced" {
				n++
			}
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("central's event log has %v from the gate, want gate.forced three times", c.eventKinds("north-gate"))
		}
	}
}
