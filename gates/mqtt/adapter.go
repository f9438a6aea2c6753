// Package mqtt subscribes to the MQTT broker a site runs (Mosquitto, with
// Zigbee2MQTT bridging door contacts, smoke / gas / water sensors, motion
// sensors, SOS buttons and alarm keypads) and turns its messages into gate
// events. Zigbee2MQTT republishes a device's whole state with every
// report, so the adapter keeps each device's occupancy and SOS flags
// (Levels) and counts them on their rising edge only. It speaks MQTT
// 3.1.1 through paho.mqtt.golang, subscribes with QoS 1, reconnects by
// itself and subscribes again after every connect, so a broker restart
// costs only the seconds it is down.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/internal/replay"
	"github.com/vigil-perimeter/vigil/internal/mqttsub"
)

// Device is one Zigbee2MQTT device and the gate it belongs to.
type Device struct {
	Name string // friendly_name in Zigbee2MQTT
	Gate string
	// Actions maps this device's "action" values to what they mean for
	// its gate (sos, arm, disarm or ignore), over the built-in ones
	// (ParseZigbee): e.g. {single: sos} for an emergency button that
	// reports its press as "single", {emergency: ignore} to silence one.
	Actions map[string]string
}

// zigbeeDevice is a configured device with what the adapter keeps of it.
type zigbeeDevice struct {
	Device
	opts   ZigbeeOptions
	levels Levels // guarded by Adapter.levelsMu
}

// Config configures an Adapter; zero fields take defaults.
type Config struct {
	Broker   string // tcp://host:1883, ssl://host:8883 or ws://host:9001
	ClientID string // stable and unique on the broker (default "vigil-gates")
	Username string
	Password string
	// BaseTopic is Zigbee2MQTT's base_topic (default "zigbee2mqtt").
	BaseTopic string
	Devices   []Device
	// EventTopic, if set, carries events in Vigil's own JSON form (the
	// webhook body, without signature: the broker's ACL guards it).
	EventTopic string
	// EventGates lists the gates EventTopic may report; empty = any gate.
	EventGates []string
	// BatteryLowPercent is where a "battery" percentage counts as low (default 15).
	BatteryLowPercent int
	// ReconnectMax caps the wait between reconnect attempts (default 30s).
	ReconnectMax time.Duration
	Now          func() time.Time
}

// Adapter is a running subscription; see Run.
type Adapter struct {
	cfg     Config
	sink    gates.Sink
	log     *slog.Logger
	metrics *metrics
	state   map[string]*zigbeeDevice // zigbee2mqtt/<name> → device
	avail   map[string]*zigbeeDevice // zigbee2mqtt/<name>/availability → device
	evGates map[string]bool
	seen    *replay.Set
	client  atomic.Pointer[paho.Client]

	// levelsMu guards every device's levels. paho delivers messages one
	// at a time (SetOrderMatters), so it is never contended; it keeps the
	// adapter correct should that change.
	levelsMu sync.Mutex

	logMu    sync.Mutex
	lastLog  map[string]time.Time
	unmapped map[string]bool // device + action values already logged as ignored
}

// New checks cfg; nothing connects until Run.
func New(cfg Config, sink gates.Sink, reg prometheus.Registerer, log *slog.Logger) (*Adapter, error) {
	if cfg.Broker == "" {
		return nil, errors.New("mqtt: broker URL is empty")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "vigil-gates"
	}
	if cfg.BaseTopic == "" {
		cfg.BaseTopic = "zigbee2mqtt"
	}
	if cfg.BatteryLowPercent <= 0 {
		cfg.BatteryLowPercent = 15
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Adapter{cfg: cfg, sink: sink, log: log.With("component", "gates/mqtt", "broker", cfg.Broker),
		state: map[string]*zigbeeDevice{}, avail: map[string]*zigbeeDevice{}, evGates: map[string]bool{},
		seen: replay.New(4096, 10*time.Minute), lastLog: map[string]time.Time{}, unmapped: map[string]bool{}}
	for _, d := range cfg.Devices {
		if d.Name == "" || strings.ContainsAny(d.Name, "+#") || len(d.Name) > gates.MaxFieldLen {
			return nil, fmt.Errorf("mqtt: device name %q: must be 1-%d characters without + or #", d.Name, gates.MaxFieldLen)
		}
		if !gates.IDPattern.MatchString(d.Gate) {
			return nil, fmt.Errorf("mqtt: device %q: gate %q is not a gate ID", d.Name, d.Gate)
		}
		actions, err := ParseActions(d.Actions)
		if err != nil {
			return nil, fmt.Errorf("mqtt: device %q: %w", d.Name, err)
		}
		topic := cfg.BaseTopic + "/" + d.Name
		if _, dup := a.state[topic]; dup {
			return nil, fmt.Errorf("mqtt: device %q is listed twice", d.Name)
		}
		zd := &zigbeeDevice{Device: d, opts: ZigbeeOptions{BatteryLow: cfg.BatteryLowPercent, Actions: actions}}
		a.state[topic] = zd
		a.avail[topic+"/availability"] = zd
	}
	if strings.ContainsAny(cfg.EventTopic, "+#") {
		return nil, fmt.Errorf("mqtt: event topic %q must not contain wildcards", cfg.EventTopic)
	}
	for _, g := range cfg.EventGates {
		a.evGates[g] = true
	}
	if len(a.state) == 0 && cfg.EventTopic == "" {
		return nil, errors.New("mqtt: no devices and no event topic: nothing to subscribe to")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	return a, nil
}

// Connected reports whether the adapter is connected to the broker now.
func (a *Adapter) Connected() bool {
	c := a.client.Load()
	return c != nil && (*c).IsConnectionOpen()
}

// Run connects and keeps the subscription alive until ctx ends, then
// disconnects and returns nil. Broker outages are retried forever with
// backoff up to ReconnectMax; they are logged and visible in
// vigil_gate_mqtt_connected, and devices that stay unheard become "device
// silent" alerts in their gate's state machine.
func (a *Adapter) Run(ctx context.Context) error {
	filters := map[string]byte{}
	for t := range a.state {
		filters[t] = 1
	}
	for t := range a.avail {
		filters[t] = 1
	}
	if a.cfg.EventTopic != "" {
		filters[a.cfg.EventTopic] = 1
	}
	handle := func(_ paho.Client, msg paho.Message) { a.handle(ctx, msg) }

	opts := paho.NewClientOptions().
		AddBroker(a.cfg.Broker).
		SetClientID(a.cfg.ClientID).
		SetUsername(a.cfg.Username).
		SetPassword(a.cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1
		// A persistent session keeps QoS 1 messages at the broker while we
		// reconnect; we still subscribe on every connect because a broker
		// restarted without persistence has forgotten the session.
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(min(a.cfg.ReconnectMax, 5*time.Second)).
		SetMaxReconnectInterval(a.cfg.ReconnectMax).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetOrderMatters(true). // a door's open and close must not swap
		// The PUBACK goes out from handle once the events are durable,
		// not when paho has the message: a crash in between would lose a
		// QoS 1 event the broker thinks delivered.
		SetAutoAckDisabled(true).
		SetOnConnectHandler(func(c paho.Client) {
			a.metrics.connected.Set(1)
			a.metrics.connects.Inc()
			mqttsub.Subscribe(ctx, c, filters, handle, a.log)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			a.metrics.connected.Set(0)
			a.log.Warn("MQTT connection lost; reconnecting", "err", err)
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			a.log.Debug("MQTT reconnecting")
		})
	client := paho.NewClient(opts)
	a.client.Store(&client)
	client.Connect() // with ConnectRetry the token completes only once connected; we do not wait for it
	<-ctx.Done()
	client.Disconnect(250)
	a.metrics.connected.Set(0)
	return nil
}

// handle turns one message into events. It runs on paho's delivery
// goroutine in order. It acknowledges the message (QoS 1 PUBACK) once every
// event is taken by the sink (durable), or refused for good (malformed,
// ignored, duplicate, not allowed); a message whose event the sink could
// not take for now (shutting down, journal failure) is left unacknowledged
// so the broker delivers it again.
func (a *Adapter) handle(ctx context.Context, msg paho.Message) {
	if a.take(ctx, msg) {
		msg.Ack()
	}
}

// take handles msg and reports whether it may be acknowledged.
func (a *Adapter) take(ctx context.Context, msg paho.Message) bool {
	topic, payload := msg.Topic(), msg.Payload()
	now := a.cfg.Now().UTC()
	var evs []gates.Event
	var ok bool
	switch {
	case topic == a.cfg.EventTopic && a.cfg.EventTopic != "":
		evs, ok = a.fromEventTopic(msg, now)
	case len(payload) == 0:
		// Zigbee2MQTT clears a removed device's retained topics with empty payloads.
		a.count("ignored", topic, "")
		return true
	default:
		evs, ok = a.fromDevice(msg, now)
	}
	if !ok {
		return true
	}
	return a.deliver(ctx, topic, evs)
}

// fromEventTopic parses a message on the events topic, dropping events
// for gates the topic may not report and those already seen. ok false:
// the message was counted and is done with (retained or malformed).
func (a *Adapter) fromEventTopic(msg paho.Message, now time.Time) (evs []gates.Event, ok bool) {
	topic := msg.Topic()
	if msg.Retained() { // events happen once; a retained one would replay on every connect
		a.count("ignored", topic, "retained message on the events topic")
		return nil, false
	}
	parsed, err := gates.ParsePayload(msg.Payload(), now)
	if err != nil {
		a.count("malformed", topic, err.Error())
		return nil, false
	}
	for _, ev := range parsed {
		if len(a.evGates) > 0 && !a.evGates[ev.Gate] {
			a.count("refused", topic, fmt.Sprintf("gate %q may not be reported on this topic", ev.Gate))
			continue
		}
		if !a.seen.Reserve(ev.Gate+"\x00"+ev.ID, now) {
			a.count("duplicate", topic, "")
			continue
		}
		if ev.Device == "" {
			ev.Device = "mqtt"
		}
		evs = append(evs, ev)
	}
	return evs, true
}

// fromDevice turns a device's availability or state message into events
// at now. ok false: the message was counted and is done with (malformed,
// or no device of ours).
func (a *Adapter) fromDevice(msg paho.Message, now time.Time) (evs []gates.Event, ok bool) {
	topic, payload := msg.Topic(), msg.Payload()
	if d, found := a.avail[topic]; found {
		online, err := ParseAvailability(payload)
		if err != nil {
			a.count("malformed", topic, err.Error())
			return nil, false
		}
		kind := gates.Offline
		if online {
			kind = gates.Heartbeat
		}
		evs = []gates.Event{{Gate: d.Gate, Device: d.Name, Kind: kind}}
	} else if d, found := a.state[topic]; found {
		a.levelsMu.Lock()
		parsed, unmapped, err := ParseZigbee(payload, d.opts, &d.levels)
		a.levelsMu.Unlock()
		if err != nil {
			a.count("malformed", topic, err.Error())
			return nil, false
		}
		if unmapped != "" {
			a.noteUnmapped(d.Name, unmapped)
		}
		for _, ev := range parsed {
			// A retained message replays the last state to every new
			// subscriber, maybe from long ago: its levels count (and
			// were recorded), a press, a presence or an arming in it
			// does not.
			if msg.Retained() && momentary(ev.Kind) {
				continue
			}
			ev.Gate, ev.Device = d.Gate, d.Name
			evs = append(evs, ev)
		}
		if len(evs) == 0 {
			evs = []gates.Event{{Gate: d.Gate, Device: d.Name, Kind: gates.Heartbeat}}
		}
	} else {
		a.count("ignored", topic, "")
		return nil, false
	}
	for i := range evs {
		evs[i].Time = now
		// A retained message is the last state the broker kept, maybe
		// from before we started: a state report, not a change.
		evs[i].Initial = msg.Retained()
	}
	return evs, true
}

// deliver hands evs from topic to the sink and reports whether the
// message may be acknowledged: not when an event could not be taken for
// now, so that the broker delivers it again.
func (a *Adapter) deliver(ctx context.Context, topic string, evs []gates.Event) bool {
	ack := true
	for _, ev := range evs {
		ev.Source = "mqtt/" + topic
		err := a.sink(ctx, ev)
		switch {
		case err == nil:
			a.count("ok", topic, "")
		case errors.Is(err, gates.ErrDuplicate):
			a.count("duplicate", topic, "")
		default:
			if ev.ID != "" {
				a.seen.Release(ev.Gate + "\x00" + ev.ID)
			}
			a.count("refused", topic, err.Error())
			if ctx.Err() != nil || errors.Is(err, gates.ErrNotTaken) {
				ack = false // for now: the broker redelivers it
			}
		}
	}
	return ack
}

// noteUnmapped tells the installer, once per device and value, about an
// action that means nothing to the gate: a new emergency button that
// reports its press as "single" would otherwise be silently ignored.
func (a *Adapter) noteUnmapped(device, action string) {
	key := device + "\x00" + action
	a.logMu.Lock()
	seen := a.unmapped[key]
	if !seen {
		if len(a.unmapped) > 1000 { // a device inventing values must not grow memory
			clear(a.unmapped)
		}
		a.unmapped[key] = true
	}
	a.logMu.Unlock()
	if !seen {
		a.log.Info("Zigbee2MQTT action ignored: not an SOS, arm or disarm action; map it under the device's actions: if it should count (e.g. single: sos)",
			"device", device, "action", truncate(action))
	}
}

// count records one message result; problems are logged at most once per
// topic and result every 10 s.
func (a *Adapter) count(result, topic, why string) {
	a.metrics.messages.WithLabelValues(result).Inc()
	if why == "" {
		return
	}
	key := result + "\x00" + topic
	now := time.Now()
	a.logMu.Lock()
	quiet := now.Sub(a.lastLog[key]) < 10*time.Second
	if !quiet {
		if len(a.lastLog) > 1000 {
			clear(a.lastLog)
		}
		a.lastLog[key] = now
	}
	a.logMu.Unlock()
	if !quiet {
		a.log.Warn("MQTT message not used", "result", result, "topic", topic, "reason", why)
	}
}
