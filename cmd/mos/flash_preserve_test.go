package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// ADDR:FILE inside a sector: by default the rest of the sector is kept;
// --no-preserve erases it and says so, as a warning, before writing.
func TestFlashUnalignedAddrFile(t *testing.T) {
	file := writeFile(t, "four.bin", []byte("four"))
	tests := []struct {
		name     string
		flags    []string
		kept     bool
		warnings int
	}{
		{"default keeps the sector", nil, true, 0},
		{"--no-preserve erases it and says so", []string{"--no-preserve"}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := strings.ReplaceAll(t.Name(), " ", "_")
			url := "sim://esp32?fast=1&id=" + id
			// power the device on and fill the sector before mos touches it
			p, err := sim.Open(url, demofw.New)
			if err != nil {
				t.Fatal(err)
			}
			dev := sim.Shared(id)
			old := bytes.Repeat([]byte("0123456789abcdef"), 0x100)
			if _, err := dev.Flash().Program(0x21000, old); err != nil {
				t.Fatal(err)
			}
			p.Close()
			defer dev.Close()
			args := append([]string{"--port", url, "flash", "0x21004:" + file, "--json"}, tt.flags...)
			r := mos{}.run(t, args...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			doc := oneJSON(t, r.stdout)
			warnings, _ := doc["warnings"].([]any)
			if len(warnings) != tt.warnings {
				t.Fatalf("warnings %v, want %d", warnings, tt.warnings)
			}
			if tt.warnings > 0 && !strings.Contains(warnings[0].(string), "0x21000-0x21003") {
				t.Fatalf("warning %q does not say which bytes are erased", warnings[0])
			}
			got := make([]byte, 0x1000)
			dev.Flash().ReadAt(got, 0x21000)
			want := append([]byte(nil), old...)
			if !tt.kept {
				want = bytes.Repeat([]byte{0xFF}, 0x1000)
			}
			copy(want[4:], "four")
			if !bytes.Equal(got, want) {
				t.Fatalf("sector 0x21000 after the write: % x ...", got[:16])
			}
		})
	}
}
