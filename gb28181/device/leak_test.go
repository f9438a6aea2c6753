package device

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/kamailio"
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
