package ps

import "testing"

// BenchmarkMux muxes a 30 kB P-frame and, every 25th frame, a 120 kB
// keyframe without parameter sets (inserted from the stored ones), into a
// reused buffer. Bytes/s counts the access-unit bytes muxed.
func BenchmarkMux(b *testing.B) {
	mk := func(typ byte, n int) []byte {
		p := make([]byte, n)
		p[0] = typ
		for i := 1; i < n; i++ {
			p[i] = byte(i) | 0x10
		}
		return p
	}
	sps, pps := mk(0x67, 20), mk(0x68, 5)
	first := [][]byte{sps, pps, mk(0x65, 120_000)}
	key := [][]byte{mk(0x06, 30), mk(0x65, 120_000)}
	inter := [][]byte{mk(0x41, 30_000)}
	m, _ := New(H264)
	buf, _, _ := m.Append(nil, first, 0, 0)
	size := func(au [][]byte) (n int) {
		for _, x := range au {
			n += len(x)
		}
		return n
	}
	b.SetBytes(int64((size(key) + 24*size(inter)) / 25)) // the mean frame
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		au := inter
		if i%25 == 0 {
			au = key
		}
		ts := int64(i) * 3600
		buf, _, _ = m.Append(buf[:0], au, ts, ts)
	}
}
