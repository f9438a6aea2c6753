package device

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/kamailio"
	"github.com/vigil-perimeter/vigil/internal/testrig/sipp"
)

// Every goroutine of the device (and of sipgo running our handlers) ends
// with Run's context, over UDP and TCP, registered and keepaliving.
func TestRunEndsItsGoroutines(t *testing.T) {
	for _, transport := range []string{UDP, TCP} {
		t.Run(transport, func(t *testing.T) {
			k := kamailio.Start(t, kamailio.Options{ServerID: serverID, Domain: domain, Password: password})
			d, err := New(testConfig(t, k.Addr(), transport), edgeChannels{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			leaks := testrig.CheckGoroutines(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			eventually(t, 5*time.Second, "registered and keepaliving", func() bool { return count(d.m.keepalives, "ok") >= 1 })
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			leaks.Check()
			if k.Registered(deviceID) {
				t.Error("the device did not unregister when it stopped")
			}
			if st := d.Status(); st.Online || st.State != StateOffline {
				t.Errorf("status after stop %+v", st)
			}
		})
	}
}

// A device stopping with a media session open ends the session
// (Media.Bye, a BYE to the platform) and every goroutine.
func TestRunEndsItsSessions(t *testing.T) {
	media := newTestMedia(1)
	d, cfg := mediaDevice(t, media)
	leaks := testrig.CheckGoroutines(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	p := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_stop.xml", Remote: cfg.LocalAddr, Calls: 1, Timeout: 10 * time.Second, Keys: platformKeys})
	select {
	case <-media.acks:
	case <-time.After(10 * time.Second):
		t.Fatalf("no ACK reached the media\n%s", p.Wait().Messages)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	res := p.Wait()
	if res.ExitCode != 0 || !strings.Contains(res.Logs, "bye reason=device stopped") {
		t.Fatalf("sipp exit %d\nlogs:\n%s\nerrors:\n%s", res.ExitCode, res.Logs, res.Errors)
	}
	if media.count("bye ") != 1 {
		t.Errorf("media events:\n%s", media.dump())
	}
	leaks.Check()
}
