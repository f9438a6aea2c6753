package mosquitto

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Publisher is a Zigbee2MQTT stand-in: a real MQTT client of broker that
// reconnects (a broker restart does not end it); it disconnects when the
// test ends.
func Publisher(t testing.TB, broker string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("z2m-test").
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// Publish publishes payload on topic at QoS 1 and waits for the broker's
// acknowledgement.
func Publish(t testing.TB, c paho.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}
