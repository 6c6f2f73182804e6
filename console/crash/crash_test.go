package crash_test

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mos-tool/mos/console/crash"
)

// The test ELFs are built from testdata/crash.c by testdata/build.sh with
// Debian's cross compilers (gcc-xtensa-lx106, gcc-riscv64-unknown-elf).

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// testELF builds the test ELFs once per run and returns the path of one.
func testELF(t *testing.T, name string) string {
	t.Helper()
	for _, cc := range []string{"xtensa-lx106-elf-gcc", "riscv64-unknown-elf-gcc"} {
		if _, err := exec.LookPath(cc); err != nil {
			msg := fmt.Sprintf("%s not found: install Debian's gcc-xtensa-lx106 and gcc-riscv64-unknown-elf (.ci/run does)", cc)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "crash-elf-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("sh", "testdata/build.sh", buildDir).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("testdata/build.sh: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// marker is a MARK(name) in crash.c: its line, and the function its
// "expect:" comment names.
type marker struct {
	line int
	fn   string
}

// sourceMarkers reads the markers from the C source: the expected answers
// come from the source text, not from DWARF.
func sourceMarkers(t *testing.T) map[string]marker {
	t.Helper()
	f, err := os.Open("testdata/crash.c")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`\bMARK\((\w+)\);.*expect: (\w+)`)
	marks := map[string]marker{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			marks[m[1]] = marker{n, m[2]}
		}
	}
	if len(marks) < 4 {
		t.Fatalf("crash.c: found %d markers, want at least 4", len(marks))
	}
	return marks
}

// symbols reads the mark_* labels' addresses from the ELF symbol table
// (independent of DWARF).
func symbols(t *testing.T, path string) map[string]uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, s := range syms {
		if name, ok := strings.CutPrefix(s.Name, "mark_"); ok {
			out[name] = s.Value
		}
	}
	return out
}

var elves = []struct {
	file     string
	codeBase uint64 // where the flash-mapped code starts in this layout
}{
	{"esp8266.elf", 0x40201010},
	{"esp32.elf", 0x400d0020},
	{"esp32c3.elf", 0x42000020},
}

// TestLookupMarkers decodes each marker's address and expects the function
// and line the source names. Markers named ret_* sit right after a call
// returns: decoded as return addresses they must name the call's line.
func TestLookupMarkers(t *testing.T) {
	marks := sourceMarkers(t)
	for _, e := range elves {
		t.Run(e.file, func(t *testing.T) {
			path := testELF(t, e.file)
			syms := symbols(t, path)
			dec, err := crash.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range marks {
				addr, ok := syms[name]
				if !ok {
					t.Fatalf("mark_%s missing from the symbol table", name)
				}
				var loc crash.Location
				if strings.HasPrefix(name, "ret_") {
					loc, ok = dec.LookupReturn(addr)
				} else {
					loc, ok = dec.Lookup(addr)
				}
				if !ok || loc.Function != want.fn || loc.File != "crash.c" || loc.Line != want.line {
					t.Errorf("%s at 0x%x: got %v (ok=%v), want %s at crash.c:%d", name, addr, loc, ok, want.fn, want.line)
				}
			}
			if syms["fault"] < e.codeBase || syms["fault"] > e.codeBase+0x1000 {
				t.Errorf("mark_fault at 0x%x: not in this layout's flash code at 0x%x", syms["fault"], e.codeBase)
			}
			for _, a := range []uint64{0x40000400, 0x3ffb0000, 0x3fc80000, 0, e.codeBase - 0x20} {
				if loc, ok := dec.Lookup(a); ok {
					t.Errorf("0x%x is not code but decoded as %v", a, loc)
				}
			}
		})
	}
}

// TestWithoutDWARF: a firmware built without -g still names functions
// (symbol table); a stripped one is refused with what to do.
func TestWithoutDWARF(t *testing.T) {
	marks := sourceMarkers(t)
	syms := symbols(t, testELF(t, "esp32c3.elf"))
	dec, err := crash.Open(testELF(t, "esp32c3-nodebug.elf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fault", "isr"} {
		loc, ok := dec.Lookup(syms[name])
		if !ok || loc.Function != marks[name].fn || loc.File != "" {
			t.Errorf("%s without DWARF: %v (ok=%v), want function %s and no file", name, loc, ok, marks[name].fn)
		}
	}
	_, err = crash.Open(testELF(t, "esp32c3-stripped.elf"))
	if err == nil || !strings.Contains(err.Error(), "build the firmware with -g") {
		t.Errorf("stripped ELF: %v, want an error saying to build with -g", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "fw.bin")
	if err := os.WriteFile(notELF, []byte("\xe9\x03\x02\x20not an elf"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable() // the test binary: an ELF for this host's machine
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.elf"), "no such file"},
		{notELF, "not an ELF file"},
		{self, "want an Xtensa"},
	} {
		_, err := crash.Open(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s): %v, want an error with %q", filepath.Base(tc.path), err, tc.want)
		}
	}
}

// TestAnnotate feeds whole crash reports in each chip's format, with the
// markers' addresses, line by line and checks what is decoded after which
// line.
func TestAnnotate(t *testing.T) {
	marks := sourceMarkers(t)
	at := func(name string) string {
		return fmt.Sprintf("%s at crash.c:%d", marks[name].fn, marks[name].line)
	}
	// the report text, with {name} replaced by that marker's address,
	// {name-1} by one less, and {name+w} by a windowed return address
	// (top bits 10: the caller used CALL8)
	reports := []struct {
		name string
		file string
		text string
		// want: line index -> decoded annotations (substrings, in order)
		want map[int][]string
	}{
		{
			name: "ESP32 panic", file: "esp32.elf",
			text: `Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled.

Core  0 register dump:
PC      : 0x{fault}  PS      : 0x00060330  A0      : 0x{ret_sensor_read+w}  A1      : 0x3ffb1f40
A2      : 0x00000000  A3      : 0x0000002a  A4      : 0x3ffb0000  A5      : 0x40000400
EXCCAUSE: 0x0000001d  EXCVADDR: 0x00000000  LBEG    : 0x400014fd  LEND    : 0x4000150d

Backtrace: 0x{fault}:0x3ffb1f40 0x{ret_sensor_read-1}:0x3ffb1f60 0x{ret_app_main-1}:0x3ffb1f80 0x{isr}:0x3ffb1fa0

ELF file SHA256: 0000000000000000

Rebooting...`,
			want: map[int][]string{
				3: {at("fault"), at("ret_sensor_read")},
				7: {at("fault"), at("ret_sensor_read"), at("ret_app_main"), at("isr")},
			},
		},
		{
			name: "ESP32 backtrace without space (ESP-IDF 4)", file: "esp32.elf",
			text: `Backtrace:0x{fault}:0x3ffb1f40 0x{ret_sensor_read-1}:0x3ffb1f60`,
			want: map[int][]string{0: {at("fault"), at("ret_sensor_read")}},
		},
		{
			name: "ESP8266 exception", file: "esp8266.elf",
			text: `
Exception (29):
epc1=0x{fault} epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000

>>>stack>>>

ctx: cont
sp: 3ffffdb0 end: 3fffffc0 offset: 01a0
3fffff50:  3fffdad0 00000000 3ffee540 {ret_sensor_read}
3fffff60:  3ffe8000 0000002a 3ffee540 {ret_app_main}
<<<stack<<<
3fffff70:  3ffe8000 0000002a 3ffee540 {ret_app_main}
`,
			want: map[int][]string{
				2: {at("fault")},
				8: {at("ret_sensor_read")},
				9: {at("ret_app_main")},
			},
		},
		{
			name: "ESP8266 SDK fatal exception", file: "esp8266.elf",
			text: `Fatal exception 29(StoreProhibitedCause):
epc1=0x{isr}, epc2=0x00000000, epc3=0x00000000, excvaddr=0x00000000, depc=0x00000000`,
			want: map[int][]string{1: {at("isr")}},
		},
		{
			name: "ESP32-C3 panic", file: "esp32c3.elf",
			text: `Guru Meditation Error: Core  0 panic'ed (Store access fault). Exception was unhandled.

Core  0 register dump:
MEPC    : 0x{fault}  RA      : 0x{ret_sensor_read}  SP      : 0x3fc8ff30  GP      : 0x3fc8b600
TP      : 0x3fc8b6a0  T0      : 0x4005890e  T1      : 0x3fc8f9ec  T2      : 0x00000000
S0/FP   : 0x3fc8ff50  S1      : 0x3fc8f9ec  A0      : 0x{isr}  A1      : 0x3fc8ff40
MSTATUS : 0x00001881  MTVEC   : 0x40380001  MCAUSE  : 0x00000007  MTVAL   : 0x00000000
MHARTID : 0x00000000

Stack memory:
3fc8ff30: 0x00000000 0x00000000 0x3fc8ff50 0x{ret_app_main}
3fc8ff40: 0x{ret_app_main} 0x00000000 0x00000000 0x00000000

ELF file SHA256: 0000000000000000

Rebooting...`,
			want: map[int][]string{
				3:  {at("fault"), at("ret_sensor_read")},
				5:  {at("isr")}, // A0 is an argument register on RISC-V
				10: {at("ret_app_main")},
				11: {at("ret_app_main")},
			},
		},
	}
	subst := regexp.MustCompile(`\{(\w+?)(-1|\+w)?\}`)
	for _, rep := range reports {
		t.Run(rep.name, func(t *testing.T) {
			path := testELF(t, rep.file)
			syms := symbols(t, path)
			text := subst.ReplaceAllStringFunc(rep.text, func(s string) string {
				m := subst.FindStringSubmatch(s)
				a, ok := syms[m[1]]
				if !ok {
					t.Fatalf("no mark_%s", m[1])
				}
				switch m[2] {
				case "-1":
					a--
				case "+w":
					a = a&0x3fffffff | 0x80000000
				}
				return fmt.Sprintf("%08x", a)
			})
			dec, err := crash.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(text, "\n") {
				got := dec.Annotate(line + "\r") // the chips end lines with CR LF
				want := rep.want[i]
				if len(got) != len(want) {
					t.Errorf("line %d %q: got %q, want %q", i, line, got, want)
					continue
				}
				for j := range want {
					if !strings.HasSuffix(got[j], ": "+want[j]) || !strings.HasPrefix(got[j], "0x") {
						t.Errorf("line %d %q: annotation %d is %q, want 0x...: %s", i, line, j, got[j], want[j])
					}
				}
			}
		})
	}
}

// TestLocationString pins the format the console shows.
func TestLocationString(t *testing.T) {
	for _, tc := range []struct {
		loc  crash.Location
		want string
	}{
		{crash.Location{Addr: 0x400d0f5b, Function: "app_main", File: "main/app.c", Line: 12}, "0x400d0f5b: app_main at main/app.c:12"},
		{crash.Location{Addr: 0x42000020, Function: "f"}, "0x42000020: f"},
		{crash.Location{Addr: 0x42000020, File: "a.c", Line: 3}, "0x42000020: ?? at a.c:3"},
	} {
		if got := tc.loc.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
