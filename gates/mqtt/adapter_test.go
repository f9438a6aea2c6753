package mqtt

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/engine"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// tap records what the adapter hands over and forwards it to the engine.
type tap struct {
	fwd    gates.Sink
	events chan gates.Event
}

func (tp *tap) sink(ctx context.Context, ev gates.Event) error {
	if err := tp.fwd(ctx, ev); err != nil {
		return err
	}
	tp.events <- ev
	return nil
}

// next waits for the next event that matches, skipping others.
func (tp *tap) next(t *testing.T, match func(gates.Event) bool, what string) gates.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-tp.events:
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s within 10s", what)
		}
	}
}

type alertLog struct {
	mu sync.Mutex
	as []gates.Alert
}

func (l *alertLog) add(a gates.Alert) { l.mu.Lock(); l.as = append(l.as, a); l.mu.Unlock() }

// waitFor polls the alerts seen so far (bounded) for one that matches.
func (l *alertLog) waitFor(t *testing.T, match func(gates.Alert) bool, what string) gates.Alert {
	t.Helper()
	for i := 0; i < 500; i++ {
		l.mu.Lock()
		for _, a := range l.as {
			if match(a) {
				l.mu.Unlock()
				return a
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s alert", what)
	return gates.Alert{}
}

// TestAdapterAgainstMosquitto: real broker, real clients. Retained
// availability at subscribe time, Zigbee2MQTT state messages, our own JSON
// events with de-duplication, a broker restart (the adapter reconnects and
// subscribes again; events flow again) and a device going offline, which
// the gate's machine turns into "device silent".
func TestAdapterAgainstMosquitto(t *testing.T) {
	broker := mosquitto.Start(t)
	pub := mosquitto.Publisher(t, broker.URL())
	// Zigbee2MQTT keeps availability retained: the adapter must see this
	// on subscribing, before anything is published live.
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-smoke/availability", `{"state":"offline"}`, true)

	alerts := &alertLog{}
	eng, err := engine.New(engine.Options{
		Gates:   []gates.Config{{ID: "north-gate", Name: "North gate", Arming: gates.Arming{Always: true}, GrantGrace: -1, Debounce: -1}},
		OnAlert: alerts.add, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{fwd: eng.Submit, events: make(chan gates.Event, 100)}
	reg := prometheus.NewRegistry()
	ad, err := New(Config{
		Broker: broker.URL(), ClientID: "vigil-test",
		Devices:    []Device{{Name: "north-door", Gate: "north-gate"}, {Name: "north-smoke", Gate: "north-gate"}},
		EventTopic: "vigil/gates/events", ReconnectMax: 500 * time.Millisecond,
	}, tp.sink, reg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); eng.Run(ctx) }()
	go func() { defer wg.Done(); ad.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	ev := tp.next(t, func(e gates.Event) bool { return e.Device == "north-smoke" }, "retained availability")
	if ev.Kind != gates.Offline || !ev.Initial || ev.Gate != "north-gate" || ev.Source != "mqtt/zigbee2mqtt/north-smoke/availability" {
		t.Fatalf("retained availability: %+v", ev)
	}
	alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseSilent && a.Device == "north-smoke" && !a.Cleared }, "silent (retained offline)")
	if !ad.Connected() {
		t.Fatal("not connected after receiving")
	}

	mosquitto.Publish(t, pub, "zigbee2mqtt/north-smoke", `{"battery":90,"battery_low":false,"smoke":true,"tamper":false}`, false)
	ev = tp.next(t, func(e gates.Event) bool { return e.Kind == gates.Alarm }, "smoke alarm")
	if ev.Sensor != gates.Smoke || ev.Initial {
		t.Fatalf("smoke: %+v", ev)
	}
	alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseSilent && a.Cleared }, "device back")
	alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseSmoke && a.Severity == "red" }, "smoke")

	// Our own JSON form; the second copy of one ID is dropped.
	own := `{"id":"evt-1","gate":"north-gate","device":"booth-1","type":"button"}`
	mosquitto.Publish(t, pub, "vigil/gates/events", own, false)
	mosquitto.Publish(t, pub, "vigil/gates/events", own, false)
	mosquitto.Publish(t, pub, "vigil/gates/events", `{"id":"evt-2","gate":"north-gate","device":"booth-1","type":"heartbeat"}`, false)
	if ev := tp.next(t, func(e gates.Event) bool { return e.Device == "booth-1" }, "own event"); ev.ID != "evt-1" || ev.Kind != gates.Button {
		t.Fatalf("own event: %+v", ev)
	}
	if ev := tp.next(t, func(e gates.Event) bool { return e.Device == "booth-1" }, "own event 2"); ev.ID != "evt-2" {
		t.Fatalf("duplicate delivered: %+v", ev)
	}
	mosquitto.Publish(t, pub, "vigil/gates/events", `{"id":"x","gate":"north-gate","type":"nonsense"}`, false)

	// Broker restart: sessions and subscriptions are gone; the adapter
	// must reconnect and subscribe again by itself.
	restarted := time.Now()
	broker.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tok := pub.Publish("zigbee2mqtt/north-door/availability", 1, false, "online")
		tok.WaitTimeout(time.Second)
		select {
		case ev := <-tp.events:
			if ev.Device == "north-door" && ev.Kind == gates.Heartbeat {
				t.Logf("events flow again %v after the broker restart", time.Since(restarted).Round(time.Millisecond))
				goto flowing
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no events 20s after the broker restart")
		}
	}
flowing:
	if n := testutil.ToFloat64(ad.metrics.connects); n < 2 {
		t.Fatalf("connects = %v, want a reconnect", n)
	}
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-door", `{"battery":100,"contact":false,"linkquality":87}`, false)
	if ev := tp.next(t, func(e gates.Event) bool { return e.Device == "north-door" && e.Kind != gates.Heartbeat }, "door after restart"); ev.Kind != gates.Opened {
		t.Fatalf("door: %+v", ev)
	}
	alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseForced }, "forced")

	// The door contact drops off the mesh (legacy plain payload).
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-door/availability", "offline", false)
	alerts.waitFor(t, func(a gates.Alert) bool {
		return a.Key == gates.CauseSilent && a.Device == "north-door" && a.Severity == "yellow"
	}, "door contact silent")

	if n := testutil.ToFloat64(ad.metrics.messages.WithLabelValues("malformed")); n != 1 {
		t.Fatalf("malformed = %v", n)
	}
	if n := testutil.ToFloat64(ad.metrics.messages.WithLabelValues("duplicate")); n != 1 {
		t.Fatalf("duplicate = %v", n)
	}
}

// TestAdapterWaitsForABrokerThatIsNotUpYet: an edge box often boots before
// the broker; Run keeps trying and connects once it appears.
func TestAdapterWaitsForABrokerThatIsNotUpYet(t *testing.T) {
	broker := mosquitto.Start(t)
	broker.Stop()
	got := make(chan gates.Event, 10)
	ad, err := New(Config{Broker: broker.URL(), Devices: []Device{{Name: "door", Gate: "g"}}, ReconnectMax: 300 * time.Millisecond},
		func(_ context.Context, ev gates.Event) error { got <- ev; return nil }, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ad.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond)
	if ad.Connected() {
		t.Fatal("connected to a stopped broker")
	}
	broker.Restart()
	pub := mosquitto.Publisher(t, broker.URL())
	mosquitto.Publish(t, pub, "zigbee2mqtt/door/availability", `{"state":"offline"}`, true) // retained: seen whenever the subscription lands
	select {
	case ev := <-got:
		if ev.Kind != gates.Offline {
			t.Fatalf("got %+v", ev)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("adapter never connected")
	}
}

func TestConfigRefused(t *testing.T) {
	sink := func(context.Context, gates.Event) error { return nil }
	for _, c := range []Config{
		{},
		{Broker: "tcp://127.0.0.1:1"},
		{Broker: "tcp://127.0.0.1:1", Devices: []Device{{Name: "a/#", Gate: "g"}}},
		{Broker: "tcp://127.0.0.1:1", Devices: []Device{{Name: "a", Gate: "G G"}}},
		{Broker: "tcp://127.0.0.1:1", Devices: []Device{{Name: "a", Gate: "g"}, {Name: "a", Gate: "g"}}},
		{Broker: "tcp://127.0.0.1:1", EventTopic: "vigil/+/events"},
	} {
		if _, err := New(c, sink, nil, quiet); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	_, err := New(Config{Broker: "tcp://127.0.0.1:1", Devices: []Device{{Name: "booth", Gate: "g", Actions: map[string]string{"single": "panic"}}}}, sink, nil, quiet)
	if err == nil || err.Error() != `mqtt: device "booth": actions.single: unknown kind "panic" (want sos, arm, disarm or ignore)` {
		t.Errorf("bad action kind: %v", err)
	}
}

// TestMetricsExistFromStart: every result of the message counter is
// exported, at 0, before the first message.
func TestMetricsExistFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Broker: "tcp://127.0.0.1:1", Devices: []Device{{Name: "door", Gate: "g"}}},
		func(context.Context, gates.Event) error { return nil }, reg, quiet); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP vigil_gate_mqtt_messages_total Gate MQTT messages (events for multi-event messages) by result: ok, duplicate, ignored, malformed, refused.
# TYPE vigil_gate_mqtt_messages_total counter
vigil_gate_mqtt_messages_total{result="duplicate"} 0
vigil_gate_mqtt_messages_total{result="ignored"} 0
vigil_gate_mqtt_messages_total{result="malformed"} 0
vigil_gate_mqtt_messages_total{result="ok"} 0
vigil_gate_mqtt_messages_total{result="refused"} 0
# HELP vigil_gate_mqtt_connects_total Successful connections to the MQTT broker (the first and every reconnect).
# TYPE vigil_gate_mqtt_connects_total counter
vigil_gate_mqtt_connects_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_gate_mqtt_messages_total", "vigil_gate_mqtt_connects_total"); err != nil {
		t.Fatal(err)
	}
}

// TestZigbeeAsItReallyIsAgainstMosquitto: real Zigbee2MQTT payloads through
// a real broker into the gate's machine. A keypad arms and disarms the
// gate (each a green notice naming the keypad, never the code); a dimmer
// on the same mesh says nothing; an SOS button and a mapped emergency
// button are SOS; a motion sensor republishing occupancy: true with every
// illuminance report is one presence per rising edge; retained messages
// replay no press and no presence.
func TestZigbeeAsItReallyIsAgainstMosquitto(t *testing.T) {
	broker := mosquitto.Start(t)
	pub := mosquitto.Publisher(t, broker.URL())
	// Retained by the broker from before the edge started (Zigbee2MQTT
	// with retain: true for these devices).
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-sos", `{"action":"emergency","linkquality":65}`, true)
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-pir-2", `{"illuminance":5,"illuminance_lux":5,"linkquality":90,"occupancy":true}`, true)

	alerts := &alertLog{}
	// Never armed by schedule: only the keypad arms it.
	eng, err := engine.New(engine.Options{
		Gates:   []gates.Config{{ID: "north-gate", Name: "North gate", GrantGrace: -1, Debounce: -1}},
		OnAlert: alerts.add, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{fwd: eng.Submit, events: make(chan gates.Event, 100)}
	ad, err := New(Config{
		Broker: broker.URL(), ClientID: "vigil-test",
		Devices: []Device{
			{Name: "north-keypad", Gate: "north-gate"},
			{Name: "north-dimmer", Gate: "north-gate"},
			{Name: "north-sos", Gate: "north-gate"},
			{Name: "north-button", Gate: "north-gate", Actions: map[string]string{"single": "sos", "double": "ignore"}},
			{Name: "north-pir", Gate: "north-gate"},
			{Name: "north-pir-2", Gate: "north-gate"},
		},
		ReconnectMax: 500 * time.Millisecond,
	}, tp.sink, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); eng.Run(ctx) }()
	go func() { defer wg.Done(); ad.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	// until collects a device's events up to its availability sentinel:
	// the broker keeps one publisher's messages in order.
	until := func(device string) []gates.Event {
		t.Helper()
		mosquitto.Publish(t, pub, "zigbee2mqtt/"+device+"/availability", `{"state":"online"}`, false)
		var evs []gates.Event
		for {
			ev := tp.next(t, func(e gates.Event) bool { return e.Device == device }, device+" events")
			if strings.HasSuffix(ev.Source, "/availability") {
				return evs
			}
			evs = append(evs, ev)
		}
	}
	kinds := func(evs []gates.Event) string {
		var ks []string
		for _, ev := range evs {
			ks = append(ks, string(ev.Kind))
		}
		return strings.Join(ks, " ")
	}
	armed := func() bool {
		t.Helper()
		st, err := eng.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st[0].Armed
	}

	// The retained SOS press and occupancy are state, not news: each is a
	// heartbeat (they come on subscribing, in either order).
	for range 2 {
		ev := tp.next(t, func(gates.Event) bool { return true }, "retained messages")
		if ev.Kind != gates.Heartbeat || !ev.Initial || (ev.Device != "north-sos" && ev.Device != "north-pir-2") {
			t.Fatalf("retained message: %+v", ev)
		}
	}

	// Frient KEPZB-110: arm with a code, then disarm.
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-keypad", `{"action":"arm_all_zones","action_code":"1234","action_transaction":99,"action_zone":23,"battery":100,"battery_low":false,"linkquality":120,"tamper":false,"voltage":3100}`, false)
	ev := tp.next(t, func(e gates.Event) bool { return e.Kind == gates.Arm }, "arm")
	if ev.Mode != "arm_all_zones" || ev.Code != "1234" || ev.Device != "north-keypad" || ev.Gate != "north-gate" {
		t.Fatalf("arm: %+v", ev)
	}
	a := alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseArming && strings.Contains(a.Summary, " armed") }, "armed notice")
	if a.Severity != "green" || a.Device != "north-keypad" || strings.Contains(a.Summary, "1234") ||
		a.Summary != "North gate armed from keypad north-keypad (arm_all_zones, with code); holds until the next arm or disarm" {
		t.Fatalf("armed notice: %+v", a)
	}
	if !armed() {
		t.Fatal("not armed after the keypad armed it")
	}
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-keypad", `{"action":"disarm","action_code":"1234","action_transaction":100,"action_zone":23,"battery":100,"battery_low":false,"linkquality":117,"tamper":false,"voltage":3100}`, false)
	tp.next(t, func(e gates.Event) bool { return e.Kind == gates.Disarm }, "disarm")
	alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseArming && strings.Contains(a.Summary, "disarmed") }, "disarmed notice")
	if armed() {
		t.Fatal("still armed after the keypad disarmed it")
	}
	// Immax 07505L (Tuya): arm away, no code.
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-keypad", `{"action":"arm_away","battery":100,"linkquality":98,"tamper":false}`, false)
	alerts.waitFor(t, func(a gates.Alert) bool {
		return a.Key == gates.CauseArming && strings.Contains(a.Summary, "(arm_away, without code)")
	}, "arm away notice")
	if !armed() {
		t.Fatal("not armed after arm_away")
	}

	// IKEA E1743 dimming, Heiman HS1EB's ignored double press: alive, nothing more.
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-dimmer", `{"action":"brightness_move_up","linkquality":57}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-dimmer", `{"action":"on","linkquality":57}`, false)
	if evs := until("north-dimmer"); kinds(evs) != "heartbeat heartbeat" {
		t.Fatalf("dimmer: %s", kinds(evs))
	}
	// Tuya TS0215A_sos, and Heiman HS1EB with single: sos.
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-sos", `{"action":"emergency","battery":100,"linkquality":65,"voltage":3000}`, false)
	if evs := until("north-sos"); kinds(evs) != "button battery_ok" {
		t.Fatalf("SOS button: %s", kinds(evs))
	}
	alerts.waitFor(t, func(a gates.Alert) bool {
		return a.Key == gates.CauseSOS && a.Device == "north-sos" && a.Severity == "red"
	}, "SOS")
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-button", `{"action":"double","battery":100,"linkquality":83}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-button", `{"action":"single","battery":100,"linkquality":83}`, false)
	if evs := until("north-button"); kinds(evs) != "battery_ok button battery_ok" {
		t.Fatalf("mapped emergency button: %s", kinds(evs))
	}
	alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseSOS && a.Device == "north-button" }, "SOS (mapped)")

	// Aqara RTCGQ11LM: occupancy repeated with each illuminance report.
	for _, p := range []string{
		`{"battery":100,"illuminance":23,"illuminance_lux":23,"linkquality":110,"occupancy":true,"voltage":3015}`,
		`{"battery":100,"illuminance":31,"illuminance_lux":31,"linkquality":110,"occupancy":true,"voltage":3015}`,
		`{"battery":100,"illuminance":40,"illuminance_lux":40,"linkquality":107,"occupancy":true,"voltage":3015}`,
	} {
		mosquitto.Publish(t, pub, "zigbee2mqtt/north-pir", p, false)
	}
	if evs := until("north-pir"); kinds(evs) != "presence battery_ok battery_ok battery_ok" {
		t.Fatalf("occupancy repeated: %s", kinds(evs))
	}
	alerts.waitFor(t, func(a gates.Alert) bool { return a.Key == gates.CauseIntrusion && a.Device == "north-pir" }, "intrusion")
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-pir", `{"battery":100,"illuminance":40,"illuminance_lux":40,"linkquality":107,"occupancy":false,"voltage":3015}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-pir", `{"battery":100,"illuminance":12,"illuminance_lux":12,"linkquality":107,"occupancy":true,"voltage":3015}`, false)
	if evs := until("north-pir"); kinds(evs) != "battery_ok presence battery_ok" {
		t.Fatalf("occupancy false then true: %s", kinds(evs))
	}
	// The retained true was the last level: a live true is a repeat.
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-pir-2", `{"illuminance":6,"illuminance_lux":6,"linkquality":90,"occupancy":true}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-pir-2", `{"illuminance":6,"illuminance_lux":6,"linkquality":90,"occupancy":false}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/north-pir-2", `{"illuminance":7,"illuminance_lux":7,"linkquality":90,"occupancy":true}`, false)
	if evs := until("north-pir-2"); kinds(evs) != "heartbeat heartbeat presence" {
		t.Fatalf("after a retained occupancy: %s", kinds(evs))
	}

	alerts.mu.Lock()
	defer alerts.mu.Unlock()
	for _, a := range alerts.as {
		if a.Device == "north-dimmer" || strings.Contains(a.Summary, "1234") {
			t.Errorf("unexpected alert %+v", a)
		}
	}
}
