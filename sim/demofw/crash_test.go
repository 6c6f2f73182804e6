package demofw_test

import (
	"archive/zip"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
)

// appCode reads the code segments' ranges (flash-mapped code and IRAM,
// executable addresses 0x40000000 and up) of a chip's demo app.
func appCode(t *testing.T, chip string) [][2]uint64 {
	t.Helper()
	if chip == "esp8266" {
		// the irom0 part at flash 0x10000, mapped at 0x40200000 + offset,
		// and IRAM (the image at 0 holds only RAM segments)
		return [][2]uint64{{0x40210000, 0x40210000 + 344064}, {0x40100000, 0x40108000}}
	}
	z, err := zip.OpenReader("../../firmware-images/" + chip + "-demo.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	f, err := z.Open("mos-demo.bin")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(f)
	c, _ := chips.ByKey(chip)
	img, err := fwimage.ParseFor(c, raw)
	if err != nil {
		t.Fatal(err)
	}
	var code [][2]uint64
	for _, s := range img.Segments {
		if s.Addr >= 0x40000000 {
			code = append(code, [2]uint64{uint64(s.Addr), uint64(s.Addr) + uint64(len(s.Data))})
		}
	}
	return code
}

// TestDemoCrash makes the demo crash and checks the report is in the
// chip's format, with its addresses in the app's code, and that the chip
// reboots as it does after a panic.
func TestDemoCrash(t *testing.T) {
	hex := `0x[0-9a-f]{8}`
	for _, tc := range []struct {
		chip    string
		lines   []string // in this order
		pcs     string   // regexp: the code addresses to check, in group 1
		reset   string   // what the next boot prints
		minAddr int      // how many code addresses at least
	}{
		{
			chip: "esp32",
			lines: []string{
				`Guru Meditation Error: Core  0 panic'ed \(StoreProhibited\)\. Exception was unhandled\.`,
				`Core  0 register dump:`,
				`PC      : ` + hex + `  PS      : 0x00060830  A0      : 0x8[0-9a-f]{7}  A1      : ` + hex,
				`.*EXCCAUSE: 0x0000001d`,
				`Backtrace:( ` + hex + `:` + hex + `){4}`,
				`Rebooting\.\.\.`,
			},
			pcs:     `(?:PC      : |Backtrace:.*? |[0-9a-f] )(` + hex + `):0x3ff|PC      : (` + hex + `)`,
			reset:   "rst:0xc (SW_CPU_RESET)",
			minAddr: 4,
		},
		{
			chip: "esp32c3",
			lines: []string{
				`Guru Meditation Error: Core  0 panic'ed \(Store access fault\)\. Exception was unhandled\.`,
				`MEPC    : ` + hex + `  RA      : ` + hex + `  SP      : ` + hex,
				`.*MCAUSE  : 0x00000007`,
				`Stack memory:`,
				`3fc9a6d0: ` + hex + ` ` + hex,
				`Rebooting\.\.\.`,
			},
			pcs:     `(?:MEPC|RA)\s*: (` + hex + `)|3fc9a6[de]0: (?:0x[0-9a-f]{8} ){3}(` + hex + `)`,
			reset:   "rst:0x3 (RTC_SW_SYS_RST)",
			minAddr: 3,
		},
		{
			chip: "esp8266",
			lines: []string{
				`Exception \(29\):`,
				`epc1=` + hex + ` epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000`,
				`>>>stack>>>`,
				`sp: 3ffffd80 end: 3fffffc0`,
				`3ffffd80:  3ffe8a10 0000002a 3ffef2c4 4021[0-9a-f]{4}`,
				`<<<stack<<<`,
			},
			pcs:     `epc1=(` + hex + `)|3ffef2c4 (4021[0-9a-f]{4})`,
			reset:   "Reset cause: 2 (exception)",
			minAddr: 3,
		},
	} {
		t.Run(tc.chip, func(t *testing.T) {
			dc := bootDemo(t, tc.chip, "")
			mark := dc.mark()
			r := dc.call("Sys.Crash", nil)
			if r.Error != nil || string(r.Result) != "null" {
				t.Fatalf("Sys.Crash: %s", r.raw)
			}
			out := dc.waitFor(mark, "Init done", 5*time.Second)
			if strings.Contains(out, "\n") && !strings.Contains(out, "\r\n") {
				t.Errorf("the report's lines must end in CR LF as the chips print them")
			}
			rest := out
			for _, l := range tc.lines {
				loc := regexp.MustCompile(`(?m)^` + l).FindStringIndex(rest)
				if loc == nil {
					t.Fatalf("no line %q (in order) in:\n%s", l, out)
				}
				rest = rest[loc[1]:]
			}
			if i, j := strings.Index(out, `"result":null`), strings.Index(out, strings.Split(tc.lines[0], `\`)[0]); i < 0 || j < i {
				t.Errorf("the reply must come before the crash:\n%s", out)
			}
			if !strings.Contains(rest, tc.reset) {
				t.Errorf("no %q after the report:\n%s", tc.reset, rest)
			}
			code := appCode(t, tc.chip)
			n := 0
			for _, m := range regexp.MustCompile(tc.pcs).FindAllStringSubmatch(out, -1) {
				for _, g := range m[1:] {
					if g == "" {
						continue
					}
					a, _ := strconv.ParseUint(strings.TrimPrefix(g, "0x"), 16, 32)
					n++
					in := false
					for _, c := range code {
						in = in || a >= c[0] && a < c[1]
					}
					if !in {
						t.Errorf("address %s is not in the app's code %x", g, code)
					}
				}
			}
			if n < tc.minAddr {
				t.Errorf("found %d code addresses, want %d or more, in:\n%s", n, tc.minAddr, out)
			}
			// the same image crashes at the same place: a second crash
			// prints the same report
			report := func(s string) string {
				i := strings.Index(s, strings.Split(tc.lines[0], `\`)[0])
				j := strings.Index(s, "<<<stack<<<")
				if j < 0 {
					j = strings.Index(s, "Rebooting...")
				}
				if i < 0 || j < i {
					return ""
				}
				return s[i:j]
			}
			mark = dc.mark()
			dc.result("Sys.Crash", nil, nil)
			again := dc.waitFor(mark, "Init done", 5*time.Second)
			if a, b := report(out), report(again); a == "" || a != b {
				t.Errorf("second crash differs:\n%s\nthen\n%s", a, b)
			}
		})
	}
}
