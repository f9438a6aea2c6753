package history

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// Keys: a table byte ('r' raw readings, 'm' minute aggregates), the
// sensor ID, a zero byte and the time (of the reading, or of the
// minute's start) in Unix nanoseconds, big-endian: a sensor's entries of
// one table sort by time.
const (
	tableRaw    = 'r'
	tableMinute = 'm'
)

func key(table byte, sensor string, t time.Time) []byte {
	k := make([]byte, 0, len(sensor)+10)
	k = append(k, table)
	k = append(k, sensor...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(max(t.UnixNano(), 0)))
}

// prefix is the keys of a sensor's entries of a table.
func prefix(table byte, sensor string) []byte {
	return append(append([]byte{table}, sensor...), 0)
}

func keyTime(k []byte, at int) (time.Time, bool) {
	if len(k) != at+8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[at:]))).UTC(), true
}

// A raw value is the reading's float64 bits; a minute's is the mean, the
// minimum and the maximum as float64 bits and the count as a uint32.
const (
	rawLen    = 8
	minuteLen = 28
)

var errValue = errors.New("history: a stored value of the wrong length")

func encodeRaw(v float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(v)) }

func decodeRaw(b []byte) (float64, error) {
	if len(b) != rawLen {
		return 0, errValue
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// agg is a minute's (or a wider bucket's) readings: their mean, extremes
// and count.
type agg struct {
	start  time.Time
	mean   float64
	lo, hi float64
	n      int
}

// add merges o into a (o.n > 0).
func (a *agg) add(o agg) {
	switch {
	case o.n <= 0:
		return
	case a.n == 0:
		a.mean, a.lo, a.hi, a.n = o.mean, o.lo, o.hi, o.n
		return
	}
	total := a.n + o.n
	a.mean = (a.mean*float64(a.n) + o.mean*float64(o.n)) / float64(total)
	a.lo, a.hi, a.n = min(a.lo, o.lo), max(a.hi, o.hi), total
}

func encodeAgg(a agg) []byte {
	b := make([]byte, 0, minuteLen)
	for _, v := range [3]float64{a.mean, a.lo, a.hi} {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	}
	return binary.BigEndian.AppendUint32(b, uint32(min(a.n, math.MaxUint32)))
}

func decodeAgg(b []byte) (agg, error) {
	if len(b) != minuteLen {
		return agg{}, errValue
	}
	f := func(i int) float64 { return math.Float64frombits(binary.BigEndian.Uint64(b[8*i:])) }
	return agg{mean: f(0), lo: f(1), hi: f(2), n: int(binary.BigEndian.Uint32(b[24:]))}, nil
}
