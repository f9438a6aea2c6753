package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTTConfig configures the MQTT publisher.
type MQTTConfig struct {
	Broker    string // tcp://host:1883
	ClientID  string // default vigil-sim-sensor
	Username  string
	Password  string
	BaseTopic string // Zigbee2MQTT's base topic, default zigbee2mqtt
	Sensors   []Sensor
	Interval  time.Duration // between reports of each sensor, default 1s
	Speed     float64       // scenario speed, default 1
	Log       *slog.Logger
}

// RunMQTT publishes every sensor's value each interval, as Zigbee2MQTT
// does a device's state: topic BaseTopic/ID, payload {"<field>": value,
// "linkquality": 120}. A silent sensor publishes nothing. It returns
// when ctx ends (nil) or the broker cannot be reached at the start.
func RunMQTT(ctx context.Context, cfg MQTTConfig) error {
	if cfg.BaseTopic == "" {
		cfg.BaseTopic = "zigbee2mqtt"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "vigil-sim-sensor"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cs, err := curves(cfg.Sensors, cfg.Speed)
	if err != nil {
		return fmt.Errorf("sim mqtt: %w", err)
	}
	opts := paho.NewClientOptions().AddBroker(cfg.Broker).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).SetAutoReconnect(true).SetConnectRetry(true)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		c.Disconnect(0)
		return fmt.Errorf("sim mqtt: connect %s: timed out", cfg.Broker)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("sim mqtt: connect %s: %w", cfg.Broker, err)
	}
	defer c.Disconnect(250)
	cfg.Log.Info("mqtt simulator publishing", "broker", cfg.Broker, "base_topic", cfg.BaseTopic, "sensors", len(cfg.Sensors))
	start := time.Now()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		publishAll(c, cfg, cs, time.Since(start))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// publishAll publishes one report of every sensor that is reporting.
func publishAll(c paho.Client, cfg MQTTConfig, cs []Curve, elapsed time.Duration) {
	toks := make([]paho.Token, 0, len(cs))
	for i, s := range cfg.Sensors {
		v, ok := cs[i](elapsed)
		if !ok {
			continue
		}
		toks = append(toks, c.Publish(cfg.BaseTopic+"/"+s.ID, 1, false, Payload(s.MQTTField(), v)))
	}
	var failed error
	for _, t := range toks {
		if t.WaitTimeout(5*time.Second) && t.Error() != nil {
			failed = t.Error()
		}
	}
	if failed != nil {
		cfg.Log.Warn("mqtt publish failed", "err", failed)
	}
}

// Payload is a Zigbee2MQTT-style state message carrying value v under
// key field (rounded to two decimals, as devices report).
func Payload(field string, v float64) []byte {
	b, err := json.Marshal(map[string]any{field: math.Round(v*100) / 100, "linkquality": 120})
	if err != nil {
		panic(errors.Join(errors.New("sim: a payload of a number does not marshal"), err))
	}
	return b
}
