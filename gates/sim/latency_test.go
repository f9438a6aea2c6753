package sim

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/engine"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	"github.com/vigil-perimeter/vigil/gates/mqtt"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

// Gate alert latency: from the moment an input leaves its source (a
// signed HTTP request is sent, an MQTT message is published, a GPIO line
// changes) to the moment the gate's state machine hands out the alert. The
// machine's own debounce and grant grace are off here so every input makes
// an alert; see BENCHMARKS.md for what they add in the field.

func benchEngine(b *testing.B) (*engine.Engine, chan gates.Alert) {
	alerts := make(chan gates.Alert, 16)
	eng, err := engine.New(engine.Options{
		Gates:   []gates.Config{{ID: "north-gate", Arming: gates.Arming{Always: true}, Debounce: -1, GrantGrace: -1, UpdateEvery: -1}},
		OnAlert: func(a gates.Alert) { alerts <- a },
		Log:     quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return eng, alerts
}

// measure runs send b.N times and reports the latency to the next alert.
func measure(b *testing.B, alerts chan gates.Alert, send func(i int)) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		send(i)
		select {
		case <-alerts:
		case <-time.After(10 * time.Second):
			b.Fatalf("op %d: no alert", i)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(0, "ns/op") // the percentiles are the result
}

func BenchmarkWebhookToAlert(b *testing.B) {
	eng, alerts := benchEngine(b)
	h, err := webhook.New(webhook.Config{Controllers: []webhook.Controller{{ID: "ctrl", Secrets: []string{secret}, Gates: []string{"north-gate"}}}, DedupSize: 1 << 16}, eng.Submit, nil, quiet)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	measure(b, alerts, func(i int) {
		body, _ := gates.MarshalPayload(gates.Event{ID: fmt.Sprint("b", i), Gate: "north-gate", Device: "booth", Kind: gates.Button, Time: time.Now()})
		req, _ := webhook.NewRequest(context.Background(), srv.URL, "ctrl", secret, body, time.Now())
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("post: %v %v", err, resp)
		}
		resp.Body.Close()
	})
}

func BenchmarkMQTTToAlert(b *testing.B) {
	eng, alerts := benchEngine(b)
	broker := mosquitto.Start(b)
	ad, err := mqtt.New(mqtt.Config{Broker: broker.URL(), Devices: []mqtt.Device{{Name: "smoke", Gate: "north-gate"}}}, eng.Submit, nil, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ad.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("bench-pub"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	for i := 0; i < 500 && !ad.Connected(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // subscription lands
	measure(b, alerts, func(i int) {
		// Alternate alarm and clear: each is a change, so each makes an alert.
		pub.Publish("zigbee2mqtt/smoke", 1, false, fmt.Sprintf(`{"smoke":%v,"battery":90,"linkquality":100}`, i%2 == 0))
	})
}

func BenchmarkGPIOToAlert(b *testing.B) {
	eng, alerts := benchEngine(b)
	line := gpio.NewSimLine(false)
	ad, err := gpio.New(gpio.Config{Inputs: []gpio.Input{{Gate: "north-gate", Device: "smoke-loop", Role: gpio.RoleSmoke, Line: line}}}, eng.Submit, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ad.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	measure(b, alerts, func(i int) { line.Set(i%2 == 0) })
}
