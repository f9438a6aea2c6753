package mosquitto_test

import (
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func connect(t *testing.T, b *mosquitto.Broker, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// retained publishes a retained message, restarts the broker with stop,
// and reports whether a new subscriber still gets it.
func retainedAfter(t *testing.T, b *mosquitto.Broker, stop func()) bool {
	t.Helper()
	pub := connect(t, b, "pub")
	if tok := pub.Publish("rig/state", 1, true, "kept"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	pub.Disconnect(0)
	stop()
	if listening(b.Addr()) || b.Running() {
		t.Fatalf("broker still listens on %s after stopping", b.Addr())
	}
	b.Start()
	if !listening(b.Addr()) {
		t.Fatalf("broker does not listen on %s after Start", b.Addr())
	}
	got := make(chan string, 2)
	sub := connect(t, b, "sub")
	sub.Subscribe("rig/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() + "=" + string(m.Payload()) })
	// A marker published after the subscription arrives after any
	// retained message, so there is no need to guess a wait.
	sub.Publish("rig/marker", 1, false, "m").WaitTimeout(5 * time.Second)
	for {
		select {
		case m := <-got:
			if m == "rig/state=kept" {
				return true
			}
			if m == "rig/marker=m" {
				return false
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no message from the broker")
		}
	}
}

func TestRestartSamePort(t *testing.T) {
	b := mosquitto.Start(t)
	if b.URL() != "tcp://"+b.Addr() {
		t.Fatalf("URL %q, Addr %q", b.URL(), b.Addr())
	}
	if retainedAfter(t, b, b.Kill) {
		t.Error("a broker without persistence kept a retained message across a restart")
	}
}

func TestPersistentKeepsRetained(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Persistent())
	if !retainedAfter(t, b, b.Stop) {
		t.Errorf("a persistent broker lost a retained message across Stop/Start; log:\n%s", b.Log())
	}
}

func TestRestart(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Config("max_connections 10"))
	addr := b.Addr()
	b.Restart()
	if b.Addr() != addr || !listening(addr) {
		t.Fatalf("after Restart: addr %s (was %s), listening %v", b.Addr(), addr, listening(addr))
	}
	b.Stop()
	b.Stop() // idempotent
}
