// Package modbus reads safety sensors from Modbus TCP devices —
// electrical-fire monitoring detectors (residual current, cable
// temperature), gas detectors — through github.com/simonvetter/modbus.
// A Device polls the registers its sensors use at a fixed interval,
// grouping neighbouring addresses of one table into as few requests as
// the protocol allows, and decodes them by the model's register map
// (uint16, int16, uint32, int32, float32 in either word order, coils and
// discrete inputs as 1/0; value = raw × scale + offset).
//
// A device that stops answering (timeouts, a broken connection) is
// reconnected with capped exponential backoff and jitter; its outage is
// logged once, counted by kind and shown in vigil_sensor_modbus_up, and
// it yields no readings until it answers again. The sensors that stop
// reporting become "silent" in the evaluator — that is how an operator
// learns of it.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	mb "github.com/simonvetter/modbus"

	"github.com/vigil-perimeter/vigil/sensors"
)

// Defaults of a device's timing.
const (
	DefaultPoll       = time.Second
	DefaultTimeout    = time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 30 * time.Second
)

// Options are what a Device needs from its owner; zero fields take defaults.
type Options struct {
	Registerer prometheus.Registerer
	Log        *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnect
	// attempts (default 1 s doubling up to 30 s).
	MinBackoff, MaxBackoff time.Duration
}

// Device polls one Modbus TCP device; it is a sensors.Source.
type Device struct {
	id      string
	url     string
	unitID  uint8
	poll    time.Duration
	timeout time.Duration
	blocks  []block
	log     *slog.Logger
	metrics *metrics
	backoff backoff
}

var _ sensors.Source = (*Device)(nil)

// New checks a device and the registers its sensors use (register name →
// sensor ID) against its model; nothing connects until Run.
func New(dev sensors.ModbusDeviceConfig, model []sensors.RegisterConfig, sensorOf map[string]string, opts Options) (*Device, error) {
	if dev.ID == "" {
		return nil, errors.New("modbus: device id is empty")
	}
	host, port, err := net.SplitHostPort(dev.Address)
	if err != nil { // no port: Modbus TCP's own
		host, port = strings.Trim(dev.Address, "[]"), "502"
	}
	if host == "" {
		return nil, fmt.Errorf("modbus: device %q: address %q has no host", dev.ID, dev.Address)
	}
	d := &Device{id: dev.ID, url: "tcp://" + net.JoinHostPort(host, port), unitID: dev.UnitID,
		poll: dev.Poll.D(), timeout: dev.Timeout.D(), log: opts.Log,
		backoff: backoff{min: opts.MinBackoff, max: opts.MaxBackoff}}
	if d.unitID == 0 {
		// Unset. 0 is the broadcast address on the serial side of a
		// gateway, which no detector answers; 1 is what devices and
		// tools (mbpoll, the library) assume.
		d.unitID = 1
	}
	if d.poll <= 0 {
		d.poll = DefaultPoll
	}
	if d.timeout <= 0 {
		d.timeout = DefaultTimeout
	}
	if d.backoff.min <= 0 {
		d.backoff.min = DefaultMinBackoff
	}
	if d.backoff.max < d.backoff.min {
		d.backoff.max = max(DefaultMaxBackoff, d.backoff.min)
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("component", "sensors/modbus", "device", dev.ID, "address", dev.Address)
	regs, err := compileModel(dev, model, sensorOf)
	if err != nil {
		return nil, err
	}
	d.blocks = plan(regs)
	if d.metrics, err = newMetrics(opts.Registerer, dev.ID); err != nil {
		return nil, err
	}
	return d, nil
}

// compileModel checks a model and compiles the registers sensors use.
func compileModel(dev sensors.ModbusDeviceConfig, model []sensors.RegisterConfig, sensorOf map[string]string) ([]register, error) {
	var regs []register
	seen := map[string]bool{}
	for i, rc := range model {
		if seen[rc.Name] {
			return nil, fmt.Errorf("modbus: device %q: model %q: register[%d] %q is listed twice", dev.ID, dev.Model, i, rc.Name)
		}
		seen[rc.Name] = true
		sensor, used := sensorOf[rc.Name]
		if !used {
			continue
		}
		r, err := compile(rc, sensor)
		if err != nil {
			return nil, fmt.Errorf("modbus: device %q: model %q: register[%d] %q: %w", dev.ID, dev.Model, i, rc.Name, err)
		}
		regs = append(regs, r)
	}
	for name := range sensorOf {
		if !seen[name] {
			return nil, fmt.Errorf("modbus: device %q: model %q has no register %q", dev.ID, dev.Model, name)
		}
	}
	if len(regs) == 0 {
		return nil, fmt.Errorf("modbus: device %q: no sensor reads it", dev.ID)
	}
	return regs, nil
}

// Requests is how many read requests one poll makes.
func (d *Device) Requests() int { return len(d.blocks) }

// Run polls until ctx ends and returns ctx's error. Each poll's readings
// carry the poll's start time (UTC); emit is called from Run's goroutine
// only. Run may outlast ctx by one connection attempt (at most 5 s, the
// library's dial timeout) or one request timeout.
func (d *Device) Run(ctx context.Context, emit func(sensors.Reading)) error {
	var client *mb.ModbusClient
	defer func() {
		if client != nil {
			client.Close()
		}
		d.metrics.up.Set(0)
	}()
	var out outage
	for ctx.Err() == nil {
		start := time.Now()
		var kind string
		var err error
		if client == nil {
			client, kind, err = d.connect()
		}
		if err == nil {
			d.metrics.polls.Inc()
			kind, err = d.pollOnce(client, start.UTC(), emit)
		}
		if err != nil {
			d.metrics.errors[kind].Inc()
			out.fail(d.log, kind, err, start)
			if kind != kindException && kind != kindBadValue { // the connection is suspect: start afresh
				d.metrics.up.Set(0)
				if client != nil {
					client.Close()
					client = nil
				}
				sleep(ctx, d.backoff.next())
				continue
			}
		} else {
			out.recover(d.log, start)
		}
		d.metrics.up.Set(1)
		d.backoff.reset()
		sleep(ctx, d.poll-time.Since(start))
	}
	return ctx.Err()
}

// connect opens a client to the device.
func (d *Device) connect() (*mb.ModbusClient, string, error) {
	c, err := mb.NewClient(&mb.ClientConfiguration{URL: d.url, Timeout: d.timeout,
		Logger: log.New(libLog{d.log}, "", 0)})
	if err != nil {
		return nil, kindConnect, err
	}
	if err := c.SetUnitId(d.unitID); err != nil {
		return nil, kindConnect, err
	}
	if err := c.Open(); err != nil {
		return nil, kindConnect, err
	}
	return c, "", nil
}

// pollOnce reads every block and emits the readings. A Modbus exception
// or a bad value costs only its block or register; any other error ends
// the poll (the connection is suspect), returning the error's kind.
func (d *Device) pollOnce(c *mb.ModbusClient, at time.Time, emit func(sensors.Reading)) (string, error) {
	var firstKind string
	var firstErr error
	for _, b := range d.blocks {
		var words []uint16
		var bits []bool
		var err error
		switch b.table {
		case tableHolding:
			words, err = c.ReadRegisters(b.start, b.count, mb.HOLDING_REGISTER)
		case tableInput:
			words, err = c.ReadRegisters(b.start, b.count, mb.INPUT_REGISTER)
		case tableCoil:
			bits, err = c.ReadCoils(b.start, b.count)
		case tableDiscrete:
			bits, err = c.ReadDiscreteInputs(b.start, b.count)
		}
		if err != nil {
			kind := classify(err)
			if kind != kindException {
				return kind, fmt.Errorf("read %s %d+%d: %w", b.table, b.start, b.count, err)
			}
			if firstErr == nil {
				firstKind, firstErr = kind, fmt.Errorf("read %s %d+%d: %w", b.table, b.start, b.count, err)
			}
			continue
		}
		for _, r := range b.regs {
			var raw float64
			var ok bool
			if bits != nil {
				raw, ok = decodeBits(bits, b.start, r)
			} else {
				raw, ok = decodeWords(words, b.start, r)
			}
			v, finite := r.value(raw)
			if !ok || !finite {
				if firstErr == nil {
					firstKind, firstErr = kindBadValue, fmt.Errorf("register %q (%s %d): %v is no number", r.name, r.table, r.address, raw)
				}
				continue
			}
			emit(sensors.Reading{Sensor: r.sensor, Time: at, Value: v})
		}
	}
	return firstKind, firstErr
}

// classify names the kind of a failed request.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, mb.ErrRequestTimedOut), os.IsTimeout(err), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	case errors.Is(err, mb.ErrIllegalFunction), errors.Is(err, mb.ErrIllegalDataAddress),
		errors.Is(err, mb.ErrIllegalDataValue), errors.Is(err, mb.ErrServerDeviceFailure),
		errors.Is(err, mb.ErrAcknowledge), errors.Is(err, mb.ErrServerDeviceBusy),
		errors.Is(err, mb.ErrMemoryParityError), errors.Is(err, mb.ErrGWPathUnavailable),
		errors.Is(err, mb.ErrGWTargetFailedToRespond):
		return kindException
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return kindConnection
	}
	return kindProtocol
}

// outage logs a device's trouble once when it starts and once when it
// ends, not on every failed poll.
type outage struct {
	since    time.Time // zero while the device answers
	failures int
	partial  bool // the device answers, some registers do not
}

func (o *outage) fail(log *slog.Logger, kind string, err error, at time.Time) {
	o.failures++
	partial := kind == kindException || kind == kindBadValue
	if !o.since.IsZero() && partial == o.partial {
		log.Debug("Modbus device still failing", "kind", kind, "err", err)
		return
	}
	if o.since.IsZero() {
		o.since = at
	}
	o.partial = partial
	if partial {
		log.Warn("Modbus device answers, but not every register: check the register map", "kind", kind, "err", err)
		return
	}
	log.Warn("Modbus device not answering; reconnecting with backoff", "kind", kind, "err", err)
}

func (o *outage) recover(log *slog.Logger, at time.Time) {
	if o.since.IsZero() {
		return
	}
	log.Info("Modbus device answering again", "after", at.Sub(o.since).Round(time.Millisecond), "failed", o.failures)
	*o = outage{}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// libLog passes the library's own log lines (it writes to stdout
// otherwise) to slog at debug level: our outage log says the same once.
type libLog struct{ log *slog.Logger }

func (l libLog) Write(p []byte) (int, error) {
	l.log.Debug("modbus library", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
