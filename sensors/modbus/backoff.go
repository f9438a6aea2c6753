package modbus

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait before each reconnect attempt of an outage: it
// doubles from min up to max, and each wait is drawn from its upper half
// so that many devices behind one dead switch do not retry in step.
type backoff struct {
	min, max time.Duration
	attempt  int
}

// next returns the wait before the next attempt and counts it.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

// reset starts over after a good poll.
func (b *backoff) reset() { b.attempt = 0 }
