package edge

import (
	"context"
	"net"
	"testing"
	"time"
)

// ntpServer answers SNTP requests on 127.0.0.1 with a clock skewed by
// skew; stratum 0 makes it an unsynchronised one.
func sntpResponder(t *testing.T, skew time.Duration, stratum byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			resp := make([]byte, 48)
			resp[0] = 4<<3 | 4 // version 4, mode 4 (server)
			resp[1] = stratum
			copy(resp[24:32], buf[40:48]) // originate = the client's transmit
			now := time.Now().Add(skew)
			putNTPTime(resp[32:], now)
			putNTPTime(resp[40:], now)
			pc.WriteTo(resp, addr)
		}
	}()
	return pc.LocalAddr().String()
}

func TestSNTPOffset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	off, rtt, err := sntpOffset(ctx, sntpResponder(t, 3*time.Second, 2))
	if err != nil {
		t.Fatal(err)
	}
	// An SNTP offset is exact up to half the round trip (RFC 4330 §5):
	// a loaded test machine may delay one way more than the other.
	if d := off - 3*time.Second; d.Abs() > rtt/2+50*time.Millisecond || rtt < 0 || rtt > 2*time.Second {
		t.Fatalf("offset %v rtt %v, want +3 s within rtt/2", off, rtt)
	}
	ctx2, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	if _, _, err := sntpOffset(ctx2, sntpResponder(t, 0, 0)); err == nil {
		t.Fatal("an unsynchronised server's time was taken")
	}
	// Nobody answers: the deadline ends it.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, _, err := sntpOffset(short, silent.LocalAddr().String()); err == nil {
		t.Fatal("no answer, no error")
	}
}

func TestNTPTimeRoundTrip(t *testing.T) {
	b := make([]byte, 8)
	now := time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.UTC)
	putNTPTime(b, now)
	if d := ntpTime(b).Sub(now); d.Abs() > time.Microsecond {
		t.Fatalf("round trip off by %v", d)
	}
}
