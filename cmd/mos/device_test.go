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
