// Package crash turns the addresses in an ESP chip's crash report into
// function, file and line, from the firmware's ELF file and its DWARF debug
// information (Go's debug/elf and debug/dwarf; no addr2line needed).
//
// It reads the reports the chips' runtimes print on the serial console:
//
//   - ESP32 family, Xtensa (ESP-IDF panic handler): "Guru Meditation
//     Error: ...", the register dump ("PC      : 0x400d0f5e  PS ...",
//     "A0      : 0x800d0f74 ...") and "Backtrace: 0x400d0f5b:0x3ffb1f50 ...";
//   - ESP8266: "Exception (28):" or the SDK's "Fatal exception 28(...)",
//     "epc1=0x40201234 ...", and the stack words between ">>>stack>>>"
//     and "<<<stack<<<" (written without 0x);
//   - ESP32-C3/C6, RISC-V (ESP-IDF panic handler): the register dump
//     ("MEPC    : 0x42000a3e  RA      : 0x42000a56 ...") and the words
//     after "Stack memory:".
//
// A console feeds every line it shows to Decoder.Annotate, in order (the
// decoder remembers whether it is inside a stack dump), and shows the lines
// it returns after that line:
//
//	dec, err := crash.Open("build/fw.elf")
//	...
//	for _, note := range dec.Annotate(line) {
//		// e.g. "0x400d0f5b: sensor_read at main/sensor.c:88"
//	}
//
// Code inlined into a caller is named after the inlined function (the
// innermost one), with the line of the inlined code, as addr2line -f does.
// Only values that fall in the ELF's code are decoded, so data pointers and
// ROM addresses are left alone. Return addresses (Xtensa A0, RISC-V RA, the
// code words of a stack dump) are decoded one byte back, inside the call
// instruction, so they name the line of the call, as debuggers do; Xtensa
// windowed-ABI return addresses (the top two bits hold the caller's window
// increment) are mapped back into the code's address range first.
// Decoder.Lookup decodes one address. A Decoder is not safe for concurrent
// use by several goroutines (Annotate keeps state); Lookup is.
package crash

import (
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Location is where an address is in the firmware's source.
type Location struct {
	Addr     uint64 // the address looked up
	Function string // "" when unknown
	File     string // "" when the DWARF has no line for it
	Line     int
}

// String formats a location as idf.py monitor does:
// "0x400d0f5b: sensor_read at main/sensor.c:88".
func (l Location) String() string {
	fn := l.Function
	if fn == "" {
		fn = "??"
	}
	s := fmt.Sprintf("0x%08x: %s", l.Addr, fn)
	if l.File != "" {
		s += fmt.Sprintf(" at %s:%d", l.File, l.Line)
	}
	return s
}

// Decoder decodes addresses against one ELF file.
type Decoder struct {
	machine elf.Machine
	code    []span     // executable sections, sorted
	rows    []lineSpan // sorted by start
	funcs   []funcSpan // sorted by start; innermost wins
	state   dumpState
}

type span struct{ lo, hi uint64 }

type lineSpan struct {
	lo, hi uint64
	file   string
	line   int
}

type funcSpan struct {
	lo, hi uint64
	name   string
}

type dumpState int

const (
	outside      dumpState = iota
	esp8266Stack           // between >>>stack>>> and <<<stack<<<
	riscvStack             // after "Stack memory:"
)

// Open reads the ELF file at path. The file is read whole and closed.
func Open(name string) (*Decoder, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("crash decoder: %w", err)
	}
	defer f.Close()
	d, err := New(f)
	if err != nil {
		return nil, fmt.Errorf("crash decoder: %s: %w", name, err)
	}
	return d, nil
}

// New reads an ELF file from r.
func New(r io.ReaderAt) (*Decoder, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("not an ELF file: %w", err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_XTENSA, elf.EM_RISCV:
	default:
		return nil, fmt.Errorf("ELF for %v: want an Xtensa (ESP32, ESP8266) or RISC-V (ESP32-C3/C6) firmware", f.Machine)
	}
	d := &Decoder{machine: f.Machine}
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_EXECINSTR != 0 && s.Flags&elf.SHF_ALLOC != 0 && s.Size > 0 {
			d.code = append(d.code, span{s.Addr, s.Addr + s.Size})
		}
	}
	sort.Slice(d.code, func(i, j int) bool { return d.code[i].lo < d.code[j].lo })
	// Function names from the symbol table first: DWARF, when present,
	// adds its own (with inlined code's ranges) and wins on ties by being
	// smaller or equal.
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
				d.funcs = append(d.funcs, funcSpan{s.Value, s.Value + s.Size, s.Name})
			}
		}
	}
	dw, err := f.DWARF()
	if err != nil {
		if len(d.funcs) == 0 {
			return nil, fmt.Errorf("no debug information and no function symbols (build the firmware with -g and do not strip it): %w", err)
		}
	} else if err := d.readDWARF(dw); err != nil {
		return nil, fmt.Errorf("reading DWARF: %w", err)
	}
	sort.SliceStable(d.funcs, func(i, j int) bool { return d.funcs[i].lo < d.funcs[j].lo })
	sort.SliceStable(d.rows, func(i, j int) bool { return d.rows[i].lo < d.rows[j].lo })
	return d, nil
}

func (d *Decoder) readDWARF(dw *dwarf.Data) error {
	r := dw.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			return nil
		}
		switch e.Tag {
		case dwarf.TagCompileUnit:
			if err := d.readLines(dw, e); err != nil {
				return err
			}
		case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine:
			// an inlined copy's ranges lie inside its caller's: the
			// smaller span wins in Lookup, so the inlined function is
			// named, as addr2line -f does
			name := entryName(dw, e)
			if name == "" {
				continue
			}
			ranges, err := dw.Ranges(e)
			if err != nil {
				continue // a declaration, or ranges we cannot read: no code
			}
			for _, rg := range ranges {
				if rg[1] > rg[0] {
					d.funcs = append(d.funcs, funcSpan{rg[0], rg[1], name})
				}
			}
		}
	}
}

// entryName is a subprogram's name, also when only its specification or
// abstract origin carries it (C++ methods, out-of-line copies of inlines).
func entryName(dw *dwarf.Data, e *dwarf.Entry) string {
	for range 4 {
		if n, ok := e.Val(dwarf.AttrName).(string); ok {
			return n
		}
		off, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if !ok {
			if off, ok = e.Val(dwarf.AttrSpecification).(dwarf.Offset); !ok {
				return ""
			}
		}
		r := dw.Reader()
		r.Seek(off)
		var err error
		if e, err = r.Next(); err != nil || e == nil {
			return ""
		}
	}
	return ""
}

// readLines adds a compile unit's line table: each row covers the
// addresses up to the next row of its sequence.
func (d *Decoder) readLines(dw *dwarf.Data, cu *dwarf.Entry) error {
	lr, err := dw.LineReader(cu)
	if err != nil || lr == nil {
		return err
	}
	var prev dwarf.LineEntry
	have := false
	names := map[*dwarf.LineFile]string{} // one string per file, not per row
	for {
		var le dwarf.LineEntry
		if err := lr.Next(&le); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if have && le.Address > prev.Address && prev.File != nil {
			name, ok := names[prev.File]
			if !ok {
				name = cleanPath(prev.File.Name)
				names[prev.File] = name
			}
			d.rows = append(d.rows, lineSpan{prev.Address, le.Address, name, prev.Line})
		}
		prev, have = le, !le.EndSequence
	}
}

// cleanPath tidies a DWARF path ("././main.c" from a build with a
// prefix map) without making it absolute.
func cleanPath(p string) string {
	if p == "" {
		return p
	}
	return path.Clean(p)
}

// InCode reports whether addr lies in an executable section of the ELF.
func (d *Decoder) InCode(addr uint64) bool {
	i := sort.Search(len(d.code), func(i int) bool { return d.code[i].hi > addr })
	return i < len(d.code) && d.code[i].lo <= addr
}

// Lookup decodes one address: the function and the source line of the
// instruction at addr. ok is false when addr is not in the firmware's code
// or nothing is known about it.
func (d *Decoder) Lookup(addr uint64) (loc Location, ok bool) {
	loc.Addr = addr
	if !d.InCode(addr) {
		return loc, false
	}
	// innermost function: the smallest span holding addr
	best := uint64(0)
	for i := sort.Search(len(d.funcs), func(i int) bool { return d.funcs[i].lo > addr }) - 1; i >= 0; i-- {
		f := d.funcs[i]
		if addr < f.hi && (best == 0 || f.hi-f.lo < best) {
			loc.Function, best = f.name, f.hi-f.lo
		}
		if addr-f.lo > 1<<24 {
			break // functions are far smaller: stop scanning back
		}
	}
	if i := sort.Search(len(d.rows), func(i int) bool { return d.rows[i].lo > addr }) - 1; i >= 0 {
		// rows of different sequences may overlap only when code was
		// discarded at link time; the latest start wins
		for ; i >= 0 && addr-d.rows[i].lo < 1<<20; i-- {
			if r := d.rows[i]; addr < r.hi {
				loc.File, loc.Line = r.file, r.line
				break
			}
		}
	}
	return loc, loc.Function != "" || loc.File != ""
}

// LookupReturn decodes a return address: the location of the call that
// returns there (one byte back, inside the call instruction). Xtensa
// windowed-ABI return addresses are mapped into the code range first.
// loc.Addr is ret as given.
func (d *Decoder) LookupReturn(ret uint64) (Location, bool) {
	a := d.codeAddr(ret)
	loc, ok := d.Lookup(a - 1)
	loc.Addr = ret
	return loc, ok
}

// codeAddr undoes the Xtensa windowed ABI's encoding of a return address,
// whose top two bits carry the caller's window increment instead of the
// address's own (Xtensa ISA Reference Manual, CALL4/8/12; esp-idf's
// esp_cpu_process_stack_pc does the same).
func (d *Decoder) codeAddr(v uint64) uint64 {
	if d.machine == elf.EM_XTENSA && !d.InCode(v) {
		if a := v&0x3fffffff | 0x40000000; d.InCode(a) {
			return a
		}
	}
	return v
}

var (
	hexWord   = regexp.MustCompile(`0[xX][0-9a-fA-F]{8}\b`)
	labelRE   = regexp.MustCompile(`([A-Za-z][A-Za-z0-9]*)\s*[:=]\s*$`)
	dumpLine  = regexp.MustCompile(`^\s*[0-9a-fA-F]{8}:((?:\s+(?:0[xX])?[0-9a-fA-F]{8})+)\s*$`)
	dumpWords = regexp.MustCompile(`(?:0[xX])?([0-9a-fA-F]{8})`)
)

// Labels of register values that are return addresses: Xtensa's A0 and
// RISC-V's RA (on RISC-V, A0 is an argument register).
var returnLabels = map[elf.Machine]string{elf.EM_XTENSA: "A0", elf.EM_RISCV: "RA"}

// Labels of registers that hold no address of the code that ran: status,
// causes, the faulting data address, and the trap vector base (whose low
// bits are a mode). Their values are never decoded, even when they look
// like code addresses.
var notCodeLabels = map[string]bool{
	"PS": true, "SAR": true, "EXCCAUSE": true, "EXCVADDR": true, "LCOUNT": true,
	"MSTATUS": true, "MTVEC": true, "MCAUSE": true, "MTVAL": true, "MHARTID": true,
	"VADDR": true,
}

// Annotate takes the next console line and returns the decoded addresses
// it carries, one line each ("0x400d0f5b: sensor_read at main/sensor.c:88"),
// or nil. Lines are expected in order: stack dumps span several lines.
func (d *Decoder) Annotate(line string) []string {
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.Contains(line, ">>>stack>>>"):
		d.state = esp8266Stack
		return nil
	case strings.Contains(line, "<<<stack<<<"):
		d.state = outside
		return nil
	case strings.Contains(line, "Stack memory:"):
		d.state = riscvStack
		return nil
	}
	var out []string
	seen := map[uint64]bool{}
	add := func(loc Location, ok bool) {
		if ok && !seen[loc.Addr] {
			seen[loc.Addr] = true
			out = append(out, loc.String())
		}
	}
	if d.state != outside {
		if m := dumpLine.FindStringSubmatch(line); m != nil {
			// a stack dump: the code words in it are return addresses
			for _, w := range dumpWords.FindAllStringSubmatch(m[1], -1) {
				v, _ := strconv.ParseUint(w[1], 16, 32)
				if d.InCode(d.codeAddr(v)) {
					add(d.LookupReturn(v))
				}
			}
			return out
		}
		if d.state == riscvStack && strings.TrimSpace(line) != "" {
			d.state = outside // the dump ended with the first other line
		}
	}
	for _, ix := range hexWord.FindAllStringIndex(line, -1) {
		v, _ := strconv.ParseUint(line[ix[0]+2:ix[1]], 16, 32)
		label := ""
		if m := labelRE.FindStringSubmatch(line[:ix[0]]); m != nil {
			label = strings.ToUpper(m[1])
		}
		switch {
		case notCodeLabels[label]:
		case label == returnLabels[d.machine]:
			add(d.LookupReturn(v))
		case d.InCode(v):
			add(d.Lookup(v))
		case d.InCode(d.codeAddr(v)):
			// an undecoded windowed return address in a backtrace
			add(d.LookupReturn(v))
		}
	}
	return out
}

// Reset forgets a stack dump in progress, e.g. after the device was
// reset or the console reconnected.
func (d *Decoder) Reset() { d.state = outside }
