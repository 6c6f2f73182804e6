package fwbundle

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Content generators for specs (see Piece): deterministic bytes that look
// enough like firmware for flashing to be realistic. Real firmware
// compresses to about half (repeated instruction idioms, strings, zeroed
// data); all-random data would make compressed flashing look slow, and
// all-zero data would make it look absurdly fast. The generators are the
// project's own and use their own PRNG, so that their output never
// changes with the Go version: committed images must rebuild bit for bit.

// rng is SplitMix64 (Steele, Lea and Flood, 2014): tiny, and fully
// specified by its published constants.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// skewed picks from [0, n) with small values more likely, as a program
// uses a few registers, helpers and idioms far more than the rest.
func (r *rng) skewed(n int) int { return r.intn(r.intn(n) + 1) }

// Generator kinds.
const (
	GenCode   = "code"   // machine-code-like instruction stream (isa: xtensa, riscv)
	GenRodata = "rodata" // C strings and pointer tables
	GenData   = "data"   // initialised variables: zeros, small numbers, pointers
	GenRandom = "random" // incompressible bytes
)

// generate returns n bytes of the given kind. base is the address the
// bytes load at, which pointers in rodata and data point near.
func generate(kind, isa string, seed uint64, n int, base uint32) ([]byte, error) {
	r := &rng{s: seed}
	switch kind {
	case GenCode:
		switch isa {
		case "xtensa":
			return genCode(r, n, xtensa{}), nil
		case "riscv":
			return genCode(r, n, riscv{}), nil
		}
		return nil, fmt.Errorf("gen code: isa %q (xtensa or riscv)", isa)
	case GenRodata:
		return genRodata(r, n, base), nil
	case GenData:
		return genData(r, n, base), nil
	case GenRandom:
		b := make([]byte, 0, n+8)
		for len(b) < n {
			b = binary.LittleEndian.AppendUint64(b, r.next())
		}
		return b[:n], nil
	}
	return nil, fmt.Errorf("unknown generator %q (%s, %s, %s, %s)", kind, GenCode, GenRodata, GenData, GenRandom)
}

// isa encodes plausible instructions of one instruction set. Encodings
// follow the real formats' field layout; the programs mean nothing.
type isa interface {
	insn(r *rng) []byte // one ordinary instruction
	call(r *rng) []byte // a call with a pseudo-random target: little repetition
	prologue(r *rng) []byte
	epilogue() []byte
}

// genCode emits functions: a prologue, basic blocks, calls between them,
// an epilogue, 4-byte alignment. Some blocks come (skewed) from a shared
// pool, standing for a compiler's idioms and inlined helpers, the others
// are fresh; the share of each sets how well the code compresses, here
// about as well as real firmware (deflate to a little over half).
func genCode(r *rng, n int, is isa) []byte {
	block := func() []byte {
		var blk []byte
		for range 3 + r.intn(14) {
			blk = append(blk, is.insn(r)...)
		}
		return blk
	}
	pool := make([][]byte, 256)
	for i := range pool {
		pool[i] = block()
	}
	out := make([]byte, 0, n+256)
	for len(out) < n {
		out = append(out, is.prologue(r)...)
		for range 1 + r.intn(8) {
			if r.intn(100) < poolShare {
				out = append(out, pool[r.skewed(len(pool))]...)
			} else {
				out = append(out, block()...)
			}
			if r.intn(3) == 0 {
				out = append(out, is.call(r)...)
			}
		}
		out = append(out, is.epilogue()...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out[:n]
}

// poolShare is the percentage of blocks taken from the pool.
const poolShare = 50

// reg picks a register number, a2..a7 / x8..x15 being the busy ones.
func reg(r *rng, busyLo int) uint8 {
	if r.intn(4) != 0 {
		return uint8(busyLo + r.skewed(6))
	}
	return uint8(r.intn(16))
}

// xtensa: 24-bit instructions (op0 in the low nibble of byte 0) and the
// 16-bit "narrow" ones of the code density option.
type xtensa struct{}

func (xtensa) insn(r *rng) []byte {
	t, s := reg(r, 2), reg(r, 2)
	switch k := r.skewed(8); k {
	case 0: // l32i.n at, as, imm
		return []byte{t<<4 | 0x8, s | uint8(r.skewed(8))<<4}
	case 1: // s32i.n
		return []byte{t<<4 | 0x9, s | uint8(r.skewed(8))<<4}
	case 2: // mov.n
		return []byte{s<<4 | 0xD, t}
	case 3: // addi.n
		return []byte{t<<4 | 0xB, s | uint8(1+r.skewed(15))<<4}
	case 4: // l32i at, as, imm8
		return []byte{t<<4 | 0x2, s | 0x20, uint8(r.skewed(64))}
	case 5: // s32i
		return []byte{t<<4 | 0x2, s | 0x60, uint8(r.skewed(64))}
	case 6: // l32r: a literal load, PC-relative offset
		return []byte{t<<4 | 0x1, uint8(r.intn(256)), 0xFF}
	default: // beqz as, label: short forward branch
		return []byte{0x16, s<<4 | uint8(r.intn(16)), uint8(r.skewed(32))}
	}
}

func (xtensa) call(r *rng) []byte { // call8, 18-bit offset
	off := r.intn(1 << 18)
	return []byte{uint8(off<<6) | 0x25, uint8(off >> 2), uint8(off >> 10)}
}

func (xtensa) prologue(r *rng) []byte { // entry a1, 32..64
	return []byte{0x36, 0x41, uint8(4 + r.skewed(5))}
}

func (xtensa) epilogue() []byte { return []byte{0x1D, 0xF0} } // retw.n

// riscv: RV32IMC, 32-bit base instructions and 16-bit compressed ones.
type riscv struct{}

func rv32(op, rd, f3, rs1 uint32, imm int32) []byte {
	w := op | rd<<7 | f3<<12 | rs1<<15 | uint32(imm)<<20
	return binary.LittleEndian.AppendUint32(nil, w)
}

func (riscv) insn(r *rng) []byte {
	rd, rs := uint32(reg(r, 8)), uint32(reg(r, 8))
	switch k := r.skewed(8); k {
	case 0: // c.lw rd', off(rs')
		return binary.LittleEndian.AppendUint16(nil, uint16(0x4000|(rs&7)<<7|(rd&7)<<2|uint32(r.skewed(4))<<5))
	case 1: // c.sw
		return binary.LittleEndian.AppendUint16(nil, uint16(0xC000|(rs&7)<<7|(rd&7)<<2|uint32(r.skewed(4))<<5))
	case 2: // c.mv rd, rs
		return binary.LittleEndian.AppendUint16(nil, uint16(0x8002|rd<<7|rs<<2))
	case 3: // addi rd, rs, imm
		return rv32(0x13, rd, 0, rs, int32(r.skewed(64))-16)
	case 4: // lw rd, off(rs)
		return rv32(0x03, rd, 2, rs, int32(4*r.skewed(32)))
	case 5: // c.li rd, imm
		return binary.LittleEndian.AppendUint16(nil, uint16(0x4001|rd<<7|uint32(r.skewed(32))<<2))
	case 6: // lui rd, imm
		return binary.LittleEndian.AppendUint32(nil, 0x37|rd<<7|uint32(0x3FC80+r.skewed(64))<<12)
	default: // bne rd, rs, short forward branch
		return rv32(0x63, uint32(r.skewed(8))<<1, 1, rs, int32(rd))
	}
}

func (riscv) call(r *rng) []byte { // jal ra, random offset
	return binary.LittleEndian.AppendUint32(nil, 0x6F|1<<7|uint32(r.intn(1<<20))<<12)
}

func (riscv) prologue(r *rng) []byte { // addi sp, sp, -N; sw ra, N-4(sp)
	n := int32(16 * (1 + r.skewed(4)))
	return append(rv32(0x13, 2, 0, 2, -n), binary.LittleEndian.AppendUint32(nil, 0x00112023|uint32(n-4)&0x1F<<7|uint32(n-4)>>5<<25)...)
}

func (riscv) epilogue() []byte { // lw ra; addi sp; ret
	return []byte{0x82, 0x40, 0x41, 0x01, 0x82, 0x80}
}

// Words for rodata messages: what an IoT firmware's log strings are made of.
var words = strings.Fields(`wifi mqtt rpc config http ota fs sntp dns tcp udp ssl tls cert key
	connect connected disconnect failed error timeout retry ready init start stop done ok
	sta ap ssid ip gw mask rssi channel scan auth open close read write flush erase
	sector page block size len offset addr buf heap free alloc task queue event handler
	uart gpio spi i2c adc pwm timer watchdog reboot reset boot app version build device id`)

var tags = strings.Fields(`mgos_wifi mgos_mqtt mgos_rpc mgos_config mgos_http_server
	mgos_ota mgos_vfs mgos_sntp esp_netif wifi_init nvs app_main mos_demo`)

// genRodata emits NUL-terminated log and format strings, 4-byte aligned,
// with now and then a table of pointers into the same segment.
func genRodata(r *rng, n int, base uint32) []byte {
	out := make([]byte, 0, n+256)
	for len(out) < n {
		if r.intn(7) == 0 {
			for range 4 + r.intn(12) {
				ptr := base + uint32(r.intn(max(n, 4)))&^3
				out = binary.LittleEndian.AppendUint32(out, ptr)
			}
			continue
		}
		var s strings.Builder
		s.WriteString(tags[r.skewed(len(tags))])
		s.WriteString(": ")
		for i := range 2 + r.intn(6) {
			if i > 0 {
				s.WriteByte(' ')
			}
			switch r.intn(6) {
			case 0:
				s.WriteString("%d")
			case 1:
				s.WriteString("%s")
			default:
				s.WriteString(words[r.skewed(len(words))])
			}
		}
		out = append(out, s.String()...)
		out = append(out, 0)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out[:n]
}

// genData emits 32-bit words: mostly zero, else small numbers, pointers
// into the segment, or noise.
func genData(r *rng, n int, base uint32) []byte {
	out := make([]byte, 0, n+4)
	for len(out) < n {
		var w uint32
		switch k := r.intn(20); {
		case k < 10:
		case k < 15:
			w = uint32(r.skewed(256))
		case k < 18:
			w = base + uint32(r.intn(max(n, 4)))&^3
		default:
			w = uint32(r.next())
		}
		out = binary.LittleEndian.AppendUint32(out, w)
	}
	return out[:n]
}
