package central

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestConsoleBacklogThenLive(t *testing.T) {
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	for i := 1; i <= 3; i++ {
		edge.sendAlert(testAlert(northID, fmt.Sprintf("b-%d", i)))
	}

	all := dialConsole(t, s, 0)
	recs, ready := all.backlog()
	if len(recs) != 3 || ready != 3 {
		t.Fatalf("backlog from 0: %d records, ready %d; want 3, 3", len(recs), ready)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.ID != fmt.Sprintf("b-%d", i+1) || r.SiteID != siteID || r.Severity != "red" {
			t.Fatalf("backlog[%d] = %+v", i, r)
		}
	}
	tail := dialConsole(t, s, 2)
	if recs, ready := tail.backlog(); len(recs) != 1 || recs[0].Seq != 3 || ready != 3 {
		t.Fatalf("backlog from 2: %+v ready %d", recs, ready)
	}
	// A cursor from before central's data was reset is pulled back, so
	// new alerts still reach that console.
	ahead := dialConsole(t, s, 99)
	if recs, ready := ahead.backlog(); len(recs) != 0 || ready != 3 {
		t.Fatalf("backlog from 99: %+v ready %d, want ready 3", recs, ready)
	}

	edge.sendAlert(testAlert(northID, "live-4"))
	all.expectAlert("live-4", 4)
	tail.expectAlert("live-4", 4)
	ahead.expectAlert("live-4", 4)
	if got := metricValue(t, s, "vigil_central_consoles_connected"); got != 3 {
		t.Fatalf("consoles_connected = %v", got)
	}
}

func TestConsoleRejectsBadCursorAndForeignOrigin(t *testing.T) {
	s := startServer(t)
	var body apiError
	resp := getJSON(t, s, "/api/v1/console/ws?since=-1", &body)
	if resp.StatusCode != http.StatusBadRequest || body.Param != "since" {
		t.Fatalf("since=-1: %d %+v", resp.StatusCode, body)
	}
	// A page from another site must not read the alert feed.
	h := http.Header{"Origin": {"http://evil.example"}}
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/api/v1/console/ws", h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: resp %v err %v, want 403", resp, err)
	}
}

// A console that drops and reconnects with its cursor while alerts keep
// arriving sees every alert exactly once, in order.
func TestConsoleReconnectWithCursorHasNoGapOrDuplicate(t *testing.T) {
	const total = 200
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)

	sent := make(chan error, 1)
	go func() {
		// Pipelined like a real outbox: send everything, then collect acks.
		for i := 1; i <= total; i++ {
			frame, _ := marshalAlert(testAlert(northID, fmt.Sprintf("r-%03d", i)))
			if err := edge.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()

	var seen []uint64
	cursor := uint64(0)
	for conn := 0; len(seen) < total; conn++ {
		if conn > total {
			t.Fatalf("no progress after %d connections; seen %d", conn, len(seen))
		}
		c := dialConsole(t, s, cursor)
		// Read a few messages (more each time), then drop the connection.
		for n := 0; n < 3+conn*2 && len(seen) < total; {
			m := c.next()
			if m.Type == "ready" {
				if m.Seq != cursor {
					t.Fatalf("ready seq %d, want the last alert sent, %d", m.Seq, cursor)
				}
				continue
			}
			if m.Seq != cursor+1 {
				t.Fatalf("connection %d from %d: got seq %d, want %d", conn, cursor, m.Seq, cursor+1)
			}
			seen = append(seen, m.Seq)
			cursor = m.Seq
			n++
		}
		c.ws.Close()
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= total; i++ {
		edge.expectAck(fmt.Sprintf("r-%03d", i))
	}
	if len(seen) != total || seen[total-1] != total {
		t.Fatalf("saw %d alerts, last %d", len(seen), seen[len(seen)-1])
	}
}

// A console that stops reading is cut off once its queue is full; the edge
// and a console that keeps up never wait for it.
func TestConsoleSlowIsCutOffWithoutBlockingOthers(t *testing.T) {
	s := newServer(t, testConfig(t.TempDir()))
	s.wr.queue = 4 // fill quickly; socket buffers still absorb some MB
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	slow := dialConsole(t, s, 0)
	slow.backlog()
	good := dialConsole(t, s, 0)
	good.backlog()
	edge := connectEdge(t, s, northID, northToken)

	type got struct {
		seq uint64
		err error
	}
	goodSeqs := make(chan got, 4096)
	go func() {
		for {
			m, err := good.tryNext(waitFor)
			goodSeqs <- got{m.Seq, err}
			if err != nil {
				return
			}
		}
	}()

	big := strings.Repeat("x", 64<<10) // fills the socket buffers in a few alerts
	sent := 0
	for metricValue(t, s, "vigil_central_console_dropped_total") == 0 {
		if sent == 2000 {
			t.Fatal("slow console never cut off")
		}
		sent++
		a := testAlert(northID, fmt.Sprintf("f-%04d", sent))
		a.Summary = big
		edge.sendAlert(a) // an ack per alert: the edge is never held up
		// The good console keeps pace: its latest alert arrives before the next is sent.
		if g := <-goodSeqs; g.err != nil || g.seq != uint64(sent) {
			t.Fatalf("good console: seq %d err %v, want seq %d", g.seq, g.err, sent)
		}
	}
	t.Logf("slow console cut off after %d alerts", sent)

	// The slow console finds its buffered alerts, then the close that tells
	// it to reconnect with its cursor.
	for i := 0; ; i++ {
		if i > sent+1 {
			t.Fatal("slow console never closed")
		}
		_, err := slow.tryNext(waitFor)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseTryAgainLater {
			t.Fatalf("slow console closed with %v, want %d", ce, websocket.CloseTryAgainLater)
		}
		if ce == nil && strings.Contains(err.Error(), "timeout") {
			t.Fatalf("slow console still open: %v", err)
		}
		break
	}
	eventually(t, "slow console gone", func() bool {
		return metricValue(t, s, "vigil_central_consoles_connected") == 1
	})
	edge.sendAlert(testAlert(northID, "after-cut"))
	if g := <-goodSeqs; g.err != nil || g.seq != uint64(sent+1) {
		t.Fatalf("good console after cut: %+v", g)
	}
}

// A console that starts from a snapshot and then keeps dropping and
// resuming from its cursor, while alerts arrive and guards act on them,
// sees every change (new alerts and updates) exactly once, in order.
func TestConsoleResumeCoversUpdates(t *testing.T) {
	const alerts = 60
	s := startServer(t)
	fresh := dialConsoleFresh(t, s, "")
	m := fresh.next()
	if m.Type != consoleSnapshot || m.Seq != 0 {
		t.Fatalf("first message %+v, want an empty snapshot", m)
	}
	fresh.ws.Close()
	cursor := m.Seq

	edge := connectEdge(t, s, northID, northToken)
	done := make(chan error, 1)
	go func() {
		// Every alert is acknowledged by a guard right after it arrives:
		// two changes per alert, from two different writers (edge and API).
		for i := range alerts {
			id := fmt.Sprintf("c-%03d", i)
			frame, _ := marshalAlert(testAlert(northID, id))
			if err := edge.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				done <- err
				return
			}
			for {
				body, _ := json.Marshal(map[string]string{"actor": "ann"})
				req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/v1/alerts/"+id+"/acknowledge", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				time.Sleep(time.Millisecond) // the alert is not stored yet
			}
		}
		done <- nil
	}()

	var seen []consoleMsgIn
	for conn := 0; len(seen) < 2*alerts; conn++ {
		if conn > 4*alerts {
			t.Fatalf("no progress after %d connections; seen %d", conn, len(seen))
		}
		c := dialConsole(t, s, cursor)
		for n := 0; n < 1+conn%7 && len(seen) < 2*alerts; {
			m := c.next()
			if m.Type == "ready" {
				continue
			}
			if m.Seq != cursor+1 {
				t.Fatalf("connection %d from %d: got %s seq %d, want %d", conn, cursor, m.Type, m.Seq, cursor+1)
			}
			seen = append(seen, m)
			cursor = m.Seq
			n++
		}
		c.ws.Close()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	alertsSeen, updates := map[string]int{}, map[string]int{}
	for _, m := range seen {
		if m.Type == "alert" {
			alertsSeen[m.Alert.ID]++
		} else if m.Alert.State == StateAcknowledged {
			updates[m.Alert.ID]++
		}
	}
	for i := range alerts {
		id := fmt.Sprintf("c-%03d", i)
		if alertsSeen[id] != 1 || updates[id] != 1 {
			t.Fatalf("%s seen as alert %d times and acknowledged %d times", id, alertsSeen[id], updates[id])
		}
	}
}

// In batch mode a console behind the feed gets several messages per
// frame, one per line, and still every change once, in order.
func TestConsoleBatchMode(t *testing.T) {
	const total = 300
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	for i := 1; i <= total/2; i++ {
		frame, _ := marshalAlert(testAlert(northID, fmt.Sprintf("m-%03d", i)))
		edge.sendRaw(frame)
	}
	edge.expectAck(fmt.Sprintf("m-%03d", total/2))
	c := dialConsoleURL(t, fmt.Sprintf("ws://%s/api/v1/console/ws?since=0&batch=1", s.Addr()))
	go func() {
		for i := total/2 + 1; i <= total; i++ {
			frame, _ := marshalAlert(testAlert(northID, fmt.Sprintf("m-%03d", i)))
			if edge.ws.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		}
	}()
	var seq uint64
	for seq < total {
		m := c.next()
		if m.Type == "ready" {
			continue
		}
		if m.Type != "alert" || m.Seq != seq+1 {
			t.Fatalf("after %d: %+v", seq, m)
		}
		seq = m.Seq
	}
	t.Logf("%d alerts in %d frames", total, c.frames)
	if c.frames >= total {
		t.Fatalf("%d frames for %d alerts: nothing batched", c.frames, total)
	}
	var e apiError
	if resp := getJSON(t, s, "/api/v1/console/ws?batch=2", &e); resp.StatusCode != http.StatusBadRequest || e.Param != "batch" {
		t.Fatalf("batch=2: %d %+v", resp.StatusCode, e)
	}
}
