package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// ConsoleMsg is one message of central's console websocket, stamped with
// the moment it arrived.
type ConsoleMsg struct {
	Type    string          `json:"type"`
	Seq     uint64          `json:"seq"`
	Alert   json.RawMessage `json:"alert"`
	Arrived time.Time       `json:"-"`
}

// WatchConsole is a guard's console: it reads central's console websocket
// at addr (as the admin) until ctx ends, reconnecting from its cursor
// whenever the connection ends (central restarting), and sends out every
// message of the given types ("alert", "update"), in order. The cursor
// follows those messages.
func WatchConsole(ctx context.Context, addr string, out chan<- ConsoleMsg, types ...string) {
	hdr := http.Header{"Authorization": {"Bearer " + AdminToken}}
	var seq uint64
	for ctx.Err() == nil {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, fmt.Sprintf("ws://%s/api/v1/console/ws?since=%d", addr, seq), hdr)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		for {
			var m ConsoleMsg
			if err := ws.ReadJSON(&m); err != nil {
				break
			}
			if !slices.Contains(types, m.Type) {
				continue
			}
			if m.Seq > seq {
				seq = m.Seq
			}
			m.Arrived = time.Now()
			select {
			case out <- m:
			case <-ctx.Done():
			}
		}
		stop()
		ws.Close()
	}
}
