// Package gpio reads dry contacts wired to the edge box (door and barrier
// contacts, booth buttons, a card reader's "granted" relay, wired smoke or
// gas detectors, tamper loops) through the Linux GPIO character device,
// removes contact bounce and emits gate events.
package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
)

// Role says what an input's active level means.
type Role string

// Roles.
const (
	RoleDoor      Role = "door"       // active = open
	RoleButton    Role = "button"     // active = SOS pressed
	RoleGrant     Role = "grant"      // active = reader relay: access granted
	RoleTamper    Role = "tamper"     // active = tamper loop open
	RoleSmoke     Role = "smoke"      // active = alarm
	RoleGas       Role = "gas"        // active = alarm
	RoleWaterLeak Role = "water_leak" // active = alarm
	RolePresence  Role = "presence"   // active = someone there (PIR relay)
)

// momentary roles report a press, not a level: a press shorter than the
// debounce period must still count.
func (r Role) momentary() bool { return r == RoleButton || r == RoleGrant || r == RolePresence }

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleDoor, RoleButton, RoleGrant, RoleTamper, RoleSmoke, RoleGas, RoleWaterLeak, RolePresence:
		return true
	}
	return false
}

// Input is one line and what it means for which gate.
type Input struct {
	Gate   string
	Device string // the input's name, e.g. "north-door-contact"
	Role   Role
	Line   Line
}

// DefaultDebounce is how long a contact must be still before its level counts.
const DefaultDebounce = 50 * time.Millisecond

// Config configures an Adapter.
type Config struct {
	Inputs   []Input
	Debounce time.Duration // default 50 ms
}

// Adapter watches the inputs; see Run.
type Adapter struct {
	cfg  Config
	sink gates.Sink
	log  *slog.Logger
}

// New checks cfg. The caller opens the lines and closes them after Run.
func New(cfg Config, sink gates.Sink, log *slog.Logger) (*Adapter, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Inputs) == 0 {
		return nil, errors.New("gpio: no inputs")
	}
	for _, in := range cfg.Inputs {
		switch {
		case !gates.IDPattern.MatchString(in.Gate):
			return nil, fmt.Errorf("gpio: input %q: gate %q is not a gate ID", in.Device, in.Gate)
		case in.Device == "" || len(in.Device) > 64:
			return nil, fmt.Errorf("gpio: input of gate %q needs a name of 1-64 characters", in.Gate)
		case !in.Role.Valid():
			return nil, fmt.Errorf("gpio: input %q: unknown role %q", in.Device, in.Role)
		case in.Line == nil:
			return nil, fmt.Errorf("gpio: input %q has no line", in.Device)
		}
	}
	return &Adapter{cfg: cfg, sink: sink, log: log.With("component", "gates/gpio")}, nil
}

// Run watches every input until ctx ends and returns nil then.
func (a *Adapter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, in := range a.cfg.Inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.watch(ctx, in)
		}()
	}
	wg.Wait()
	return nil
}

// watch debounces one input: after an edge, the line must stay still for
// the debounce period; then its level is read and, if it differs from the
// last reported one, reported with the time of the first edge of the burst
// (when the door really began to move).
func (a *Adapter) watch(ctx context.Context, in Input) {
	log := a.log.With("input", in.Device, "gate", in.Gate)
	// A momentary input starts released: a press that began before we
	// looked is reported when its edges settle instead of being mistaken
	// for the resting level.
	stable := false
	if !in.Role.momentary() {
		level, err := in.Line.Level()
		if err != nil {
			log.Error("reading input at start", "err", err)
		} else {
			stable = level
			a.emit(ctx, in, stable, time.Now(), true)
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		settling   bool
		burstStart time.Time
		last       bool
		sawActive  bool
	)
	edges := in.Line.Edges()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-edges:
			if !ok {
				log.Warn("input line closed")
				return
			}
			if !settling {
				settling, burstStart, sawActive = true, e.Time, false
				if burstStart.IsZero() {
					burstStart = time.Now()
				}
			}
			last = e.Active
			sawActive = sawActive || e.Active
			timer.Reset(a.cfg.Debounce)
		case <-timer.C:
			settling = false
			level, err := in.Line.Level()
			if err != nil {
				log.Warn("reading input", "err", err)
				level = last
			}
			if in.Role.momentary() {
				// A burst that went active from rest is one press, even if it
				// was released before the line settled; bounce while
				// releasing a held button is not.
				if sawActive && !stable {
					a.emit(ctx, in, true, burstStart, false)
				}
				stable = level
				continue
			}
			if level != stable {
				stable = level
				a.emit(ctx, in, level, burstStart, false)
			}
		}
	}
}

// emit reports a settled level as the event its role means.
func (a *Adapter) emit(ctx context.Context, in Input, active bool, at time.Time, initial bool) {
	ev := gates.Event{Gate: in.Gate, Device: in.Device, Time: at.UTC(), Initial: initial, Source: "gpio/" + in.Device}
	on := func(yes, no gates.Kind) gates.Kind {
		if active {
			return yes
		}
		return no
	}
	switch in.Role {
	case RoleDoor:
		ev.Kind = on(gates.Opened, gates.Closed)
	case RoleTamper:
		ev.Kind = on(gates.Tamper, gates.TamperClear)
	case RoleSmoke, RoleGas, RoleWaterLeak:
		ev.Kind, ev.Sensor = on(gates.Alarm, gates.AlarmClear), string(in.Role)
	case RoleButton:
		ev.Kind = gates.Button
	case RoleGrant:
		ev.Kind, ev.Credential = gates.Granted, "relay:"+in.Device
	case RolePresence:
		ev.Kind = gates.Presence
	}
	if err := a.sink(ctx, ev); err != nil && ctx.Err() == nil {
		a.log.Error("gate event not taken", "input", in.Device, "type", ev.Kind, "err", err)
	}
}
