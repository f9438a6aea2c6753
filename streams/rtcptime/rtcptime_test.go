package rtcptime

import (
	"testing"
	"time"
)

func TestNTPConversion(t *testing.T) {
	for _, c := range []struct {
		ntp  uint64
		want time.Time
	}{
		// RFC 3550 §4: the fraction is in units of 2^-32 s.
		{0x83aa7e80_00000000, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{0x83aa7e80_80000000, time.Date(1970, 1, 1, 0, 0, 0, 500_000_000, time.UTC)},
		{0x83aa7e80_40000000, time.Date(1970, 1, 1, 0, 0, 0, 250_000_000, time.UTC)},
		// A report GStreamer 1.22 sent (captured in a test run):
		// 0.712 s, where a fraction read as nanoseconds says 3.057 s.
		{0xeec0e23e_b63a7daa, time.Date(2026, 12, 7, 7, 43, 58, 711_830_000, time.UTC)},
		// The era rolls over on 2036-02-07T06:28:16Z (RFC 4330 §3).
		{0x00000000_00000000, time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC)},
		{0xffffffff_00000000, time.Date(2036, 2, 7, 6, 28, 15, 0, time.UTC)},
	} {
		if got := FromNTP(c.ntp); !got.Equal(c.want) {
			t.Errorf("FromNTP(%#x) = %v, want %v", c.ntp, got, c.want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(2026, 12, 7, 7, 0, 0, 999_999_999, time.UTC),
		time.Date(2026, 12, 7, 7, 0, 0, 1, time.UTC),
		time.Date(2035, 1, 1, 0, 0, 0, 123_456_789, time.UTC),
		time.Date(2036, 3, 1, 0, 0, 0, 500_000_000, time.UTC),
	} {
		if back := FromNTP(ToNTP(tm)); (back.Sub(tm)).Abs() > time.Nanosecond {
			t.Errorf("round trip of %v gave %v", tm, back)
		}
	}
}

func TestMapper(t *testing.T) {
	m := NewMapper(90000)
	if _, ok := m.Time(1000); ok {
		t.Fatal("a time before any sender report")
	}
	at := time.Date(2026, 12, 7, 7, 0, 0, 250_000_000, time.UTC)
	m.SetSSRC(7)
	if m.SenderReport(8, ToNTP(at), 1000) {
		t.Fatal("a report of another source was used")
	}
	if !m.SenderReport(7, ToNTP(at), 1000) {
		t.Fatal("the source's report was not used")
	}
	for _, c := range []struct {
		ts   uint32
		want time.Duration
	}{{1000, 0}, {1000 + 9000, 100 * time.Millisecond}, {1000 + (1<<32 - 90000), -time.Second}, {1000 + 90000*3600, time.Hour}} {
		got, ok := m.Time(c.ts)
		if !ok || got.Sub(at) != c.want {
			t.Errorf("Time(%d) = %v, want report + %v", c.ts, got, c.want)
		}
	}
	// Across the 32-bit wrap of the RTP clock.
	m.SenderReport(7, ToNTP(at), 0xffffff00)
	if got, _ := m.Time(0x100); got.Sub(at) != time.Duration(0x200)*time.Second/90000 {
		t.Errorf("across the wrap: %v", got.Sub(at))
	}
	// A new source (the camera restarted its stream) forgets the old mapping.
	m.SetSSRC(9)
	if _, ok := m.Time(1000); ok {
		t.Error("the old source's mapping was kept for a new source")
	}
}
