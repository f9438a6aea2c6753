// Package mqttsub holds what the MQTT clients of Vigil (the gates'
// adapter, gates/mqtt, and the sensors' source, sensors/mqttsrc) do alike.
package mqttsub

import (
	"context"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Subscribe (re)subscribes after a connect, retrying every second while
// connected and ctx lasts: a connection without its subscription would
// look healthy and hear nothing.
func Subscribe(ctx context.Context, c paho.Client, filters map[string]byte, handle paho.MessageHandler, log *slog.Logger) {
	for attempt := 1; ctx.Err() == nil && c.IsConnectionOpen(); attempt++ {
		tok := c.SubscribeMultiple(filters, handle)
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			log.Info("MQTT connected and subscribed", "topics", len(filters))
			return
		}
		log.Error("MQTT subscribe failed; retrying", "attempt", attempt, "err", tok.Error())
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
