package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/gates/sim"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
	"github.com/vigil-perimeter/vigil/internal/demo"
)

// runSimGate is `vigil sim gate`: it plays gate and sensor scenarios
// against an edge's gate webhook and a site's MQTT broker.
func runSimGate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, level := cmdtable.NewFlags("sim gate", stderr)
	webhookURL := fs.String("webhook", "", "the edge's gate webhook, e.g. http://127.0.0.1:8081/api/v1/gates/events")
	secret := fs.String("secret", "", "the controller's webhook secret (or set VIGIL_GATE_SECRET, which keeps it out of ps)")
	controller := fs.String("controller", "sim-controller", "webhook controller ID")
	broker := fs.String("mqtt", "", "MQTT broker for Zigbee2MQTT-style sensors, e.g. tcp://127.0.0.1:1883")
	base := fs.String("z2m-base", "zigbee2mqtt", "Zigbee2MQTT base topic")
	gate := fs.String("gate", "north-gate", "gate ID the events are for")
	sensor := fs.String("sensor", "", "Zigbee2MQTT friendly name of the smoke sensor (default GATE-smoke)")
	scenario := fs.String("scenario", "all", strings.Join(sim.Scenarios(), ", ")+" or all (every scenario whose transport is given)")
	pause := fs.Duration("pause", 2*time.Second, "time between steps")
	hold := fs.Duration("hold", 70*time.Second, "how long the held scenario keeps the door open")
	demoInfo := fs.String("demo", "", "read --webhook, --controller, --secret and --gate from the demo's demo.json (e.g. vigil-data/demo.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *demoInfo != "" {
		var info demo.Info
		b, err := os.ReadFile(*demoInfo)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &info); err != nil {
			return fmt.Errorf("%s: %w", *demoInfo, err)
		}
		*webhookURL, *controller, *secret, *gate = info.WebhookURL, info.Controller, info.Secret, info.GateID
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := cmdtable.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	if *secret == "" {
		*secret = os.Getenv("VIGIL_GATE_SECRET")
	}
	if *webhookURL == "" && *broker == "" {
		return errors.New("give --webhook URL, --mqtt BROKER or both")
	}
	s, err := sim.New(sim.Config{
		WebhookURL: *webhookURL, Controller: *controller, Secret: *secret,
		MQTTBroker: *broker, BaseTopic: *base, Gate: *gate, SmokeSensor: *sensor,
		Pause: *pause, HoldOpen: *hold, Log: log,
	})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.Run(ctx, *scenario); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scenario %s sent for gate %s in %s\n", *scenario, *gate, time.Since(start).Round(time.Millisecond))
	return nil
}
