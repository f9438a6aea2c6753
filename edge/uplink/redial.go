package uplink

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// redial is the wait between sessions: the backoff Run chose, cut short
// by a new credential (kick) or, while central is away, by a TCP probe
// that finds it back.
type redial struct {
	id    *identity
	kick  chan struct{} // a new credential: reconnect now
	every time.Duration // Config.Probe
}

type waitResult int

const (
	waitElapsed  waitResult = iota
	waitEnded               // ctx ended
	waitKicked              // a new credential
	waitAnswered            // the probe reached central
)

// wait sleeps d before the next dial. With probe set it tries a TCP
// connect to central every r.every meanwhile and returns as soon as one
// succeeds: backoff spares central from full TLS dials while it is away,
// but must not keep the edge away once it is back.
func (r *redial) wait(ctx context.Context, d time.Duration, probe bool) waitResult {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var tick <-chan time.Time
	if probe {
		t := time.NewTicker(r.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return waitEnded
		case <-r.kick:
			return waitKicked
		case <-timer.C:
			return waitElapsed
		case <-tick:
			if r.probe(ctx) {
				return waitAnswered
			}
		}
	}
}

// probe reports whether central's address accepts a TCP connection.
func (r *redial) probe(ctx context.Context) bool {
	target, err := r.id.target()
	if err != nil {
		return false
	}
	addr, err := hostPort(target)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, r.every)
	defer cancel()
	dial := r.id.netDial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// hostPort is the TCP address of a ws:// or wss:// URL.
func hostPort(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	if u.Scheme == "wss" || u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return net.JoinHostPort(u.Hostname(), "80"), nil
}

// unanswered reports whether err means central could not be reached or
// stopped answering (worth probing for), rather than that it answered
// and refused (where only the backoff keeps the edge from hammering it).
func unanswered(err error) bool {
	if errors.Is(err, errSilent) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// Central shutting down or restarting will likely be back soon.
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseAbnormalClosure, websocket.CloseGoingAway, websocket.CloseServiceRestart,
			websocket.CloseTryAgainLater, websocket.CloseInternalServerErr:
			return true
		}
	}
	return false
}
