package modbus

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/sensors"
)

func mustCompile(t *testing.T, rc sensors.RegisterConfig) register {
	t.Helper()
	r, err := compile(rc, "s-"+rc.Name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPlan: neighbours share a request, gaps and tables split, 32-bit
// values spanning two registers count both, and no request passes the
// protocol's limits.
func TestPlan(t *testing.T) {
	var regs []register
	for _, rc := range []sensors.RegisterConfig{
		{Name: "a", Address: 10},
		{Name: "b", Address: 11, Type: "float32"}, // 11-12
		{Name: "c", Address: 13},                  // touches b
		{Name: "d", Address: 12},                  // overlaps b
		{Name: "e", Address: 15},                  // a gap at 14
		{Name: "f", Address: 13, Table: "input"},  // another table
		{Name: "g", Address: 5000, Table: "discrete"},
	} {
		regs = append(regs, mustCompile(t, rc))
	}
	// 2001 neighbouring coils and 126 neighbouring input registers: one
	// more than a request may carry.
	for i := 0; i <= maxBitsPerRead; i++ {
		regs = append(regs, mustCompile(t, sensors.RegisterConfig{Name: "coil", Address: uint16(100 + i), Table: "coil"}))
	}
	for i := 0; i <= maxRegistersPerRead; i++ {
		regs = append(regs, mustCompile(t, sensors.RegisterConfig{Name: "ir", Address: uint16(1000 + i), Table: "input"}))
	}
	var got []string
	for _, b := range plan(regs) {
		names := b.regs[0].name
		if len(b.regs) > 1 && b.regs[1].name != b.regs[0].name {
			for _, r := range b.regs[1:] {
				names += "," + r.name
			}
		}
		got = append(got, fmt.Sprintf("%s %d+%d %s", b.table, b.start, b.count, names))
	}
	want := []string{"coil 100+2000 coil", "coil 2100+1 coil", "discrete 5000+1 g", "holding 10+4 a,b,d,c",
		"holding 15+1 e", "input 13+1 f", "input 1000+125 ir", "input 1125+1 ir"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("plan:\n got %q\nwant %q", got, want)
	}
}

// TestDecode pins each type and word order to bytes as a meter sends them.
func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		rc    sensors.RegisterConfig
		words []uint16
		want  float64
	}{
		{sensors.RegisterConfig{Type: "uint16"}, []uint16{0xFFF6}, 65526},
		{sensors.RegisterConfig{Type: "int16"}, []uint16{0xFFF6}, -10},
		{sensors.RegisterConfig{Type: "int16", Scale: 0.5, Offset: -1}, []uint16{0x8000}, -16385},
		{sensors.RegisterConfig{Type: "uint32"}, []uint16{0x0001, 0x1170}, 70000},
		{sensors.RegisterConfig{Type: "uint32", WordOrder: "little"}, []uint16{0x1170, 0x0001}, 70000},
		{sensors.RegisterConfig{Type: "int32"}, []uint16{0xFFFE, 0x7960}, -100000},
		{sensors.RegisterConfig{Type: "int32", WordOrder: "little"}, []uint16{0x7960, 0xFFFE}, -100000},
		{sensors.RegisterConfig{Type: "float32"}, []uint16{0x4276, 0x0000}, 61.5},
		{sensors.RegisterConfig{Type: "float32", WordOrder: "little"}, []uint16{0x0000, 0x4276}, 61.5},
	} {
		r := mustCompile(t, tc.rc)
		raw, ok := decodeWords(tc.words, 0, r)
		v, finite := r.value(raw)
		if !ok || !finite || v != tc.want {
			t.Errorf("%+v of %04x = %v (%v %v), want %v", tc.rc, tc.words, v, ok, finite, tc.want)
		}
	}
	r := mustCompile(t, sensors.RegisterConfig{Type: "float32"})
	if raw, ok := decodeWords([]uint16{0x7FC0, 0}, 0, r); !ok {
		t.Fatal("NaN not decoded")
	} else if _, finite := r.value(raw); finite {
		t.Fatal("a NaN register is a number")
	}
	if _, ok := decodeWords([]uint16{1}, 0, r); ok {
		t.Fatal("a float32 decoded from one register")
	}
}

// TestNewRejects: configuration mistakes are errors naming the register.
func TestNewRejects(t *testing.T) {
	dev := sensors.ModbusDeviceConfig{ID: "m1", Address: "10.0.0.5", Model: "acrel"}
	for _, tc := range []struct {
		model []sensors.RegisterConfig
		want  string
	}{
		{[]sensors.RegisterConfig{{Name: "x", Type: "int8"}}, `register[0] "x": type "int8"`},
		{[]sensors.RegisterConfig{{Name: "x", Table: "coils"}}, `table "coils"`},
		{[]sensors.RegisterConfig{{Name: "x", Table: "coil", Type: "float32"}}, "coils and discrete inputs are bool"},
		{[]sensors.RegisterConfig{{Name: "x", WordOrder: "middle"}}, `word_order "middle"`},
		{[]sensors.RegisterConfig{{Name: "x", Address: 65535, Type: "uint32"}}, "runs past 65535"},
		{[]sensors.RegisterConfig{{Name: "x"}, {Name: "x"}}, "listed twice"},
		{[]sensors.RegisterConfig{{Name: "y"}}, `has no register "x"`},
	} {
		_, err := New(dev, tc.model, map[string]string{"x": "s1"}, Options{Log: quiet})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.model, err, tc.want)
		}
	}
	d, err := New(dev, []sensors.RegisterConfig{{Name: "x"}}, map[string]string{"x": "s1"}, Options{Log: quiet})
	if err != nil || d.url != "tcp://10.0.0.5:502" || d.unitID != 1 || d.poll != time.Second || d.timeout != time.Second {
		t.Fatalf("defaults: %v %+v", err, d)
	}
}

// TestBackoff: doubling from min to max, each wait in its upper half.
func TestBackoff(t *testing.T) {
	b := backoff{min: time.Second, max: 30 * time.Second}
	for i, ceil := range []time.Duration{1, 2, 4, 8, 16, 30, 30, 30} {
		ceil *= time.Second
		if d := b.next(); d < ceil/2 || d > ceil {
			t.Fatalf("wait %d = %v, want %v-%v", i, d, ceil/2, ceil)
		}
	}
	b.reset()
	if d := b.next(); d > time.Second {
		t.Fatalf("after reset: %v", d)
	}
}

// FuzzPlanDecode: any register map (built from the fuzzer's bytes) is
// planned into requests within the protocol's limits that hold every
// register, and decoding any answer never panics.
func FuzzPlanDecode(f *testing.F) {
	f.Add([]byte{0, 0, 10, 2, 0, 11, 4, 1, 0, 200}, []byte{0x42, 0x76, 0, 0, 0xff, 0xf6})
	f.Add([]byte{3, 0xff, 0xff, 1, 0xff, 0xfe}, []byte{})
	f.Fuzz(func(t *testing.T, spec, answer []byte) {
		types := []string{typeUint16, typeInt16, typeUint32, typeInt32, typeFloat32}
		tables := []string{tableHolding, tableInput, tableCoil, tableDiscrete}
		var regs []register
		for i := 0; i+3 <= len(spec) && len(regs) < 300; i += 3 {
			rc := sensors.RegisterConfig{Name: "r", Address: binary.BigEndian.Uint16(spec[i+1:]),
				Table: tables[spec[i]%4], Type: types[(spec[i]>>2)%5], WordOrder: []string{"big", "little"}[(spec[i]>>5)%2]}
			if rc.Table == tableCoil || rc.Table == tableDiscrete {
				rc.Type = ""
			}
			r, err := compile(rc, "s")
			if err != nil {
				continue // a 32-bit value at 65535
			}
			regs = append(regs, r)
		}
		words := make([]uint16, len(answer)/2)
		bits := make([]bool, len(answer)*8)
		for i := range words {
			words[i] = binary.BigEndian.Uint16(answer[2*i:])
		}
		for i := range bits {
			bits[i] = answer[i/8]&(1<<(i%8)) != 0
		}
		n := 0
		for _, b := range plan(regs) {
			limit := maxRegistersPerRead
			if b.table == tableCoil || b.table == tableDiscrete {
				limit = maxBitsPerRead
			}
			if b.count == 0 || int(b.count) > limit || int(b.start)+int(b.count) > 0x10000 {
				t.Fatalf("request %s %d+%d", b.table, b.start, b.count)
			}
			full := make([]uint16, b.count)
			for _, r := range b.regs {
				n++
				if r.table != b.table || r.address < b.start || int(r.address)+int(r.wordCount) > int(b.start)+int(b.count) {
					t.Fatalf("register %+v outside its request %s %d+%d", r, b.table, b.start, b.count)
				}
				if _, ok := decodeWords(full, b.start, r); !ok && r.typ != typeBool {
					t.Fatalf("register %+v not decoded from a full answer", r)
				}
				decodeWords(words, b.start, r) // a short or odd answer: no panic
				decodeBits(bits, b.start, r)
			}
		}
		if n != len(regs) {
			t.Fatalf("%d registers planned of %d", n, len(regs))
		}
	})
}
