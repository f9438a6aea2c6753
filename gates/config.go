package gates

import (
	"errors"
	"fmt"
	"time"
)

// Config is one gate as its state machine sees it. Durations left at zero
// take the defaults below; a negative GrantGrace, Debounce, HeldOpenRedAfter
// or UpdateEvery turns that feature off.
type Config struct {
	ID   string // e.g. "north-gate" (IDPattern)
	Name string // for people, e.g. "North gate"; ID when empty

	Arming Arming
	// KeypadCodes, if any, are the codes a keypad must send with an arm or
	// disarm: a wrong or missing code changes nothing and raises yellow
	// "wrong code". Empty: every request is taken, with or without a code
	// (Zigbee keypads do not check codes themselves; leave this empty only
	// where the keypad cannot be reached by strangers).
	KeypadCodes []string

	// GrantWindow: a grant admits one opening that starts within this
	// long after it (default 30s).
	GrantWindow time.Duration
	// GrantGrace: an opening without a grant waits this long for one
	// before it is called forced (default 300ms). A reader's webhook and a
	// door contact (Zigbee, GPIO) travel different paths and arrive in
	// either order, a few hundred milliseconds apart at most; a longer
	// grace would only delay every forced-door alert, which must reach the
	// console within 1 s of the door opening.
	GrantGrace time.Duration
	// HeldOpenAfter: open this long raises yellow "held open" (default 60s).
	HeldOpenAfter time.Duration
	// HeldOpenRedAfter: still open this long after opening escalates it to
	// red (default 5m).
	HeldOpenRedAfter time.Duration
	// Debounce: after an input changes, further changes within this long
	// are folded into the level it settles on (default 1s). Hardware
	// bounce is removed by the GPIO adapter (50 ms); this is for flapping.
	Debounce time.Duration
	// FoldWindow: a cause that recurs within this long of its last
	// occurrence counts into the same open alert (default 10m).
	FoldWindow time.Duration
	// UpdateEvery: count-only updates of a folded alert are sent at most
	// this often (default 30s); a change of severity is sent at once.
	UpdateEvery time.Duration

	// Devices expected to report; each with SilentAfter > 0 raises
	// "device silent" when it stays quiet that long. Devices not listed
	// are still tracked, but only an explicit offline makes them silent.
	Devices []Device
}

// Device is a controller, sensor or input of a gate.
type Device struct {
	ID          string
	SilentAfter time.Duration // 0: not watched for silence
}

// Defaults.
const (
	DefaultGrantWindow      = 30 * time.Second
	DefaultGrantGrace       = 300 * time.Millisecond
	DefaultHeldOpenAfter    = time.Minute
	DefaultHeldOpenRedAfter = 5 * time.Minute
	DefaultDebounce         = time.Second
	DefaultFoldWindow       = 10 * time.Minute
	DefaultUpdateEvery      = 30 * time.Second
)

// WithDefaults fills zero fields; the time zone of a schedule defaults to
// DefaultTimeZone.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.GrantWindow, DefaultGrantWindow)
	def(&c.GrantGrace, DefaultGrantGrace)
	def(&c.HeldOpenAfter, DefaultHeldOpenAfter)
	def(&c.HeldOpenRedAfter, DefaultHeldOpenRedAfter)
	def(&c.Debounce, DefaultDebounce)
	def(&c.FoldWindow, DefaultFoldWindow)
	def(&c.UpdateEvery, DefaultUpdateEvery)
	if c.Arming.Location == nil {
		if loc, err := LoadLocation(DefaultTimeZone); err == nil { // embedded tzdata: cannot fail
			c.Arming.Location = loc
		}
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	return c
}

// Validate checks a config after WithDefaults.
func (c Config) Validate() error {
	switch {
	case !IDPattern.MatchString(c.ID):
		return fmt.Errorf("gate id %q: must be 1-63 lower-case letters, digits, '.', '_' or '-'", c.ID)
	case c.GrantWindow < 0 || c.HeldOpenAfter < 0 || c.FoldWindow < 0:
		return errors.New("grant window, held-open limit and fold window must be positive")
	case c.HeldOpenRedAfter > 0 && c.HeldOpenRedAfter <= c.HeldOpenAfter:
		return fmt.Errorf("held-open red limit %v must be longer than the yellow limit %v", c.HeldOpenRedAfter, c.HeldOpenAfter)
	}
	for i, code := range c.KeypadCodes {
		if code == "" || len(code) > MaxFieldLen {
			// The code itself is never printed, here or anywhere.
			return fmt.Errorf("keypad code %d: must be 1-%d characters", i+1, MaxFieldLen)
		}
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		if d.ID == "" || len(d.ID) > MaxFieldLen {
			return fmt.Errorf("device id %q: must be 1-%d characters", d.ID, MaxFieldLen)
		}
		if seen[d.ID] {
			return fmt.Errorf("device %q is listed twice", d.ID)
		}
		seen[d.ID] = true
		if d.SilentAfter < 0 {
			return fmt.Errorf("device %q: silent_after must not be negative", d.ID)
		}
	}
	return nil
}
