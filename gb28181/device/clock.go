package device

import (
	"net/http"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// parseDate reads a SIP Date header as platforms write it: GB/T 28181's
// local time without zone ("2026-12-07T22:30:46.123", in the platform's
// zone) or RFC 3261's RFC 1123 form ("Mon, 07 Dec 2026 14:30:46 GMT").
func parseDate(v string, loc *time.Location) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, true
		}
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// noteDate records the platform's clock from a response's Date header:
// the offset is against the middle of the request's round trip. It is
// kept in Status and the metrics, never applied to the local clock.
func (d *Device) noteDate(res *sip.Response, sent, recv time.Time) {
	h := res.GetHeader("Date")
	if h == nil {
		return
	}
	at, ok := parseDate(h.Value(), d.loc)
	if !ok {
		d.log.Debug("platform Date header not understood", "date", h.Value())
		return
	}
	mid := sent.Add(recv.Sub(sent) / 2)
	off := at.Sub(mid)
	d.m.offset.Set(off.Seconds())
	d.update(func(st *Status) { st.ClockOffset, st.ClockSampledAt = off, recv })
}
