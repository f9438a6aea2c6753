package modbus

import (
	"fmt"
	"math"
	"sort"

	"github.com/vigil-perimeter/vigil/sensors"
)

// Tables of the Modbus data model.
const (
	tableHolding  = "holding"
	tableInput    = "input"
	tableCoil     = "coil"
	tableDiscrete = "discrete"
)

// Value types of registers.
const (
	typeUint16  = "uint16"
	typeInt16   = "int16"
	typeUint32  = "uint32"
	typeInt32   = "int32"
	typeFloat32 = "float32"
	typeBool    = "bool"
)

// Protocol limits on one read request (Modbus application protocol
// v1.1b3, §6.1–6.4).
const (
	maxRegistersPerRead = 125
	maxBitsPerRead      = 2000
)

// register is one mapped value of a device, ready to decode.
type register struct {
	sensor    string
	name      string
	table     string
	typ       string
	address   uint16
	lowFirst  bool // 32-bit values: low word first
	scale     float64
	offset    float64
	wordCount uint16 // registers (or bits) it spans
}

// block is one read request and the registers it answers.
type block struct {
	table string
	start uint16
	count uint16
	regs  []register
}

// compile checks one register of a model and fills in its defaults.
func compile(rc sensors.RegisterConfig, sensor string) (register, error) {
	r := register{sensor: sensor, name: rc.Name, table: rc.Table, typ: rc.Type, address: rc.Address,
		scale: rc.Scale, offset: rc.Offset, wordCount: 1}
	if r.table == "" {
		r.table = tableHolding
	}
	bits := r.table == tableCoil || r.table == tableDiscrete
	switch {
	case r.table != tableHolding && r.table != tableInput && !bits:
		return r, fmt.Errorf("table %q: want holding, input, coil or discrete", rc.Table)
	case bits && r.typ != "" && r.typ != typeBool:
		return r, fmt.Errorf("type %q: coils and discrete inputs are bool", rc.Type)
	case bits:
		r.typ = typeBool
	case r.typ == "":
		r.typ = typeUint16
	}
	switch r.typ {
	case typeUint16, typeInt16, typeBool:
	case typeUint32, typeInt32, typeFloat32:
		r.wordCount = 2
	default:
		return r, fmt.Errorf("type %q: want uint16, int16, uint32, int32 or float32", rc.Type)
	}
	switch rc.WordOrder {
	case "", "big":
	case "little":
		r.lowFirst = true
	default:
		return r, fmt.Errorf("word_order %q: want big or little", rc.WordOrder)
	}
	if uint32(r.address)+uint32(r.wordCount) > 0x10000 {
		return r, fmt.Errorf("address %d: a %s there runs past 65535", r.address, r.typ)
	}
	if r.scale == 0 {
		r.scale = 1
	}
	if math.IsNaN(r.scale) || math.IsInf(r.scale, 0) || math.IsNaN(r.offset) || math.IsInf(r.offset, 0) {
		return r, fmt.Errorf("scale %v, offset %v: must be finite numbers", rc.Scale, rc.Offset)
	}
	return r, nil
}

// plan groups registers into as few read requests as possible: registers
// of one table whose addresses touch or overlap share a request, up to
// the protocol's limit per request. Gaps are never read across: a device
// may answer an address it does not implement with an exception, which
// would cost every register in the request.
func plan(regs []register) []block {
	sorted := append([]register(nil), regs...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].table != sorted[j].table {
			return sorted[i].table < sorted[j].table
		}
		return sorted[i].address < sorted[j].address
	})
	var out []block
	for _, r := range sorted {
		end := uint32(r.address) + uint32(r.wordCount) // exclusive
		if n := len(out); n > 0 {
			b := &out[n-1]
			bEnd := uint32(b.start) + uint32(b.count)
			limit := uint32(maxRegistersPerRead)
			if r.typ == typeBool {
				limit = maxBitsPerRead
			}
			if b.table == r.table && uint32(r.address) <= bEnd && max(end, bEnd)-uint32(b.start) <= limit {
				b.count = uint16(max(end, bEnd) - uint32(b.start))
				b.regs = append(b.regs, r)
				continue
			}
		}
		out = append(out, block{table: r.table, start: r.address, count: r.wordCount, regs: []register{r}})
	}
	return out
}

// decodeWords reads r from the registers of a block starting at start;
// ok is false when the block does not hold all of r.
func decodeWords(words []uint16, start uint16, r register) (raw float64, ok bool) {
	if r.address < start {
		return 0, false
	}
	i := int(r.address - start)
	if i+int(r.wordCount) > len(words) {
		return 0, false
	}
	w := words[i]
	var dw uint32
	if r.wordCount == 2 {
		hi, lo := words[i], words[i+1]
		if r.lowFirst {
			hi, lo = lo, hi
		}
		dw = uint32(hi)<<16 | uint32(lo)
	}
	switch r.typ {
	case typeUint16:
		return float64(w), true
	case typeInt16:
		return float64(int16(w)), true
	case typeUint32:
		return float64(dw), true
	case typeInt32:
		return float64(int32(dw)), true
	case typeFloat32:
		return float64(math.Float32frombits(dw)), true
	}
	return 0, false
}

// decodeBits reads a coil or discrete input r (1 or 0) from a block's bits.
func decodeBits(bits []bool, start uint16, r register) (raw float64, ok bool) {
	if r.address < start || int(r.address-start) >= len(bits) {
		return 0, false
	}
	if bits[r.address-start] {
		return 1, true
	}
	return 0, true
}

// value scales a raw value; ok is false for a value that is no number
// (a float32 NaN or infinity: many meters send NaN for "no sensor").
func (r register) value(raw float64) (float64, bool) {
	v := raw*r.scale + r.offset
	return v, !math.IsNaN(v) && !math.IsInf(v, 0)
}
