// Package rtcptime maps RTP timestamps to wall-clock time from RTCP sender
// reports, as RFC 3550 defines them.
//
// It exists because gortsplib v4.16.2 reads the 64-bit NTP timestamp of a
// sender report with its 32-bit fraction taken as nanoseconds (and writes
// it with the mirror-image error), which puts every frame of a standard
// camera up to 3.3 s off. Vigil reads and writes sender reports itself.
package rtcptime

import (
	"sync"
	"time"
)

// ntpEpochOffset is the number of seconds from 1900-01-01 (the NTP era 0
// epoch) to 1970-01-01 (the Unix epoch).
const ntpEpochOffset = 2208988800

// FromNTP converts a 64-bit NTP timestamp (RFC 3550 §4: seconds since
// 1900-01-01 in the high 32 bits, the fraction of a second in units of
// 2^-32 s in the low 32 bits) to UTC. Era 0 only, good until 2036-02-07:
// a timestamp whose seconds field wrapped (below 1968) is read in era 1.
func FromNTP(v uint64) time.Time {
	sec := int64(v >> 32)
	if sec < 0x80000000 {
		// RFC 4330 §3: values with the top bit clear are after 2036-02-07.
		sec += 1 << 32
	}
	frac := v & 0xffffffff
	nsec := int64((frac*1e9 + 1<<31) >> 32)
	return time.Unix(sec-ntpEpochOffset, nsec).UTC()
}

// ToNTP converts a time to a 64-bit NTP timestamp (RFC 3550 §4).
func ToNTP(t time.Time) uint64 {
	sec := uint64(t.Unix()+ntpEpochOffset) & 0xffffffff
	frac := (uint64(t.Nanosecond())<<32 + 5e8) / 1e9
	return sec<<32 | frac
}

// Mapper turns the RTP timestamps of one synchronisation source into
// wall-clock time, from the latest sender report of that source. It is
// safe for concurrent use: over UDP, RTP and RTCP arrive on different
// goroutines.
type Mapper struct {
	clockRate int64

	mu      sync.Mutex
	ssrc    uint32
	haveSrc bool
	haveSR  bool
	srRTP   uint32
	srTime  time.Time
	reports uint64
}

// NewMapper makes a mapper for a stream with the given RTP clock rate
// (90000 for video).
func NewMapper(clockRate int) *Mapper {
	return &Mapper{clockRate: int64(clockRate)}
}

// SetSSRC names the synchronisation source whose reports count, once its
// first RTP packet is seen; reports of other sources are ignored. Until
// then every report counts.
func (m *Mapper) SetSSRC(ssrc uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.haveSrc && m.ssrc == ssrc {
		return
	}
	if m.haveSrc {
		m.haveSR = false // a new source: the old mapping says nothing about it
	}
	m.ssrc, m.haveSrc = ssrc, true
}

// SenderReport takes a sender report's SSRC, NTP and RTP timestamps. It
// reports whether the report was used.
func (m *Mapper) SenderReport(ssrc uint32, ntp uint64, rtpTime uint32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.haveSrc && ssrc != m.ssrc {
		return false
	}
	m.srRTP, m.srTime, m.haveSR = rtpTime, FromNTP(ntp), true
	m.reports++
	return true
}

// Time maps an RTP timestamp to UTC, or reports false before the first
// sender report. Timestamps within ±2^31 ticks (6.6 h at 90 kHz) of the
// report's are mapped across the 32-bit wrap.
func (m *Mapper) Time(rtpTime uint32) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.haveSR || m.clockRate <= 0 {
		return time.Time{}, false
	}
	ticks := int64(int32(rtpTime - m.srRTP))
	return m.srTime.Add(time.Duration(ticks * int64(time.Second) / m.clockRate)), true
}

// Reports is the number of sender reports used so far.
func (m *Mapper) Reports() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reports
}
