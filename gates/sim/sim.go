// Package sim plays realistic gate and sensor sequences against an edge:
// an access controller posting signed webhook events (a passage with a
// card, a forced door, a door held open, a booth SOS button) and a
// Zigbee2MQTT bridge publishing sensor states (a smoke alarm and its
// clearing, a sensor dropping off the mesh). It drives `vigil sim gate`,
// the demo and the end-to-end tests.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/webhook"
)

// Scenarios lists the scenarios in the order "all" plays them.
func Scenarios() []string { return []string{"passage", "forced", "held", "sos", "smoke", "offline"} }

// needsMQTT marks the scenarios sent over MQTT; the others use the webhook.

var needsMQTT = map[string]bool{"smoke": true, "offline": true}

// Config says where to send and how fast.
type Config struct {
	WebhookURL string // e.g. http://127.0.0.1:8081/api/v1/gates/events
	Controller string // webhook controller ID (default "sim-controller")
	Secret     string // its secret
	MQTTBroker string // e.g. tcp://127.0.0.1:1883
	BaseTopic  string // Zigbee2MQTT base topic (default "zigbee2mqtt")
	Gate       string // gate ID (default "north-gate")
	// SmokeSensor is the Zigbee2MQTT friendly name of the smoke sensor
	// (default "<gate>-smoke").
	SmokeSensor string
	Pause       time.Duration // between steps (default 2s)
	HoldOpen    time.Duration // how long "held" keeps the door open (default 70s)
	HTTPClient  *http.Client
	Log         *slog.Logger
}

// Sim sends scenarios; it is not safe for concurrent Run calls.
type Sim struct {
	cfg  Config
	log  *slog.Logger
	mqtt paho.Client
}

// New checks cfg and fills defaults.
func New(cfg Config) (*Sim, error) {
	if cfg.Controller == "" {
		cfg.Controller = "sim-controller"
	}
	if cfg.BaseTopic == "" {
		cfg.BaseTopic = "zigbee2mqtt"
	}
	if cfg.Gate == "" {
		cfg.Gate = "north-gate"
	}
	if !gates.IDPattern.MatchString(cfg.Gate) {
		return nil, fmt.Errorf("sim: gate %q is not a gate ID", cfg.Gate)
	}
	if cfg.SmokeSensor == "" {
		cfg.SmokeSensor = cfg.Gate + "-smoke"
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 2 * time.Second
	}
	if cfg.HoldOpen <= 0 {
		cfg.HoldOpen = 70 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.WebhookURL != "" && cfg.Secret == "" {
		return nil, errors.New("sim: a webhook needs the controller's secret")
	}
	if cfg.WebhookURL == "" && cfg.MQTTBroker == "" {
		return nil, errors.New("sim: give a webhook URL, an MQTT broker or both")
	}
	return &Sim{cfg: cfg, log: cfg.Log.With("component", "gates/sim", "gate", cfg.Gate)}, nil
}

// Run plays one scenario, or "all" of those whose transport is configured.
func (s *Sim) Run(ctx context.Context, scenario string) error {
	defer s.closeMQTT()
	if scenario != "all" {
		if !slices.Contains(Scenarios(), scenario) {
			return fmt.Errorf("sim: unknown scenario %q (want one of %v or all)", scenario, Scenarios())
		}
		if err := s.check(scenario); err != nil {
			return err
		}
		return s.play(ctx, scenario)
	}
	played := 0
	for _, sc := range Scenarios() {
		if err := s.check(sc); err != nil {
			s.log.Info("skipping scenario", "scenario", sc, "why", err)
			continue
		}
		if played > 0 {
			if err := s.sleep(ctx, 2*s.cfg.Pause); err != nil {
				return err
			}
		}
		if err := s.play(ctx, sc); err != nil {
			return err
		}
		played++
	}
	return nil
}

func (s *Sim) check(scenario string) error {
	if needsMQTT[scenario] && s.cfg.MQTTBroker == "" {
		return fmt.Errorf("scenario %s needs an MQTT broker", scenario)
	}
	if !needsMQTT[scenario] && s.cfg.WebhookURL == "" {
		return fmt.Errorf("scenario %s needs a webhook URL", scenario)
	}
	return nil
}

// play sends one scenario step by step.
func (s *Sim) play(ctx context.Context, scenario string) error {
	s.log.Info("scenario", "scenario", scenario)
	p := s.cfg.Pause
	type step struct {
		do   func() error
		wait time.Duration
	}
	hook := func(kind gates.Kind, device, credential string) func() error {
		return func() error { return s.post(ctx, kind, device, credential) }
	}
	z2m := func(topic string, payload any, retained bool) func() error {
		return func() error { return s.publish(ctx, topic, payload, retained) }
	}
	state := s.cfg.BaseTopic + "/" + s.cfg.SmokeSensor
	avail := state + "/availability"
	smoke := func(on bool) map[string]any {
		return map[string]any{"battery": 87, "battery_low": false, "linkquality": 112, "smoke": on, "tamper": false, "test": false}
	}
	var steps []step
	switch scenario {
	case "passage": // a resident's card, the door opens a moment later and closes
		steps = []step{{hook(gates.Heartbeat, "", ""), 0}, {hook(gates.Granted, "reader", "card:04A2B9C1"), p / 2}, {hook(gates.Opened, "door", ""), p}, {hook(gates.Closed, "door", ""), 0}}
	case "forced": // the door opens with no card
		steps = []step{{hook(gates.Opened, "door", ""), p}, {hook(gates.Closed, "door", ""), 0}}
	case "held": // a card, then the door is propped open
		steps = []step{{hook(gates.Granted, "reader", "card:7F3310AA"), p / 2}, {hook(gates.Opened, "door", ""), s.cfg.HoldOpen}, {hook(gates.Closed, "door", ""), 0}}
	case "sos": // the guard in the booth presses the button, then again
		steps = []step{{hook(gates.Button, "booth-button", ""), p}, {hook(gates.Button, "booth-button", ""), 0}}
	case "smoke": // the smoke sensor alarms, then clears
		steps = []step{{z2m(avail, map[string]string{"state": "online"}, true), p / 4}, {z2m(state, smoke(true), false), p}, {z2m(state, smoke(false), false), 0}}
	case "offline": // the sensor drops off the Zigbee mesh and comes back
		steps = []step{{z2m(avail, map[string]string{"state": "offline"}, true), p}, {z2m(avail, map[string]string{"state": "online"}, true), 0}}
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			return fmt.Errorf("sim %s: %w", scenario, err)
		}
		if err := s.sleep(ctx, st.wait); err != nil {
			return err
		}
	}
	return nil
}

// post sends one signed webhook event.
func (s *Sim) post(ctx context.Context, kind gates.Kind, device, credential string) error {
	id := make([]byte, 8)
	rand.Read(id)
	ev := gates.Event{ID: "sim-" + hex.EncodeToString(id), Gate: s.cfg.Gate, Device: device, Kind: kind, Credential: credential, Time: time.Now()}
	body, err := gates.MarshalPayload(ev)
	if err != nil {
		return err
	}
	req, err := webhook.NewRequest(ctx, s.cfg.WebhookURL, s.cfg.Controller, s.cfg.Secret, body, time.Now())
	if err != nil {
		return err
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	var r webhook.Response
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&r)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook answered %s: %s (%s)", resp.Status, r.Error, r.Code)
	}
	s.log.Info("webhook event sent", "type", kind, "device", device, "id", ev.ID)
	return nil
}

// publish sends one Zigbee2MQTT-style message, connecting on first use.
func (s *Sim) publish(ctx context.Context, topic string, payload any, retained bool) error {
	if s.mqtt == nil {
		id := make([]byte, 4)
		rand.Read(id)
		c := paho.NewClient(paho.NewClientOptions().AddBroker(s.cfg.MQTTBroker).
			SetClientID("vigil-sim-" + hex.EncodeToString(id)).SetConnectTimeout(10 * time.Second))
		tok := c.Connect()
		if !waitToken(ctx, tok) {
			return fmt.Errorf("mqtt connect %s: %v", s.cfg.MQTTBroker, tokenErr(ctx, tok))
		}
		s.mqtt = c
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	tok := s.mqtt.Publish(topic, 1, retained, b)
	if !waitToken(ctx, tok) {
		return fmt.Errorf("mqtt publish %s: %v", topic, tokenErr(ctx, tok))
	}
	s.log.Info("mqtt message sent", "topic", topic, "payload", string(b), "retained", retained)
	return nil
}

func (s *Sim) closeMQTT() {
	if s.mqtt != nil {
		s.mqtt.Disconnect(250)
		s.mqtt = nil
	}
}

// waitToken waits for an MQTT operation, at most 10 s or until ctx ends.
func waitToken(ctx context.Context, tok paho.Token) bool {
	select {
	case <-tok.Done():
		return tok.Error() == nil
	case <-ctx.Done():
		return false
	case <-time.After(10 * time.Second):
		return false
	}
}

func tokenErr(ctx context.Context, tok paho.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tok.Error(); err != nil {
		return err
	}
	return errors.New("timed out")
}

func (s *Sim) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
