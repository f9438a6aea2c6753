package central

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// backlogPage is how many stored records a console's catch-up reads at once.
	backlogPage = 500
	// consoleSendBuffer caps the kernel's send buffer per console. Left to
	// autotuning it grows to megabytes, which would hide a stalled console
	// from the bounded queue for a long time and cost memory per guard.
	// 256 KiB still moves a backlog at megabytes per second on a 100 ms link.
	consoleSendBuffer = 256 << 10
)

// Console message types, server → console.
const (
	consoleAlert = "alert" // one record: {"type":"alert","seq":N,"alert":{...}}
	consoleReady = "ready" // backlog sent: {"type":"ready","seq":N}, N the console's cursor from now on
)

// consoleMsg is one JSON text message to a console.
type consoleMsg struct {
	Type  string  `json:"type"`
	Seq   uint64  `json:"seq"`
	Alert *Record `json:"alert,omitempty"`
}

// alertLog is what a console needs from the store.
type alertLog interface {
	Since(seq uint64, limit int) ([]Record, error)
	LastSeq() uint64
}

// serveConsole handles GET /api/v1/console/ws?since=N until the console
// leaves, falls behind, or the server closes.
func serveConsole(ctx context.Context, w http.ResponseWriter, r *http.Request,
	hub *consoleHub, alerts alertLog, up *websocket.Upgrader, log *slog.Logger) {
	since, ok := queryUint(w, r, "since", 0, 0, math.MaxUint64)
	if !ok {
		return
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		log.Warn("console websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	log = log.With("remote", r.RemoteAddr)
	if tcp, ok := ws.NetConn().(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(consoleSendBuffer)
	}

	// Subscribe before reading the backlog: every record is then either in
	// the store when the backlog is read or in the live feed (or both, which
	// the cursor filters), so the console sees no gap.
	sub := hub.subscribe()
	defer hub.unsubscribe(sub)
	hub.met.consolesConnected.Inc()
	defer hub.met.consolesConnected.Dec()
	log.Info("console connected", "since", since)

	readerDone := make(chan struct{})
	go readConsole(ws, readerDone)
	code, reason := feedConsole(ctx, ws, sub, alerts, since, readerDone, log)
	closeSocket(ws, code, reason, readerDone)
	<-readerDone
}

// readConsole consumes what a console sends (pongs, its close frame) so
// keepalive and the close handshake work; consoles send no data messages.
func readConsole(ws *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	ws.SetReadLimit(4 << 10)
	_ = ws.SetReadDeadline(time.Now().Add(readTimeout))
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(readTimeout))
	})
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

// feedConsole sends the backlog after since, then "ready", then live records
// beyond the cursor, until something ends the connection. It is the only
// writer of ws apart from closeSocket after it returns. The returned code and
// reason go into the close frame.
func feedConsole(ctx context.Context, ws *websocket.Conn, sub *consoleSub, alerts alertLog,
	since uint64, readerDone <-chan struct{}, log *slog.Logger) (int, string) {
	write := func(m consoleMsg) error {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_ = ws.SetWriteDeadline(time.Now().Add(writeTimeout))
		return ws.WriteMessage(websocket.TextMessage, b)
	}
	cursor := since
	if last := alerts.LastSeq(); cursor > last {
		// A cursor from before central's data was reset would hide every new
		// alert; "ready" tells the console the cursor it must use instead.
		log.Warn("console cursor is ahead of the store; resetting it", "since", since, "last_seq", last)
		cursor = last
	}
	for {
		if ctx.Err() != nil {
			return websocket.CloseGoingAway, "central is shutting down"
		}
		page, err := alerts.Since(cursor, backlogPage)
		if err != nil {
			log.Error("reading console backlog failed", "since", cursor, "err", err)
			return websocket.CloseInternalServerErr, "central could not read alerts; reconnect later"
		}
		for i := range page {
			if err := write(consoleMsg{Type: consoleAlert, Seq: page[i].Seq, Alert: &page[i]}); err != nil {
				log.Info("console write failed during backlog", "err", err)
				return noCloseFrame, ""
			}
			cursor = page[i].Seq
		}
		if len(page) < backlogPage {
			break
		}
	}
	if err := write(consoleMsg{Type: consoleReady, Seq: cursor}); err != nil {
		log.Info("console write failed", "err", err)
		return noCloseFrame, ""
	}

	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case rec := <-sub.records:
			if rec.Seq <= cursor {
				continue // already sent in the backlog
			}
			if err := write(consoleMsg{Type: consoleAlert, Seq: rec.Seq, Alert: &rec}); err != nil {
				log.Info("console write failed", "err", err)
				return noCloseFrame, ""
			}
			cursor = rec.Seq
		case <-sub.dropped:
			log.Warn("console fell behind; disconnecting it", "queue", cap(sub.records), "cursor", cursor)
			return websocket.CloseTryAgainLater, fmt.Sprintf("console fell behind; reconnect with since=%d", cursor)
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				log.Info("pinging console failed", "err", err)
				return noCloseFrame, ""
			}
		case <-readerDone:
			log.Info("console disconnected", "cursor", cursor)
			return noCloseFrame, ""
		case <-ctx.Done():
			return websocket.CloseGoingAway, "central is shutting down"
		}
	}
}
