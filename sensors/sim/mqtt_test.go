package sim

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

// Through a real mosquitto, the publisher sends Zigbee2MQTT-style state
// messages: base_topic/ID with the kind's expose as the JSON key, and
// nothing for a sensor gone silent.
func TestMQTTPublishesThroughMosquitto(t *testing.T) {
	b := mosquitto.Start(t)
	got := make(chan paho.Message, 100)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("sim-test-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("site/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunMQTT(ctx, MQTTConfig{Broker: b.URL(), BaseTopic: "site", Interval: 100 * time.Millisecond, Speed: 600,
			Sensors: []Sensor{
				{ID: "cable-1", Kind: "cable_temperature", Scenario: CableHeating},
				{ID: "gas-1", Kind: "gas", Scenario: GasLeak},
				{ID: "quiet", Kind: "temperature", Scenario: Silent, Base: 20}, // silent after 0.1 s at speed 600
			}})
	}()
	counts := map[string]int{}
	deadline := time.After(10 * time.Second)
	for counts["site/cable-1"] < 5 || counts["site/gas-1"] < 5 {
		select {
		case m := <-got:
			counts[m.Topic()]++
			var p map[string]float64
			if err := json.Unmarshal(m.Payload(), &p); err != nil {
				t.Fatalf("%s: %s: %v", m.Topic(), m.Payload(), err)
			}
			key := map[string]string{"site/cable-1": "temperature", "site/gas-1": "gas_density", "site/quiet": "temperature"}[m.Topic()]
			v, ok := p[key]
			if !ok || p["linkquality"] != 120 {
				t.Errorf("%s: %s lacks %q or linkquality", m.Topic(), m.Payload(), key)
			}
			if m.Topic() == "site/cable-1" && (v < 35 || v > 85) {
				t.Errorf("cable at %v °C", v)
			}
		case <-deadline:
			t.Fatalf("messages after 10 s: %v", counts)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if counts["site/quiet"] > 2 {
		t.Errorf("the silent sensor sent %d messages, want at most 2 (before it went quiet)", counts["site/quiet"])
	}
}
