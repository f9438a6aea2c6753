// Package sdnotify tells systemd that a service is ready, stopping, and
// still alive (sd_notify(3)) without linking libsystemd: one datagram per
// message to the socket systemd names in NOTIFY_SOCKET. Outside systemd
// every call is a no-op.
package sdnotify

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends to one notification socket; the zero value (no socket)
// sends nothing.
type Notifier struct {
	socket   string
	watchdog time.Duration
}

// FromEnv reads NOTIFY_SOCKET and WATCHDOG_USEC (honoured only when
// WATCHDOG_PID is unset or this process).
func FromEnv() Notifier {
	n := Notifier{socket: os.Getenv("NOTIFY_SOCKET")}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n
	}
	if us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		n.watchdog = time.Duration(us) * time.Microsecond
	}
	return n
}

// Enabled reports whether a notification socket is configured.
func (n Notifier) Enabled() bool { return n.socket != "" }

// Watchdog is the interval systemd expects pings within (0: none).
func (n Notifier) Watchdog() time.Duration { return n.watchdog }

// Notify sends one state, e.g. "READY=1", "STOPPING=1", "WATCHDOG=1".
func (n Notifier) Notify(state string) error {
	if n.socket == "" {
		return nil
	}
	name := n.socket
	if name[0] == '@' { // abstract namespace
		name = "\x00" + name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// KeepAlive pings the watchdog at half its interval for as long as ctx
// lasts, but only while healthy answers nil: a process whose inner loops
// are stuck stops pinging, and systemd restarts it.
func (n Notifier) KeepAlive(ctx context.Context, healthy func(context.Context) error, log *slog.Logger) {
	if n.socket == "" || n.watchdog <= 0 {
		return
	}
	every := n.watchdog / 2
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, every)
		err := healthy(cctx)
		cancel()
		if err != nil {
			log.Error("not telling the watchdog we are alive", "err", err)
			continue
		}
		if err := n.Notify("WATCHDOG=1"); err != nil {
			log.Warn("watchdog ping failed", "err", err)
		}
	}
}
