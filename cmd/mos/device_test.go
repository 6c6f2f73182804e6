package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

func TestChipInfoOnVirtualDevice(t *testing.T) {
	r := mos{}.run(t, "--port", "sim://esp32c3?fast=1", "chip-info", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr+r.stdout)
	}
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	if res["chip"] != "ESP32-C3" || res["flash_size"] != float64(4<<20) {
		t.Fatalf("result %v", res)
	}
}

func TestChipInfoBadPorts(t *testing.T) {
	tests := []struct {
		name string
		port string
		code int
		hint string
	}{
		{"absent", "/dev/no-such-tty", output.ExitPortNotFound, "mos ports"},
		{"no port", "", output.ExitUsage, ""},
		{"unknown scheme", "ftp://x", output.ExitUsage, ""},
		{"nobody listening", "rfc2217://127.0.0.1:1", output.ExitNoAnswer, ""},
		{"no auto-reset", "sim://esp32?fast=1&board=no-autoreset", output.ExitNoAnswer, "hold the BOOT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{}.run(t, "--port", tt.port, "--timeout", "200ms", "chip-info", "--json")
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			e := oneJSON(t, r.stdout)["error"].(map[string]any)
			if !strings.Contains(e["hint"].(string), tt.hint) {
				t.Errorf("hint %q lacks %q", e["hint"], tt.hint)
			}
		})
	}
}

// `mos sim serve` answers over RFC 2217 and raw TCP until interrupted.
func TestSimServe(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan outcome, 1)
	go func() {
		var r outcome
		r.app = newApp(&strings.Builder{}, &strings.Builder{})
		r.code = execute(ctx, r.app, []string{"sim", "serve", "--chip", "esp8266", "--listen", addr, "--fast"})
		done <- r
	}()
	var r outcome
	for i := 0; i < 50; i++ {
		r = mos{}.run(t, "--port", "rfc2217://"+addr, "chip-info")
		if r.code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "Chip:       ESP8266") {
		t.Fatalf("chip-info over RFC 2217: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	cancel()
	select {
	case s := <-done:
		if s.code != 0 {
			t.Fatalf("serve ended with exit %d after Ctrl-C", s.code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
}

func TestSimServeFlashFilePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.bin")
	c, _ := chips.ByKey("esp32")
	d, err := sim.New(sim.Config{Chip: c, FlashFile: path, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	d.Flash().Program(0x1000, []byte("persisted"))
	d.Close()
	st, err := os.Stat(path)
	if err != nil || st.Size() != 4<<20 {
		t.Fatalf("flash file: %v %v", st, err)
	}
	r := mos{}.run(t, "sim", "serve", "--flash-file", path, "--flash-size", "8M", "--listen", "127.0.0.1:0")
	if r.code != output.ExitBadInput || !strings.Contains(r.stderr, "--flash-size") {
		t.Fatalf("a flash file of another size must be refused: exit %d %s", r.code, r.stderr)
	}
}

// chip-info lists features as esptool's get_chip_features does, from the
// eFuses the virtual device holds (an ESP32-D0WD v3: 240 MHz rated, ADC
// reference calibrated, no coding scheme).
func TestChipInfoFeatures(t *testing.T) {
	tests := []struct {
		chip string
		want string
	}{
		{"esp32", "Features:   WiFi, BT, Dual Core, 240MHz, VRef calibration in efuse, Coding Scheme None\n"},
		{"esp8266", "Features:   WiFi\n"},
		{"esp32c3", "Features:   WiFi, BLE\n"},
	}
	for _, tt := range tests {
		t.Run(tt.chip, func(t *testing.T) {
			r := mos{}.run(t, "--port", "sim://"+tt.chip+"?fast=1", "chip-info")
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
				t.Fatalf("exit %d, stdout lacks %q:\n%s%s", r.code, tt.want, r.stdout, r.stderr)
			}
		})
	}
}

// A MAC reads the same in every command: lowercase pairs and colons.
func TestFormatMAC(t *testing.T) {
	for in, want := range map[string]string{
		"240AC4123461":      "24:0a:c4:12:34:61",
		"24:0A:C4:12:34:61": "24:0a:c4:12:34:61",
		"24-0a-c4-12-34-61": "24:0a:c4:12:34:61",
		"":                  "",
	} {
		if got := formatMAC(in); got != want {
			t.Errorf("formatMAC(%q) = %q, want %q", in, got, want)
		}
	}
	url := fastDemo(t)
	info := mos{}.run(t, "--port", url, "info")
	chip := mos{}.run(t, "--port", url, "chip-info", "--after", "hard-reset")
	mac := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "MAC") {
				f := strings.Fields(l)
				return f[len(f)-1]
			}
		}
		return ""
	}
	if mac(info.stdout) == "" || mac(info.stdout) != mac(chip.stdout) {
		t.Errorf("info says MAC %q, chip-info %q\n%s\n%s", mac(info.stdout), mac(chip.stdout), info.stdout+info.stderr, chip.stdout+chip.stderr)
	}
}
