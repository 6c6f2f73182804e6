package demofw

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/mos-tool/mos/fwimage"
)

// Sys.Crash makes the demo fault as a firmware bug would (a store through
// a NULL pointer in the main task), so that a console's crash decoding can
// be tried without a broken build. Mongoose OS has no such method; the
// panic report is the one the chip's runtime prints:
//
//   - ESP32: ESP-IDF's panic handler (components/esp_system/panic.c and
//     port/arch/xtensa/panic_arch.c): "Guru Meditation Error", the Xtensa
//     register dump, "Backtrace:" with PC:SP pairs, "Rebooting...", then a
//     software CPU reset (the ROM prints rst:0xc SW_CPU_RESET);
//   - ESP32-C3/C6: the same handler's RISC-V register dump
//     (port/arch/riscv/panic_arch.c), "Stack memory:" and its words;
//   - ESP8266: the Arduino core's postmortem report (core_esp8266_postmortem.cpp):
//     "Exception (29):", epc1..depc, the stack between ">>>stack>>>" and
//     "<<<stack<<<"; the SDK then restarts the chip, whose ROM prints
//     "rst cause:2" and whose SDK reports reset reason 2 (exception).
//
// The addresses lie in the app image's own code segments (flash-mapped
// code and IRAM), chosen from the image's bytes, so the same image
// crashes at the same addresses every time, as a real bug does.

// crashDelay lets the reply leave before the fault.
const crashDelay = 50 * time.Millisecond

func sysCrash(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	fw.goAsync(func() {
		if sleepCtx(fw.ctx, fw.async(crashDelay)) != nil {
			return
		}
		fw.crash()
	})
	return nil, nil
}

// crash prints the chip's panic report whole and restarts the chip.
func (fw *demoFirmware) crash() {
	l := fw.codeLayout()
	var report string
	switch {
	case fw.chip.IsESP8266():
		report = l.esp8266Report()
		fw.dev.mu.Lock()
		fw.dev.crashed = true
		fw.dev.mu.Unlock()
	case l.riscv:
		report = l.riscvReport()
	default:
		report = l.xtensaReport()
	}
	if fw.con.write([]byte(strings.ReplaceAll(report, "\n", "\r\n"))) != nil {
		return // reset meanwhile
	}
	fw.restartNow()
}

// esp8266CrashedBefore reports (once) that the last run ended in an
// exception, for the SDK's reset reason.
func (fw *demoFirmware) esp8266CrashedBefore() bool {
	fw.dev.mu.Lock()
	defer fw.dev.mu.Unlock()
	c := fw.dev.crashed
	fw.dev.crashed = false
	return c
}

// crashLayout is where the app's code lives and the addresses picked in it.
type crashLayout struct {
	riscv  bool
	frames []uint32 // the faulting PC first, then the callers' call sites
	sp     uint32   // stack pointer of the faulting frame
	seed   uint64
}

// codeLayout reads the running app image's segments and picks a fault PC
// and three callers in its flash-mapped code and the task's entry in IRAM.
func (fw *demoFirmware) codeLayout() crashLayout {
	type rng struct{ lo, hi uint32 }
	var flash, iram rng
	l := crashLayout{riscv: fw.chip.Key == "esp32c3" || fw.chip.Key == "esp32c6"}
	h := fnv.New64a()
	h.Write([]byte(fw.app.buildID))
	if fw.chip.IsESP8266() {
		// The irom0 text (the bundle's "irom" part at flash 0x10000) is
		// mapped at 0x40200000 plus its flash offset; IRAM at 0x40100000
		// (ESP8266 Technical Reference, memory map).
		flash, iram = rng{0x40210000, 0x40210000 + 64<<10}, rng{0x40100000, 0x40100000 + 16<<10}
	} else {
		// Where each chip maps code from flash and runs it from IRAM (the
		// chips' Technical Reference Manuals, address mapping; esp-idf's
		// soc.h SOC_IROM_LOW/HIGH and SOC_IRAM_LOW/HIGH).
		lim := map[string][2]rng{
			"esp32":   {{0x400c2000, 0x40c00000}, {0x40080000, 0x400a0000}},
			"esp32s2": {{0x40080000, 0x40800000}, {0x40020000, 0x40070000}},
			"esp32s3": {{0x42000000, 0x44000000}, {0x40370000, 0x403e0000}},
			"esp32c3": {{0x42000000, 0x42800000}, {0x4037c000, 0x403e0000}},
			"esp32c6": {{0x42000000, 0x43000000}, {0x40800000, 0x40880000}},
		}[fw.chip.Key]
		in := func(a uint32, r rng) bool { return a >= r.lo && a < r.hi }
		raw := make([]byte, min(1<<20, fw.m.Flash().Size()-int(fw.appAddr)))
		if fw.m.Flash().ReadAt(raw, fw.appAddr) == nil {
			if img, err := fwimage.ParseFor(fw.chip, raw); err == nil {
				for _, s := range img.Segments {
					r := rng{s.Addr, s.Addr + uint32(len(s.Data))}
					switch {
					case in(s.Addr, lim[0]):
						flash = r
					case in(s.Addr, lim[1]):
						iram = r
					}
					h.Write(s.Data[:min(len(s.Data), 4096)])
				}
			}
		}
		if flash.hi-flash.lo < 0x1000 { // no code segment found: its start
			flash = rng{lim[0].lo + 0x20, lim[0].lo + 0x40000}
		}
		if iram.hi-iram.lo < 0x1000 {
			iram = rng{lim[1].lo, lim[1].lo + 0x8000}
		}
	}
	l.seed = h.Sum64()
	pick := func(r rng, i int) uint32 {
		x := l.seed>>(i*8) ^ l.seed*uint64(i+1)*0x9e3779b97f4a7c15
		a := r.lo + 0x100 + uint32(x%uint64(r.hi-r.lo-0x200))
		if l.riscv {
			a &^= 1 // RISC-V with the C extension: 2-byte aligned
		}
		return a
	}
	for i := range 3 {
		l.frames = append(l.frames, pick(flash, i))
	}
	l.frames = append(l.frames, pick(iram, 3)) // the task's entry (vPortTaskWrapper)
	switch {
	case fw.chip.IsESP8266():
		l.sp = 0x3ffffd80
	case l.riscv:
		l.sp = 0x3fc9a6d0
	default:
		l.sp = 0x3ffb5e40
	}
	return l
}

// reg is one register of a panic report's register dump.
type reg struct {
	n string
	v uint32
}

// writeRegs writes the register dump as ESP-IDF's panic handler prints
// it, four registers a line.
func writeRegs(b *strings.Builder, regs []reg) {
	for i, r := range regs {
		fmt.Fprintf(b, "%-8s: 0x%08x  ", r.n, r.v)
		if i%4 == 3 {
			b.WriteString("\n")
		}
	}
}

// xtensaReport is ESP-IDF's panic report on an ESP32 for a StoreProhibited
// exception (EXCCAUSE 29) at frames[0].
func (l crashLayout) xtensaReport() string {
	var b strings.Builder
	b.WriteString("Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled.\n\n")
	b.WriteString("Core  0 register dump:\n")
	// A0 holds the return address into the caller with the window
	// increment of its CALL8 in the top two bits (binary 10); the
	// callers' frames in the backtrace point into their call instructions
	// (esp_cpu_process_stack_pc: return address minus 3).
	a0 := (l.frames[1]+3)&0x3fffffff | 0x80000000
	regs := []reg{
		{"PC", l.frames[0]}, {"PS", 0x00060830}, {"A0", a0}, {"A1", l.sp},
		{"A2", 0}, {"A3", 0x0000002a}, {"A4", 0x3ffb4c10}, {"A5", 0x00000001},
		{"A6", 0x00000000}, {"A7", 0x3ffc1a38}, {"A8", (l.frames[0]-6)&0x3fffffff | 0x80000000}, {"A9", l.sp - 0x20},
		{"A10", 0}, {"A11", 0x0000002a}, {"A12", 0x3ffb4c10}, {"A13", 0},
		{"A14", 0}, {"A15", 0}, {"SAR", 0x0000001e}, {"EXCCAUSE", 0x0000001d},
		{"EXCVADDR", 0}, {"LBEG", 0x400014fd}, {"LEND", 0x4000150d}, {"LCOUNT", 0xfffffffd},
	}
	writeRegs(&b, regs)
	b.WriteString("\nBacktrace:")
	for i, f := range l.frames {
		fmt.Fprintf(&b, " 0x%08x:0x%08x", f, l.sp+0x20*uint32(i))
	}
	fmt.Fprintf(&b, "\n\n\nELF file SHA256: %016x\n\nRebooting...\n", l.seed)
	return b.String()
}

// riscvReport is ESP-IDF's panic report on an ESP32-C3/C6 for a store
// access fault (MCAUSE 7) at frames[0], called from frames[1].
func (l crashLayout) riscvReport() string {
	var b strings.Builder
	b.WriteString("Guru Meditation Error: Core  0 panic'ed (Store access fault). Exception was unhandled.\n\n")
	b.WriteString("Core  0 register dump:\n")
	ret := func(i int) uint32 { return l.frames[i] + 4 } // after its JAL
	regs := []reg{
		{"MEPC", l.frames[0]}, {"RA", ret(1)}, {"SP", l.sp}, {"GP", 0x3fc8f400},
		{"TP", 0x3fc8805c}, {"T0", 0x40057fa6}, {"T1", 0x0000000f}, {"T2", 0},
		{"S0/FP", l.sp + 0x20}, {"S1", 0x0000002a}, {"A0", 0}, {"A1", 0x0000002a},
		{"A2", 0}, {"A3", 0x00000001}, {"A4", 0}, {"A5", 0},
		{"A6", 0}, {"A7", 0}, {"S2", 0}, {"S3", 0},
		{"S4", 0}, {"S5", 0}, {"S6", 0}, {"S7", 0},
		{"S8", 0}, {"S9", 0}, {"S10", 0}, {"S11", 0},
		{"T3", 0}, {"T4", 0}, {"T5", 0}, {"T6", 0},
		{"MSTATUS", 0x00001881}, {"MTVEC", 0x40380001}, {"MCAUSE", 0x00000007}, {"MTVAL", 0},
		{"MHARTID", 0},
	}
	writeRegs(&b, regs)
	b.WriteString("\n\nStack memory:\n")
	// the callers' saved return addresses among locals and saved registers
	words := []uint32{0, 0x0000002a, l.sp + 0x20, ret(2), 0x3fc9a700, 0, 0, ret(3)}
	for i := 0; i < len(words); i += 4 {
		fmt.Fprintf(&b, "%08x:", l.sp+uint32(i*4))
		for _, w := range words[i : i+4] {
			fmt.Fprintf(&b, " 0x%08x", w)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n\nELF file SHA256: %016x\n\nRebooting...\n", l.seed)
	return b.String()
}

// esp8266Report is the Arduino core's postmortem for exception 29
// (StoreProhibited) at frames[0].
func (l crashLayout) esp8266Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nException (29):\nepc1=0x%08x epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000\n\n", l.frames[0])
	b.WriteString(">>>stack>>>\n\nctx: cont\n")
	end := uint32(0x3fffffc0)
	fmt.Fprintf(&b, "sp: %08x end: %08x offset: 0190\n", l.sp, end)
	// CALL0 return addresses (call site + 3) among saved registers
	words := []uint32{
		0x3ffe8a10, 0x0000002a, 0x3ffef2c4, l.frames[1] + 3,
		0x3ffe8a10, 0x00000000, 0x3ffef2c4, l.frames[2] + 3,
		0x3fffdad0, 0x00000000, 0x3ffef2f0, l.frames[3] + 3,
	}
	for i := 0; i < len(words); i += 4 {
		fmt.Fprintf(&b, "%08x:  %08x %08x %08x %08x  \n", l.sp+uint32(i*4), words[i], words[i+1], words[i+2], words[i+3])
	}
	b.WriteString("<<<stack<<<\n\n")
	return b.String()
}
