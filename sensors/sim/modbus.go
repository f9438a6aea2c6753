package sim

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/sensors"
)

// RegisterScale is every simulated register's scale: a holding register
// holds the value × 10 as an int16 (35.2 °C is 352), the way most
// electrical-fire and gas detectors report one decimal.
const RegisterScale = 0.1

// ModbusDevice is one simulated Modbus device: sensor i is the holding
// register at address i.
type ModbusDevice struct {
	ID      string // the device's ID in edge.yaml
	UnitID  uint8
	Sensors []Sensor
}

// ModbusConfig configures a simulated Modbus TCP server.
type ModbusConfig struct {
	Address string // host:port; port 0 picks a free one
	Devices []ModbusDevice
	Speed   float64          // scenario speed, default 1
	Now     func() time.Time // default time.Now
	Log     *slog.Logger
}

// ModbusServer serves the devices' registers over Modbus TCP, each read
// answering the scenario's value at that moment. A silent sensor's
// register answers "gateway target device failed to respond", as a
// detector behind a gateway that stopped talking does.
type ModbusServer struct {
	srv     *modbus.ModbusServer
	addr    string
	devices map[uint8]*simDevice
	cfg     ModbusConfig
	start   time.Time

	mu    sync.Mutex
	reads int
}

type simDevice struct {
	ModbusDevice
	curves []Curve
}

// StartModbus starts the server.
func StartModbus(cfg ModbusConfig) (*ModbusServer, error) {
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Devices) == 0 {
		return nil, errors.New("sim modbus: no devices")
	}
	s := &ModbusServer{devices: map[uint8]*simDevice{}, cfg: cfg, start: cfg.Now()}
	for i, d := range cfg.Devices {
		if _, dup := s.devices[d.UnitID]; dup {
			return nil, fmt.Errorf("sim modbus: devices[%d].unit_id: %d twice", i, d.UnitID)
		}
		if len(d.Sensors) > 125 {
			return nil, fmt.Errorf("sim modbus: devices[%d]: %d sensors (at most 125, one read)", i, len(d.Sensors))
		}
		cs, err := curves(d.Sensors, cfg.Speed)
		if err != nil {
			return nil, fmt.Errorf("sim modbus: devices[%d].%w", i, err)
		}
		s.devices[d.UnitID] = &simDevice{ModbusDevice: d, curves: cs}
	}
	addr, err := freeAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	s.addr = addr
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{
		URL: "tcp://" + addr, Timeout: 5 * time.Minute, MaxClients: 64,
		Logger: log.New(io.Discard, "", 0),
	}, s)
	if err != nil {
		return nil, fmt.Errorf("sim modbus: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("sim modbus: listen %s: %w", addr, err)
	}
	s.srv = srv
	cfg.Log.Info("modbus simulator listening", "address", addr, "devices", len(cfg.Devices))
	return s, nil
}

// freeAddress resolves port 0 to a free port (the library listens by
// URL and does not say which port it got).
func freeAddress(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("sim modbus: address %q: %w", addr, err)
	}
	if port != "0" && port != "" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("sim modbus: %w", err)
	}
	defer l.Close()
	return net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port)), nil
}

// Addr is the server's host:port.
func (s *ModbusServer) Addr() string { return s.addr }

// Reads is how many register reads the server has answered.
func (s *ModbusServer) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// Close stops the server.
func (s *ModbusServer) Close() error { return s.srv.Stop() }

// HandleHoldingRegisters answers reads of the simulated registers; writes are refused.
func (s *ModbusServer) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, modbus.ErrIllegalFunction
	}
	return s.read(req.UnitId, req.Addr, req.Quantity)
}

// HandleInputRegisters answers like the holding registers (some
// detectors map their values to both tables).
func (s *ModbusServer) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	return s.read(req.UnitId, req.Addr, req.Quantity)
}

// HandleCoils: the simulator has no coils.
func (s *ModbusServer) HandleCoils(*modbus.CoilsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}

// HandleDiscreteInputs: the simulator has no discrete inputs.
func (s *ModbusServer) HandleDiscreteInputs(*modbus.DiscreteInputsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}

func (s *ModbusServer) read(unit uint8, addr, n uint16) ([]uint16, error) {
	d, ok := s.devices[unit]
	if !ok {
		return nil, modbus.ErrGWTargetFailedToRespond
	}
	if int(addr)+int(n) > len(d.Sensors) {
		return nil, modbus.ErrIllegalDataAddress
	}
	elapsed := s.cfg.Now().Sub(s.start)
	out := make([]uint16, n)
	for i := range out {
		v, ok := d.curves[int(addr)+i](elapsed)
		if !ok {
			return nil, modbus.ErrGWTargetFailedToRespond
		}
		out[i] = Encode(v)
	}
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return out, nil
}

// Encode is a value as its register holds it: an int16 of value ÷
// RegisterScale, clamped to the int16 range.
func Encode(v float64) uint16 {
	raw := math.Round(v / RegisterScale)
	raw = max(math.MinInt16, min(math.MaxInt16, raw))
	return uint16(int16(raw))
}

// Model is a device's register map as edge.yaml declares it
// (sensor_inputs.modbus.models).
func (d ModbusDevice) Model() []sensors.RegisterConfig {
	out := make([]sensors.RegisterConfig, len(d.Sensors))
	for i, s := range d.Sensors {
		out[i] = sensors.RegisterConfig{Name: s.ID, Address: uint16(i), Table: "holding", Type: "int16",
			Scale: RegisterScale, Unit: unitOf(s.Kind)}
	}
	return out
}

// EdgeConfig is what an edge needs to read the server's devices: its
// sensors and sensor_inputs.modbus, each device polled every poll.
func (s *ModbusServer) EdgeConfig(poll time.Duration) ([]sensors.SensorConfig, sensors.ModbusConfig) {
	mc := sensors.ModbusConfig{Models: map[string][]sensors.RegisterConfig{}}
	var list []sensors.SensorConfig
	for _, d := range s.cfg.Devices {
		model := "vigil-sim-" + d.ID
		mc.Models[model] = d.Model()
		mc.Devices = append(mc.Devices, sensors.ModbusDeviceConfig{ID: d.ID, Address: s.addr, UnitID: d.UnitID,
			Model: model, Poll: config.Duration(poll), Timeout: config.Duration(time.Second)})
		for _, sn := range d.Sensors {
			list = append(list, sn.SensorConfig(sensors.SourceRef{Modbus: &sensors.ModbusRef{Device: d.ID, Register: sn.ID}}, poll))
		}
	}
	return list, mc
}

// WriteRegisterMap prints the register map for the installer: per
// device its unit ID, and per register its address, sensor, kind,
// scenario and encoding.
func (s *ModbusServer) WriteRegisterMap(w io.Writer) {
	fmt.Fprintf(w, "Modbus TCP %s — holding registers (function 3; also as input registers, function 4), int16, value = raw × %g\n", s.addr, RegisterScale)
	for _, d := range s.cfg.Devices {
		fmt.Fprintf(w, "device %s, unit ID %d:\n", d.ID, d.UnitID)
		fmt.Fprintf(w, "  %-8s %-24s %-18s %-6s %s\n", "address", "register (sensor)", "kind", "unit", "scenario")
		for i, sn := range d.Sensors {
			fmt.Fprintf(w, "  %-8d %-24s %-18s %-6s %s\n", i, sn.ID, sn.Kind, unitOf(sn.Kind), sn.Scenario)
		}
	}
}
