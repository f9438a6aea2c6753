// Package mqttsrc reads safety sensors from an MQTT broker (Mosquitto):
// Zigbee2MQTT devices' numeric and binary exposes (temperature, humidity,
// current, voltage, power, energy, gas_density, water_leak, …: topic
// base_topic/<device>, one JSON key) and any other device through a
// topic and a JSON path ("a.b[0].c"; an empty path reads a bare number).
//
// It speaks MQTT 3.1.1 through paho.mqtt.golang, subscribes once per
// topic however many sensors read it, reconnects by itself and
// subscribes again after every connect. Readings carry the time a
// message arrived; a retained message (the last state the broker kept)
// is a reading too. A payload that yields no reading is counted by
// reason and logged at most once a minute per topic.
package mqttsrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/mqttsub"
	"github.com/vigil-perimeter/vigil/sensors"
)

// logEvery is how often one topic's bad payloads are logged at most.
const logEvery = time.Minute

// Options are what a Source needs from its owner; zero fields take defaults.
type Options struct {
	Registerer prometheus.Registerer
	Log        *slog.Logger
	// ReconnectMax caps the wait between reconnect attempts (default 30 s).
	ReconnectMax time.Duration
}

// binding is one sensor reading one topic.
type binding struct {
	sensor string
	field  string       // Zigbee2MQTT: the state's key
	path   sensors.Path // otherwise: the JSON path (empty: a bare value)
	zigbee bool
}

// Source is a subscription to the sensors' topics; it is a sensors.Source.
type Source struct {
	cfg          sensors.MQTTInputConfig
	password     string
	reconnectMax time.Duration
	topics       map[string][]binding
	log          *slog.Logger
	metrics      *metrics

	// emitMu serialises emit and keeps it from being called after Run returns.
	emitMu  sync.Mutex
	emit    func(sensors.Reading)
	stopped bool

	logMu   sync.Mutex
	lastLog map[string]time.Time // topic → last bad payload logged
}

var _ sensors.Source = (*Source)(nil)

// New checks the broker settings and the sensors' references (sensor ID
// → where its value is) and reads the password file; nothing connects
// until Run.
func New(cfg sensors.MQTTInputConfig, refs map[string]sensors.MQTTRef, opts Options) (*Source, error) {
	if cfg.Broker == "" {
		return nil, errors.New("mqttsrc: broker URL is empty")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "vigil-sensors"
	}
	if cfg.BaseTopic == "" {
		cfg.BaseTopic = "zigbee2mqtt"
	}
	s := &Source{cfg: cfg, reconnectMax: opts.ReconnectMax, topics: map[string][]binding{}, log: opts.Log, lastLog: map[string]time.Time{}}
	if s.reconnectMax <= 0 {
		s.reconnectMax = 30 * time.Second
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "sensors/mqtt", "broker", cfg.Broker)
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("mqttsrc: password_file: %w", err)
		}
		s.password = strings.TrimSpace(string(b))
	}
	for id, ref := range refs {
		topic, b, err := bind(cfg.BaseTopic, id, ref)
		if err != nil {
			return nil, fmt.Errorf("mqttsrc: sensor %q: %w", id, err)
		}
		s.topics[topic] = append(s.topics[topic], b)
	}
	if len(s.topics) == 0 {
		return nil, errors.New("mqttsrc: no sensors: nothing to subscribe to")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// bind checks one reference and returns its topic.
func bind(base, sensor string, ref sensors.MQTTRef) (string, binding, error) {
	b := binding{sensor: sensor}
	switch {
	case ref.Device != "" && ref.Topic != "":
		return "", b, errors.New("set either device (Zigbee2MQTT) or topic, not both")
	case ref.Device != "":
		if strings.ContainsAny(ref.Device, "+#") {
			return "", b, fmt.Errorf("device %q: must not contain + or #", ref.Device)
		}
		if ref.Field == "" {
			return "", b, fmt.Errorf("device %q: field is empty (e.g. temperature, current, gas_density)", ref.Device)
		}
		if ref.Path != "" {
			return "", b, errors.New("path is for a topic; a Zigbee2MQTT device takes a field")
		}
		b.zigbee, b.field = true, ref.Field
		return base + "/" + ref.Device, b, nil
	case ref.Topic != "":
		if strings.ContainsAny(ref.Topic, "+#") {
			return "", b, fmt.Errorf("topic %q: must not contain wildcards: one topic is one sensor's", ref.Topic)
		}
		if ref.Field != "" {
			return "", b, errors.New("field is for a Zigbee2MQTT device; a topic takes a path")
		}
		p, err := sensors.ParsePath(ref.Path)
		if err != nil {
			return "", b, err
		}
		b.path = p
		return ref.Topic, b, nil
	}
	return "", b, errors.New("set device and field (Zigbee2MQTT) or topic and path")
}

// Topics is how many topics the source subscribes to.
func (s *Source) Topics() int { return len(s.topics) }

// Run connects and keeps the subscriptions until ctx ends, then
// disconnects and returns ctx's error. Broker outages are retried
// forever with backoff up to ReconnectMax and logged; sensors that stay
// unheard become "silent" in the evaluator. emit is called one reading at
// a time from paho's delivery goroutine, never after Run returns; it must
// not block beyond ctx.
func (s *Source) Run(ctx context.Context, emit func(sensors.Reading)) error {
	s.emitMu.Lock()
	s.emit, s.stopped = emit, false
	s.emitMu.Unlock()
	filters := map[string]byte{}
	for t := range s.topics {
		// QoS 0: a reading is only worth its freshness; one lost is
		// replaced by the next, and the evaluator's stale rule sees a gap.
		filters[t] = 0
	}
	handle := func(_ paho.Client, msg paho.Message) { s.handle(msg) }
	opts := paho.NewClientOptions().
		AddBroker(s.cfg.Broker).
		SetClientID(s.cfg.ClientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.password).
		SetProtocolVersion(4). // MQTT 3.1.1
		// A clean session: readings queued while we were away would
		// arrive with the wrong time; the retained state is what counts.
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(min(s.reconnectMax, 5*time.Second)).
		SetMaxReconnectInterval(s.reconnectMax).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetOrderMatters(true). // one emit at a time, in order
		SetOnConnectHandler(func(c paho.Client) {
			s.metrics.connected.Set(1)
			s.metrics.connects.Inc()
			mqttsub.Subscribe(ctx, c, filters, handle, s.log)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.metrics.connected.Set(0)
			s.log.Warn("MQTT connection lost; reconnecting", "err", err)
		})
	client := paho.NewClient(opts)
	client.Connect() // with ConnectRetry the token completes only once connected; we do not wait for it
	<-ctx.Done()
	client.Disconnect(250)
	s.emitMu.Lock()
	s.stopped = true
	s.emitMu.Unlock()
	s.metrics.connected.Set(0)
	return ctx.Err()
}

// handle turns one message into readings, one per sensor of its topic.
func (s *Source) handle(msg paho.Message) {
	now := time.Now().UTC()
	topic, payload := msg.Topic(), msg.Payload()
	s.metrics.messages.Inc()
	bindings := s.topics[topic]
	if len(bindings) == 0 {
		return
	}
	var doc any
	var err error
	switch {
	case len(payload) == 0:
		s.metrics.bad[reasonEmpty].Inc() // a retained state cleared: nothing to say
		return
	case len(payload) > maxPayload:
		err = bad(reasonTooLarge, "%d bytes", len(payload))
	default:
		doc, err = decode(payload)
	}
	if err != nil {
		s.note(topic, err)
		return
	}
	var first error
	for _, b := range bindings {
		var v float64
		if b.zigbee {
			v, err = zigbeeValue(doc, b.field)
		} else {
			v, err = pathValue(doc, b.path)
		}
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		s.emitMu.Lock()
		if !s.stopped && s.emit != nil {
			s.emit(sensors.Reading{Sensor: b.sensor, Time: now, Value: v})
		}
		s.emitMu.Unlock()
	}
	if first != nil {
		s.note(topic, first)
	}
}

// note counts a bad payload and logs it, at most once a minute per topic.
func (s *Source) note(topic string, err error) {
	reason := reasonNotJSON
	var bp *badPayload
	if errors.As(err, &bp) {
		reason = bp.reason
	}
	s.metrics.bad[reason].Inc()
	now := time.Now()
	s.logMu.Lock()
	quiet := now.Sub(s.lastLog[topic]) < logEvery
	if !quiet {
		if len(s.lastLog) > 1000 { // topics are configured, but stay bounded anyway
			clear(s.lastLog)
		}
		s.lastLog[topic] = now
	}
	s.logMu.Unlock()
	if !quiet {
		s.log.Warn("MQTT sensor payload gave no reading (logged at most once a minute per topic)",
			"topic", topic, "reason", reason, "err", err)
	}
}
