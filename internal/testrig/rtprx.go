package testrig

import (
	"maps"
	"net"
	"sort"
	"sync"
	"testing"

	"github.com/pion/rtp"
)

// RTPReceiver keeps the RTP packets sent to it over UDP on 127.0.0.1 (a
// platform's receiving port in GB/T 28181 tests).
type RTPReceiver struct {
	conn  *net.UDPConn
	count bool // keep counts only (ListenRTPCounting)
	mu    sync.Mutex
	pkts  []rtp.Packet
	// Counting receivers: payload bytes, frames and SSRCs seen.
	bytes, frames int
	ssrcs         map[uint32]bool
}

// ListenRTP opens a receiver on a free port that keeps every packet; it
// closes when the test ends.
func ListenRTP(t testing.TB) *RTPReceiver { return listenRTP(t, false) }

// ListenRTPCounting opens a receiver that only counts (benchmarks: its
// memory does not grow with the stream); Stream's payload is then nil.
func ListenRTPCounting(t testing.TB) *RTPReceiver { return listenRTP(t, true) }

func listenRTP(t testing.TB, count bool) *RTPReceiver {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	r := &RTPReceiver{conn: c, count: count, ssrcs: map[uint32]bool{}}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			r.mu.Lock()
			if r.count {
				r.bytes += len(p.Payload)
				r.ssrcs[p.SSRC] = true
				if p.Marker {
					r.frames++
				}
			} else {
				p.Payload = append([]byte(nil), p.Payload...)
				r.pkts = append(r.pkts, p)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// Bytes is the payload bytes a counting receiver got.
func (r *RTPReceiver) Bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}

// Port is the UDP port it listens on.
func (r *RTPReceiver) Port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

// Stream is the payload bytes received, in sequence order from the first
// packet, the frames (packets with the marker bit) and the SSRCs seen.
func (r *RTPReceiver) Stream() (payload []byte, frames int, ssrcs map[uint32]bool) {
	r.mu.Lock()
	pkts := append([]rtp.Packet(nil), r.pkts...)
	if r.count {
		frames, ssrcs = r.frames, maps.Clone(r.ssrcs)
	}
	r.mu.Unlock()
	if r.count {
		return nil, frames, ssrcs
	}
	ssrcs = map[uint32]bool{}
	if len(pkts) == 0 {
		return nil, 0, ssrcs
	}
	first := pkts[0].SequenceNumber
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].SequenceNumber-first < pkts[j].SequenceNumber-first })
	for _, p := range pkts {
		payload = append(payload, p.Payload...)
		ssrcs[p.SSRC] = true
		if p.Marker {
			frames++
		}
	}
	return payload, frames, ssrcs
}
