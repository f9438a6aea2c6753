package edge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// ntpEpochOffset is the seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// sntpOffset asks one NTP server for the time (SNTP, RFC 4330: a single
// client request) and returns how far the server's clock is ahead of this
// box's (positive: this box is behind), and the round trip. server is host
// or host:port (default port 123).
func sntpOffset(ctx context.Context, server string) (offset, rtt time.Duration, err error) {
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "123")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	conn.SetDeadline(deadline)

	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // no leap warning, version 4, mode 3 (client)
	t1 := time.Now()
	putNTPTime(req[40:], t1) // transmit timestamp: the server echoes it as originate
	if _, err := conn.Write(req); err != nil {
		return 0, 0, err
	}
	resp := make([]byte, 48)
	n, err := conn.Read(resp)
	t4 := time.Now()
	if err != nil {
		return 0, 0, err
	}
	if n < 48 {
		return 0, 0, fmt.Errorf("sntp: %d-byte answer", n)
	}
	switch {
	case resp[0]&0x7 != 4:
		return 0, 0, fmt.Errorf("sntp: answer in mode %d, not a server's", resp[0]&0x7)
	case resp[0]>>6 == 3 || resp[1] == 0:
		return 0, 0, errors.New("sntp: the server is not synchronised (kiss-o'-death or alarm)")
	case binary.BigEndian.Uint64(resp[24:]) != binary.BigEndian.Uint64(req[40:]):
		return 0, 0, errors.New("sntp: the answer is not to this request")
	}
	t2, t3 := ntpTime(resp[32:]), ntpTime(resp[40:])
	offset = (t2.Sub(t1) + t3.Sub(t4)) / 2
	rtt = t4.Sub(t1) - t3.Sub(t2)
	return offset, rtt, nil
}

func putNTPTime(b []byte, t time.Time) {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	binary.BigEndian.PutUint64(b, secs<<32|frac)
}

func ntpTime(b []byte) time.Time {
	v := binary.BigEndian.Uint64(b)
	secs, frac := int64(v>>32)-ntpEpochOffset, (v&0xffffffff)*1e9>>32
	return time.Unix(secs, int64(frac)).UTC()
}
