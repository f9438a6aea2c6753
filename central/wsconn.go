package central

import (
	"time"

	"github.com/gorilla/websocket"
)

// Websocket timing shared by edge and console connections.
const (
	pingInterval = 15 * time.Second // keeps NAT mappings on 4G modems alive
	readTimeout  = 45 * time.Second // three missed pings and the peer is gone
	helloTimeout = 10 * time.Second // an authenticated edge says hello at once
	writeTimeout = 10 * time.Second
	closeGrace   = time.Second // how long to wait for the peer's close reply

	// noCloseFrame as a stop code means the peer needs no close frame from
	// us: it is gone, or the close has already been exchanged.
	noCloseFrame = websocket.CloseAbnormalClosure
)

// closeSocket sends a close frame (unless the code says the peer is already
// gone), waits briefly for the reader to see the peer's reply, then closes.
func closeSocket(ws *websocket.Conn, code int, reason string, readerDone <-chan struct{}) {
	if code != noCloseFrame {
		msg := websocket.FormatCloseMessage(code, truncateReason(reason))
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
		t := time.NewTimer(closeGrace)
		select {
		case <-readerDone:
		case <-t.C:
		}
		t.Stop()
	}
	_ = ws.Close()
}

// truncateReason fits a close reason into the 123 bytes a close frame
// allows, without splitting a UTF-8 character.
func truncateReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
