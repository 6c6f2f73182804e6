package main

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomData(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestFlashAddrFileAndReflash(t *testing.T) {
	id := t.Name()
	url := "sim://esp32c3?fast=1&id=" + id
	data := randomData(70000, 1)
	file := writeFile(t, "app.bin", data)
	r := mos{}.run(t, "--port", url, "flash", "0x10000:"+file, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	regs := res["regions"].([]any)
	if len(regs) != 1 || regs[0].(map[string]any)["state"] != "verified" || res["complete"] != true {
		t.Fatalf("result %v", res)
	}
	dev := sim.Shared(id)
	got := make([]byte, len(data))
	dev.Flash().ReadAt(got, 0x10000)
	if !bytes.Equal(got, data) {
		t.Fatal("flash does not hold the file")
	}
	r = mos{}.run(t, "--port", url, "flash", "0x10000:"+file)
	if r.code != 0 || !strings.Contains(r.stdout, "unchanged") {
		t.Fatalf("re-flash: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// flash-read gives the same bytes back; the file appears only complete
	out := filepath.Join(t.TempDir(), "back.bin")
	r = mos{}.run(t, "--port", url, "flash-read", "0x10000", "70000", out)
	back, _ := os.ReadFile(out)
	if r.code != 0 || !bytes.Equal(back, data) {
		t.Fatalf("flash-read: exit %d, equal %v\n%s", r.code, bytes.Equal(back, data), r.stderr)
	}
	r = mos{}.run(t, "--port", url, "flash-erase", "0x10000", "0x1000")
	dev.Flash().ReadAt(got[:0x1000], 0x10000)
	if r.code != 0 || !bytes.Equal(got[:0x1000], bytes.Repeat([]byte{0xFF}, 0x1000)) {
		t.Fatalf("flash-erase: exit %d %s", r.code, r.stderr)
	}
}

// Bad inputs are refused before the board is touched: the virtual device
// stays in its boot loop (never reset into download mode).
func TestFlashRefusesBadInput(t *testing.T) {
	data := randomData(5000, 2)
	file := writeFile(t, "a.bin", data)
	tests := []struct {
		name  string
		args  []string
		code  int
		reset bool // the board is reached before the refusal (needs the chip or flash size)
	}{
		{"missing file", []string{"0x10000:/nonexistent/app.bin"}, output.ExitBadInput, false},
		{"not a bundle", []string{file}, output.ExitUsage, false},
		{"overlap", []string{"0x10000:" + file, "0x10800:" + file}, output.ExitBadInput, false},
		{"past flash end", []string{"0x3FF000:" + file}, output.ExitBadInput, true},
		{"unaligned", []string{"0x10001:" + file}, output.ExitBadInput, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := t.Name()
			url := "sim://esp32?fast=1&id=" + id
			args := append([]string{"--port", url, "flash"}, tt.args...)
			r := mos{}.run(t, args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			dev := sim.Shared(id)
			if dev == nil {
				if tt.reset {
					t.Fatal("the device was never opened")
				}
				return // refused before even opening the port
			}
			defer dev.Close()
			buf := make([]byte, 0x10000)
			dev.Flash().ReadAt(buf, 0x3F0000)
			if !bytes.Equal(buf, bytes.Repeat([]byte{0xFF}, len(buf))) {
				t.Fatal("flash was written despite the refusal")
			}
		})
	}
}

// The demo bundle flashes onto its chip and boots: the virtual device
// prints the app descriptor of the demo firmware.
func TestFlashDemoBundleBoots(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3", "esp8266"} {
		t.Run(chip, func(t *testing.T) {
			t.Parallel()
			id := t.Name()
			r := mos{}.run(t, "--port", "sim://"+chip+"?fast=1&id="+id, "flash", "../../firmware-images/"+chip+"-demo.zip")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			dev := sim.Shared(id)
			defer dev.Close()
			waitState(t, dev, "app")
		})
	}
}

func waitState(t *testing.T, dev *sim.Device, want string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if dev.State() == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("device state %q, want %q", dev.State(), want)
}

// A bundle for another chip is refused before any write, with a hint
// naming --chip; --chip overrides.
func TestFlashChipMismatch(t *testing.T) {
	id := t.Name()
	url := "sim://esp32c3?fast=1&id=" + id
	r := mos{}.run(t, "--port", url, "flash", "../../firmware-images/esp32-demo.zip", "--json")
	if r.code != output.ExitBadInput {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, output.ExitBadInput, r.stdout, r.stderr)
	}
	e := oneJSON(t, r.stdout)["error"].(map[string]any)
	if !strings.Contains(e["hint"].(string), "--chip") {
		t.Errorf("hint %q does not name --chip", e["hint"])
	}
	dev := sim.Shared(id)
	defer dev.Close()
	buf := make([]byte, 0x1000)
	dev.Flash().ReadAt(buf, 0x10000)
	if !bytes.Equal(buf, bytes.Repeat([]byte{0xFF}, len(buf))) {
		t.Fatal("flash written despite the chip mismatch")
	}
}

// --flash-size detect rewrites the bootloader header and its SHA-256, so
// the ROM still accepts it.
func TestFlashPatchesBootloaderParams(t *testing.T) {
	id := t.Name()
	r := mos{}.run(t, "--port", "sim://esp32?fast=1&flash=16M&id="+id, "flash", "../../firmware-images/esp32-demo.zip",
		"--flash-size", "detect", "--flash-mode", "dout", "--flash-freq", "80m")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dev := sim.Shared(id)
	defer dev.Close()
	hdr := make([]byte, 4)
	dev.Flash().ReadAt(hdr, 0x1000)
	if hdr[2] != 3 || hdr[3] != 0x4F {
		t.Fatalf("bootloader header % x: want mode 3 (dout), size 16MB (4) / 80m (F)", hdr)
	}
	waitState(t, dev, "app") // the recomputed digest is accepted
}
