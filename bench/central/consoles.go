package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// consoleClient is a guard's console: a real websocket to central that
// starts from a snapshot, resumes from its cursor after any drop, and
// checks every alert against the edge it came from: per edge the numbers
// must come 0, 1, 2, ... with none missing and none twice.
type consoleClient struct {
	api      string
	password string // benchGuard's
	url      string
	measure  *atomic.Bool // record latencies while set
	durable  func(edge int, n uint32) (time.Time, bool)

	mu         sync.Mutex
	cursor     uint64
	started    bool
	next       []uint32 // per edge, the alert number expected next
	delivered  uint64   // alerts received in order, once
	dups, gaps uint64
	lat        histogram // raised on the edge → here
	sent       histogram // durable in the edge's outbox → here: uplink, central, fan-out
	reconnects int
	cutoffs    int // closed by central for falling behind

	// The failover run: when the replica was killed, when this console's
	// connection then dropped and was made again, and when it first
	// received an alert raised after the kill.
	killedAt, droppedAt, backAt, receivingAt time.Time
}

func newConsole(api, password string, edges int, measure *atomic.Bool, durable func(int, uint32) (time.Time, bool)) *consoleClient {
	return &consoleClient{api: api, password: password, url: "ws://" + api + "/api/v1/console/ws?batch=1", next: make([]uint32, edges), measure: measure, durable: durable}
}

// benchGuard is the user the consoles sign in as.
const benchGuard = "bench-guard"

// login signs in as benchGuard and returns the session cookie.
func (c *consoleClient) login(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"user": benchGuard, "password": c.password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.api+"/api/v1/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Vigil-Request", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "vigil_session" && resp.StatusCode == http.StatusOK {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("login: %s", resp.Status)
}

// consoleMsg is what the checks need from a console message.
type consoleMsg struct {
	Type  string `json:"type"`
	Seq   uint64 `json:"seq"`
	Alert *struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	} `json:"alert"`
}

func (c *consoleClient) run(ctx context.Context) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10}
	// The session cookie is kept across reconnects, as a browser keeps
	// it: sessions live in the store, so a console that reconnects to
	// another replica (or to a restarted central) stays signed in. Only a
	// refused session makes it log in again.
	var cookie string
	for ctx.Err() == nil {
		c.mu.Lock()
		u := c.url
		if c.started {
			u = fmt.Sprintf("%s&since=%d", c.url, c.cursor)
		}
		c.mu.Unlock()
		var err error
		if cookie == "" {
			cookie, err = c.login(ctx)
		}
		var ws *websocket.Conn
		if err == nil {
			var resp *http.Response
			ws, resp, err = d.DialContext(ctx, u, http.Header{"Cookie": {cookie}})
			if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
				cookie = "" // the session ended (a restarted Badger central): log in again
			}
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		c.mu.Lock()
		if !c.droppedAt.IsZero() && c.backAt.IsZero() {
			c.backAt = time.Now()
		}
		c.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		err = c.read(ws)
		stop()
		ws.Close()
		c.mu.Lock()
		if !c.killedAt.IsZero() && c.droppedAt.IsZero() {
			c.droppedAt = time.Now()
		}
		c.reconnects++
		if websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
			c.cutoffs++
		}
		c.mu.Unlock()
	}
}

func (c *consoleClient) read(ws *websocket.Conn) error {
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		now := time.Now()
		c.mu.Lock()
		for len(frame) > 0 {
			var line []byte
			line, frame, _ = bytes.Cut(frame, []byte("\n"))
			m, ok := quickParse(line)
			if !ok {
				if err := json.Unmarshal(line, &m); err != nil {
					c.mu.Unlock()
					return err
				}
			}
			switch m.Type {
			case "snapshot", "ready":
				c.started, c.cursor = true, m.Seq
			case "alert":
				c.cursor = m.Seq
				c.check(m, now)
			case "update":
				c.cursor = m.Seq
			}
		}
		c.mu.Unlock()
	}
}

// check counts one alert; c.mu is held.
func (c *consoleClient) check(m consoleMsg, now time.Time) {
	edge, n, ok := parseAlertID(m.Alert.ID)
	if !ok || edge >= len(c.next) {
		c.gaps++
		return
	}
	switch want := c.next[edge]; {
	case n == want:
		if !c.killedAt.IsZero() && c.receivingAt.IsZero() && m.Alert.Time.After(c.killedAt) {
			c.receivingAt = now
		}
		c.next[edge]++
		c.delivered++
		if c.measure.Load() {
			c.lat.add(now.Sub(m.Alert.Time))
			if at, ok := c.durable(edge, n); ok {
				c.sent.add(now.Sub(at))
			}
		}
	case n < want:
		c.dups++
	default:
		c.gaps += uint64(n - want)
		c.next[edge] = n + 1
		c.delivered++
	}
}

// consoles is the set of console clients.
type consoles struct {
	list   []*consoleClient
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startConsoles(api, password string, n, edges int, measure *atomic.Bool, durable func(int, uint32) (time.Time, bool)) *consoles {
	ctx, cancel := context.WithCancel(context.Background())
	cs := &consoles{cancel: cancel}
	for range n {
		c := newConsole(api, password, edges, measure, durable)
		cs.list = append(cs.list, c)
		cs.wg.Add(1)
		go func() { defer cs.wg.Done(); c.run(ctx) }()
	}
	return cs
}

// resetLatency forgets the latencies measured so far.
func (cs *consoles) resetLatency() {
	for _, c := range cs.list {
		c.mu.Lock()
		c.lat, c.sent = histogram{}, histogram{}
		c.mu.Unlock()
	}
}

func (cs *consoles) stop() {
	cs.cancel()
	cs.wg.Wait()
}

// tally sums what the consoles saw.
type tally struct {
	delivered, dups, gaps, minDelivered uint64
	reconnects, cutoffs                 int
	lat, sent                           histogram
}

func (cs *consoles) tally() tally {
	var t tally
	t.minDelivered = ^uint64(0)
	for _, c := range cs.list {
		c.mu.Lock()
		t.delivered += c.delivered
		t.dups += c.dups
		t.gaps += c.gaps
		t.minDelivered = min(t.minDelivered, c.delivered)
		t.reconnects += c.reconnects
		t.cutoffs += c.cutoffs
		t.lat.merge(&c.lat)
		t.sent.merge(&c.sent)
		c.mu.Unlock()
	}
	return t
}

// waitAll waits until every console has every raised alert, or timeout.
func (cs *consoles) waitAll(raised func() uint64, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		if cs.tally().minDelivered >= raised() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quickParse reads type, seq and the alert's id and time from the front of
// a console message without decoding the whole record: fifty consoles
// decoding every alert in full would take a core of the shared machine
// away from central. Central writes those fields first, in this order;
// anything else falls back to encoding/json.
func quickParse(b []byte) (consoleMsg, bool) {
	var m consoleMsg
	rest, ok := bytes.CutPrefix(b, []byte(`{"type":"`))
	if !ok {
		return m, false
	}
	typ, rest, ok := bytes.Cut(rest, []byte(`","seq":`))
	if !ok {
		return m, false
	}
	m.Type = string(typ)
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	seq, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	if err != nil {
		return m, false
	}
	m.Seq = seq
	if m.Type != "alert" {
		return m, true
	}
	rest, ok = bytes.CutPrefix(rest[end:], []byte(`,"alert":{"id":"`))
	if !ok {
		return m, false
	}
	id, rest, ok := bytes.Cut(rest, []byte(`"`))
	if !ok {
		return m, false
	}
	_, rest, ok = bytes.Cut(rest, []byte(`,"time":"`))
	if !ok {
		return m, false
	}
	ts, _, ok := bytes.Cut(rest, []byte(`"`))
	if !ok {
		return m, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return m, false
	}
	m.Alert = &struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	}{ID: string(id), Time: t}
	return m, true
}
