package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math/rand/v2"
	"strings"
)

// randomImage is incompressible: every byte crosses the wire, so it shows
// the link's raw throughput.
func randomImage(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x62656e63682d726e))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// firmwareImage imitates an ESP32 application, which zlib (level 9)
// shrinks to 50-65% of its size: mostly Xtensa code, then string tables
// and tables of pointers, as a linker lays them out. It does not boot; it
// only has the statistics that matter to a compressing flasher.
//
// About three quarters is code, made of functions: an ENTRY prologue,
// basic blocks of 2- and 3-byte instructions whose opcodes and registers
// follow a skewed distribution (a few load/store and register forms
// dominate, as in compiled code) with the occasional random immediate or
// call offset (the incompressible part), and a RETW.N epilogue. Two basic
// blocks in five repeat one of the last 256 (inlined helpers, macros,
// common idioms), which is what gives real code its long matches. Each
// function is preceded by a literal pool of 32-bit addresses into the
// chip's memory map. The rest (about a quarter) is rodata, a 2-8 KiB run
// after one function in 150 or so: log format strings built from a small
// vocabulary, and tables of {pointer, length, flags} structs.
func firmwareImage(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x62656e63682d6677))
	g := &fwGen{r: r}
	for g.buf.Len() < n {
		if r.IntN(150) == 0 {
			g.rodata(2<<10 + r.IntN(6<<10))
		}
		g.function()
	}
	return g.buf.Bytes()[:n]
}

type fwGen struct {
	r      *rand.Rand
	buf    bytes.Buffer
	blocks [][]byte // earlier basic blocks, for repeats
}

// reg picks a register with the skew compiled code has: a2..a4 (arguments)
// and a8..a10 (temporaries) most of the time.
func (g *fwGen) reg() byte {
	if g.r.IntN(4) != 0 {
		return [...]byte{2, 3, 4, 8, 9, 10}[g.r.IntN(6)]
	}
	return byte(g.r.IntN(16))
}

// insn appends one instruction-like unit.
func (g *fwGen) insn(b *[]byte) {
	r := g.r
	switch k := r.IntN(100); {
	case k < 30: // narrow load/store/move: l32i.n, s32i.n, mov.n
		op := [...]byte{0x08, 0x09, 0x0d}[r.IntN(3)]
		*b = append(*b, g.reg()<<4|op, g.reg()<<4|byte(r.IntN(4)))
	case k < 45: // add.n / addi.n with a small immediate
		*b = append(*b, g.reg()<<4|0x0a+byte(r.IntN(2)), g.reg()<<4|g.reg())
	case k < 60: // register ALU ops: add, sub, and, or, slli...
		*b = append(*b, g.reg()<<4, g.reg()<<4|g.reg(), [...]byte{0x80, 0x90, 0xc0, 0x10, 0x20}[r.IntN(5)])
	case k < 70: // l32i/s32i with an offset, usually small
		off := byte(r.IntN(8))
		if r.IntN(4) == 0 {
			off = byte(r.IntN(256))
		}
		*b = append(*b, g.reg()<<4|0x02, [...]byte{0x21, 0x61, 0x01}[r.IntN(3)]|g.reg()<<4, off)
	case k < 80: // movi.n / movi with a small constant
		*b = append(*b, g.reg()<<4|0x0c, byte(r.IntN(16)))
	case k < 88: // l32r: a literal load, 16-bit negative offset
		*b = append(*b, g.reg()<<4|0x01, byte(r.IntN(256)), 0xff-byte(r.IntN(8)))
	case k < 95: // call8: 18-bit pc-relative, the least compressible
		v := r.Uint32()
		*b = append(*b, 0x25|byte(v)&0xc0, byte(v>>8), byte(v>>16))
	default: // branches: beqz, bnez, bltu... with a short offset
		*b = append(*b, 0x16|g.reg()<<4, byte(r.IntN(64)), [...]byte{0x00, 0x8c, 0x56}[r.IntN(3)])
	}
}

func (g *fwGen) function() {
	r := g.r
	// literal pool: addresses into DROM, DRAM and IROM, and small constants
	for i, n := 0, r.IntN(8); i < n; i++ {
		var v uint32
		switch r.IntN(4) {
		case 0:
			v = 0x3f400000 + uint32(r.IntN(0x40000))&^3
		case 1:
			v = 0x3ffb0000 + uint32(r.IntN(0x20000))&^3
		case 2:
			v = 0x400d0000 + uint32(r.IntN(0x100000))
		default:
			v = uint32(r.IntN(4096))
		}
		g.buf.Write(binary.LittleEndian.AppendUint32(nil, v))
	}
	// entry a1, 32..64
	g.buf.Write([]byte{0x36, 0x41 + byte(r.IntN(3))<<4, 0x00})
	for i, n := 0, 1+r.IntN(6); i < n; i++ {
		if len(g.blocks) > 16 && r.IntN(5) < 2 {
			// a recent one: code is local, and zlib's window is 32 KiB
			g.buf.Write(g.blocks[len(g.blocks)-1-r.IntN(min(len(g.blocks), 256))])
			continue
		}
		var b []byte
		for j, m := 0, 3+r.IntN(12); j < m; j++ {
			g.insn(&b)
		}
		g.buf.Write(b)
		g.blocks = append(g.blocks, b)
		if len(g.blocks) > 4096 { // only the last 256 are used
			g.blocks = append(g.blocks[:0], g.blocks[len(g.blocks)-256:]...)
		}
	}
	g.buf.Write([]byte{0x1d, 0xf0}) // retw.n
	for g.buf.Len()%4 != 0 {
		g.buf.WriteByte(0) // functions are 4-byte aligned
	}
}

var fwWords = strings.Fields(`wifi esp_ netif event sta ap connect disconnect failed
	timeout init deinit handle task queue mqtt http client server tls cert nvs
	partition ota update error invalid state memory alloc config ssid password
	socket bind listen read write flash spi gpio uart i2c adc timer heap free
	%s %d %u %x 0x%08x %p (%s) [%d] ok done start stop retry` + "\n")

// rodata appends about n bytes of read-only data: NUL-terminated log
// format strings and tables of {pointer, length, flags} structs.
func (g *fwGen) rodata(n int) {
	r := g.r
	end := g.buf.Len() + n
	for g.buf.Len() < end {
		if r.IntN(3) == 0 {
			for i, m := 0, 4+r.IntN(24); i < m; i++ {
				g.buf.Write(binary.LittleEndian.AppendUint32(nil, 0x3f400000+uint32(r.IntN(0x40000))&^3))
				g.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(r.IntN(64))))
				g.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(r.IntN(4))))
			}
			continue
		}
		for i, m := 0, 2+r.IntN(8); i < m; i++ {
			if i > 0 {
				g.buf.WriteByte(' ')
			}
			g.buf.WriteString(fwWords[r.IntN(len(fwWords))])
		}
		g.buf.WriteString("\n\x00")
		for g.buf.Len()%4 != 0 {
			g.buf.WriteByte(0)
		}
	}
}

// zlibSize is the image's size after zlib at level 9, what esptool-js and
// mos send (esptool-js uses pako at level 9, mos compress/zlib at 9).
func zlibSize(data []byte) int {
	var b bytes.Buffer
	w, _ := zlib.NewWriterLevel(&b, zlib.BestCompression)
	w.Write(data)
	w.Close()
	return b.Len()
}
