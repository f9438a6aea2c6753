package sim

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

// fakeNow is a settable clock.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// The server answers a Modbus TCP client with the scenarios' values,
// scaled ×10 as int16, per unit ID; a silent sensor's register answers
// an exception once it has gone quiet; an unknown unit and an address
// past the map are exceptions too.
func TestModbusServerAnswers(t *testing.T) {
	clock := &fakeNow{t: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	srv, err := StartModbus(ModbusConfig{Address: "127.0.0.1:0", Now: clock.now, Devices: []ModbusDevice{
		{ID: "box-1", UnitID: 1, Sensors: []Sensor{
			{ID: "cable-1", Kind: "cable_temperature", Scenario: CableHeating},
			{ID: "rcm-1", Kind: "residual_current", Scenario: Steady, Base: 120},
		}},
		{ID: "gas-1", UnitID: 7, Sensors: []Sensor{
			{ID: "gas", Kind: "gas", Scenario: GasLeak},
			{ID: "quiet", Kind: "temperature", Scenario: Silent, Base: -4.5},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + srv.Addr(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func(unit uint8, addr, n uint16, table modbus.RegType) ([]int16, error) {
		t.Helper()
		c.SetUnitId(unit)
		raw, err := c.ReadRegisters(addr, n, table)
		out := make([]int16, len(raw))
		for i, r := range raw {
			out[i] = int16(r)
		}
		return out, err
	}
	got, err := read(1, 0, 2, modbus.HOLDING_REGISTER)
	if err != nil || got[0] != 350 || got[1] != 1200 {
		t.Fatalf("unit 1 at the start: %v, %v; want [350 1200]", got, err)
	}
	got, err = read(7, 0, 2, modbus.INPUT_REGISTER)
	if err != nil || got[0] != 0 || got[1] != -45 {
		t.Fatalf("unit 7 at the start: %v, %v; want [0 -45]", got, err)
	}
	clock.add(6 * time.Minute)
	if got, err = read(1, 0, 1, modbus.HOLDING_REGISTER); err != nil || got[0] != 600 {
		t.Errorf("cable at minute 6: %v, %v; want 600 (60.0 °C)", got, err)
	}
	if got, err = read(7, 0, 1, modbus.HOLDING_REGISTER); err != nil || got[0] != 300 {
		t.Errorf("gas at minute 6: %v, %v; want 300 (30.0 %%LEL)", got, err)
	}
	if _, err = read(7, 1, 1, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrGWTargetFailedToRespond) {
		t.Errorf("silent sensor after a minute: %v, want gateway target failed to respond", err)
	}
	if _, err = read(9, 0, 1, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrGWTargetFailedToRespond) {
		t.Errorf("unknown unit: %v", err)
	}
	if _, err = read(1, 1, 2, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrIllegalDataAddress) {
		t.Errorf("past the map: %v", err)
	}
	c.SetUnitId(1)
	if err := c.WriteRegister(0, 1); !errors.Is(err, modbus.ErrIllegalFunction) {
		t.Errorf("write: %v, want illegal function", err)
	}
	if srv.Reads() != 4 {
		t.Errorf("%d reads answered, want 4", srv.Reads())
	}

	// The edge config it prints points at its registers.
	list, mc := srv.EdgeConfig(time.Second)
	if len(list) != 4 || list[1].Source.Modbus.Device != "box-1" || list[1].Source.Modbus.Register != "rcm-1" {
		t.Errorf("sensors %+v", list)
	}
	if m := mc.Models["vigil-sim-gas-1"]; len(m) != 2 || m[1].Address != 1 || m[1].Type != "int16" || m[1].Scale != RegisterScale {
		t.Errorf("model %+v", m)
	}
	if len(mc.Devices) != 2 || mc.Devices[1].UnitID != 7 || mc.Devices[1].Address != srv.Addr() {
		t.Errorf("devices %+v", mc.Devices)
	}
	var b strings.Builder
	srv.WriteRegisterMap(&b)
	if !strings.Contains(b.String(), "unit ID 7") || !strings.Contains(b.String(), "cable-heating") {
		t.Errorf("register map:\n%s", b.String())
	}
}

func TestModbusServerRefusesBadDevices(t *testing.T) {
	for name, devs := range map[string][]ModbusDevice{
		"none":         nil,
		"unit twice":   {{ID: "a", UnitID: 1, Sensors: []Sensor{{ID: "x", Scenario: Steady}}}, {ID: "b", UnitID: 1}},
		"bad scenario": {{ID: "a", UnitID: 1, Sensors: []Sensor{{ID: "x", Scenario: "boil"}}}},
		"too many":     {{ID: "a", UnitID: 1, Sensors: make([]Sensor, 126)}},
	} {
		if s, err := StartModbus(ModbusConfig{Address: "127.0.0.1:0", Devices: devs}); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
