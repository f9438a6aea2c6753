package central

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/internal/fanout"
)

const (
	// backlogPage is how many change log entries a console's catch-up reads at once.
	backlogPage = 500
	// defaultOpenSnapshot and maxOpenSnapshot bound the open alerts in a
	// fresh console's snapshot (the newest first); the snapshot also carries
	// the total and every site's colour and counts.
	defaultOpenSnapshot = 200
	maxOpenSnapshot     = 1000
	// maxBatchMessages and maxBatchBytes bound one frame in batch mode.
	maxBatchMessages = 256
	maxBatchBytes    = 256 << 10
	// consoleSendBuffer caps the kernel's send buffer per console. Left to
	// autotuning it grows to megabytes, which would hide a stalled console
	// from the bounded queue for a long time and cost memory per guard.
	// 256 KiB still moves a backlog at megabytes per second on a 100 ms link.
	consoleSendBuffer = 256 << 10
)

// Console message types, server → console.
//
// A console without ?since= gets a snapshot: {"type":"snapshot","seq":S,
// "sites":[...],"open":[newest open alerts],"open_total":N}, then live
// messages after S. A console with ?since=C gets every change after C
// ("alert" and "update" messages, oldest first), then {"type":"ready",
// "seq":S,"sites":[...]}, then live messages. Either way it keeps the seq
// of the last alert or update as its cursor and reconnects with since=seq.
// Guards, supervisors and police never get self-test alerts (kind
// system.selftest) in any of these; their cursor moves past them all the
// same. A recurrence of a resolved alert arrives as a new "alert" whose
// record has "follows" (the resolved alert's ID); a recurrence folded into
// an open alert as an "update" with a higher "count" and "last_time"; an
// escalation as an "update" with "escalated_at".
const (
	consoleAlert    = "alert"    // a new alert: {"type":"alert","seq":N,"alert":{...}}
	consoleUpdate   = "update"   // an alert changed (edge update or workflow step), the full record
	consoleSite     = "site"     // a site's colour changed: {"type":"site","seq":N,"site":{...}}
	consoleEdge     = "edge"     // an edge went online or offline: {"type":"edge","edge":{...}}
	consoleSnapshot = "snapshot" // a fresh console's starting point
	consoleReady    = "ready"    // backlog sent; seq is the console's cursor from now on
)

// closeSessionEnded closes a console whose login ended (4401: log in again).
const closeSessionEnded = 4401

// consoleMsg is one JSON text message to a console.
type consoleMsg struct {
	Type      string        `json:"type"`
	Seq       uint64        `json:"seq"`
	Alert     *Record       `json:"alert,omitempty"`
	Site      *SiteColour   `json:"site,omitempty"`
	Sites     []SiteColour  `json:"sites,omitempty"`
	Open      []Record      `json:"open,omitempty"`
	OpenTotal *int          `json:"open_total,omitempty"`
	Edge      *EdgePresence `json:"edge,omitempty"`
}

// EdgePresence is an edge going online or offline.
type EdgePresence struct {
	ID       string    `json:"id"`
	SiteID   string    `json:"site_id"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// serveConsole handles GET /api/v1/console/ws[?since=N][&open=M] until the
// console leaves, falls behind, or the server closes.
func serveConsole(ctx context.Context, w http.ResponseWriter, r *http.Request,
	wr *writer, met *metrics, up *websocket.Upgrader, log *slog.Logger) {
	_, resume := r.URL.Query()["since"]
	since, ok := queryUint(w, r, "since", 0, 0, math.MaxUint64)
	if !ok {
		return
	}
	openLimit, ok := queryUint(w, r, "open", defaultOpenSnapshot, 0, maxOpenSnapshot)
	if !ok {
		return
	}
	batch, ok := queryUint(w, r, "batch", 0, 0, 1)
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
	readerDone := make(chan struct{})
	go readConsole(ws, readerDone)

	// Subscribing takes the live feed and a view of the store at the same
	// sequence number: the backlog or snapshot comes from the view, the rest
	// from the feed, so the console sees no gap and no duplicate.
	sub, view, ok := wr.subscribe()
	if !ok {
		closeSocket(ws, websocket.CloseGoingAway, "central is shutting down", readerDone)
		<-readerDone
		return
	}
	defer wr.unsubscribe(sub)
	met.consolesConnected.Inc()
	defer met.consolesConnected.Dec()
	log.Info("console connected", "since", since, "resume", resume, "seq", view.seq)

	c := &consoleConn{ws: ws, log: log, batch: batch == 1, hideSelfTest: !seesSelfTests(r)}
	if p := principalOf(r); p != nil && p.sess != nil {
		c.ended = p.sess.done // logout, expiry or a deleted user closes the console
	}
	code, reason := c.start(view, resume, since, int(openLimit))
	view.snap.Discard()
	if code == 0 {
		code, reason = c.live(ctx, sub, readerDone)
	}
	closeSocket(ws, code, reason, readerDone)
	<-readerDone
}

// consoleConn writes to one console; it is the only writer of ws apart
// from closeSocket after it is done.
type consoleConn struct {
	ws     *websocket.Conn
	log    *slog.Logger
	batch  bool // several messages per frame, one per line
	cursor uint64
	buf    []byte          // batch being built
	n      int             // messages in buf
	ended  <-chan struct{} // the session's end; nil for the admin token
	// hideSelfTest leaves self-test alerts out (guards, supervisors,
	// police): they are for installers (GET /api/v1/selftests).
	hideSelfTest bool
}

// selfTestKind is how a self-test alert's kind appears in a stored change
// frame. A record's only "kind" key is its own (string values escape
// their quotes), so the frames need not be decoded to be filtered.
var selfTestKind = []byte(`"kind":"` + KindSelfTest + `"`)

// skip reports whether the frame is not for this console.
func (c *consoleConn) skip(f consoleFrame) bool {
	return c.hideSelfTest && bytes.Contains(f.data, selfTestKind)
}

func (c *consoleConn) write(b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// add queues one message; without batching it is written at once, with
// batching when the batch is full (or at flush).
func (c *consoleConn) add(b []byte) error {
	if !c.batch {
		return c.write(b)
	}
	if c.n > 0 {
		c.buf = append(c.buf, '\n')
	}
	c.buf = append(c.buf, b...)
	c.n++
	if c.n >= maxBatchMessages || len(c.buf) >= maxBatchBytes {
		return c.flush()
	}
	return nil
}

func (c *consoleConn) flush() error {
	if c.n == 0 {
		return nil
	}
	err := c.write(c.buf)
	c.buf, c.n = c.buf[:0], 0
	return err
}

func (c *consoleConn) writeMsg(m consoleMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.add(b)
}

// start sends the snapshot, or the backlog after since and "ready". A
// non-zero code ends the connection with that close frame.
func (c *consoleConn) start(view consoleView, resume bool, since uint64, openLimit int) (int, string) {
	c.cursor = view.seq
	if !resume {
		open, err := view.snap.newestOpen(openLimit)
		if err != nil {
			c.log.Error("reading open alerts failed", "err", err)
			return websocket.CloseInternalServerErr, "central could not read alerts; reconnect later"
		}
		if c.hideSelfTest {
			open = slices.DeleteFunc(open, func(r Record) bool { return r.Kind == KindSelfTest })
		}
		total := view.openTotal
		err = c.writeMsg(consoleMsg{Type: consoleSnapshot, Seq: view.seq, Sites: view.sites, Open: open, OpenTotal: &total})
		if err == nil {
			err = c.flush()
		}
		if err != nil {
			c.log.Info("console write failed during snapshot", "err", err)
			return noCloseFrame, ""
		}
		return 0, ""
	}
	cursor := since
	if cursor > view.seq {
		// A cursor from before central's data was reset would hide every new
		// alert; "ready" tells the console the cursor it must use instead.
		c.log.Warn("console cursor is ahead of the store; resetting it", "since", since, "last_seq", view.seq)
		cursor = view.seq
	}
	for cursor < view.seq {
		page, err := view.snap.changes(cursor, view.seq, backlogPage)
		if err != nil {
			c.log.Error("reading console backlog failed", "since", cursor, "err", err)
			return websocket.CloseInternalServerErr, "central could not read alerts; reconnect later"
		}
		if len(page) == 0 {
			break
		}
		for _, f := range page {
			if c.skip(f) {
				cursor = f.seq
				continue
			}
			if err := c.add(f.data); err != nil {
				c.log.Info("console write failed during backlog", "err", err)
				return noCloseFrame, ""
			}
			cursor = f.seq
		}
	}
	err := c.writeMsg(consoleMsg{Type: consoleReady, Seq: view.seq, Sites: view.sites})
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		c.log.Info("console write failed", "err", err)
		return noCloseFrame, ""
	}
	return 0, ""
}

// live forwards the feed until something ends the connection.
func (c *consoleConn) live(ctx context.Context, sub *consoleSub, readerDone <-chan struct{}) (int, string) {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case f, ok := <-sub.C():
			if !ok {
				return c.feedEnded(sub)
			}
			if err := c.forward(f, sub); err != nil {
				c.log.Info("console write failed", "err", err)
				return noCloseFrame, ""
			}
		case <-sub.Done():
			return c.feedEnded(sub)
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				c.log.Info("pinging console failed", "err", err)
				return noCloseFrame, ""
			}
		case <-readerDone:
			c.log.Info("console disconnected", "cursor", c.cursor)
			return noCloseFrame, ""
		case <-ctx.Done():
			return websocket.CloseGoingAway, "central is shutting down"
		case <-c.ended:
			return closeSessionEnded, "session ended; log in again"
		}
	}
}

// feedEnded says how to close a console whose feed ended: cut off for
// falling behind (it resumes from its cursor), or the writer stopped.
func (c *consoleConn) feedEnded(sub *consoleSub) (int, string) {
	if errors.Is(sub.Err(), fanout.ErrSlow) {
		c.log.Warn("console fell behind; disconnecting it", "queue", cap(sub.C()), "cursor", c.cursor)
		return websocket.CloseTryAgainLater, fmt.Sprintf("console fell behind; reconnect with since=%d", c.cursor)
	}
	return websocket.CloseGoingAway, "central is shutting down"
}

// forward writes f and, in batch mode, whatever else is already queued.
func (c *consoleConn) forward(f consoleFrame, sub *consoleSub) error {
	for {
		if !c.skip(f) {
			if err := c.add(f.data); err != nil {
				return err
			}
		}
		c.cursor = max(c.cursor, f.seq)
		if !c.batch {
			return nil
		}
		var ok bool
		select {
		case f, ok = <-sub.C():
		default:
		}
		if !ok { // nothing queued, or the feed ended (live sees why)
			return c.flush()
		}
	}
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
