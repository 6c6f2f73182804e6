package main

import (
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

// Every flag and argument is checked before the board is touched: each
// bad command line below is refused with exit 2, and the virtual device it
// names is never opened (so never reset, never sent a byte).
func TestBadFlagsNeverOpenThePort(t *testing.T) {
	file := writeFile(t, "app.bin", randomData(5000, 4))
	tests := []struct {
		name string
		args []string
		want string // in the error message
	}{
		{"flash mode with ADDR:FILE", []string{"flash", "0x10000:" + file, "--flash-mode", "quad"}, `--flash-mode: unknown flash mode "quad"`},
		{"flash mode with a bundle", []string{"flash", "../../firmware-images/esp32-demo.zip", "--flash-mode", "fast"}, "--flash-mode"},
		{"flash size", []string{"flash", "0x10000:" + file, "--flash-size", "3MB"}, `--flash-size: unknown flash size "3MB"`},
		{"flash freq", []string{"flash", "0x10000:" + file, "--flash-freq", "100m"}, `--flash-freq: unknown flash frequency "100m"`},
		{"flash size for the forced chip", []string{"flash", "0x10000:" + file, "--chip", "esp32", "--flash-size", "2MB-c1"}, "--flash-size with --chip esp32"},
		{"flash chip", []string{"flash", "0x10000:" + file, "--chip", "esp31"}, "--chip"},
		{"flash reset", []string{"flash", "0x10000:" + file, "--reset", "D0|X1"}, ""},
		{"flash after", []string{"flash", "0x10000:" + file, "--after", "soft-reset"}, "--after"},
		{"flash baud", []string{"flash", "0x10000:" + file, "--baud", "0"}, "--baud"},
		{"flash timeout", []string{"flash", "0x10000:" + file, "--timeout", "-1s"}, "--timeout"},
		{"flash-read address", []string{"flash-read", "0xZZ", "4K", "out.bin"}, "bad address"},
		{"flash-read size", []string{"flash-read", "0", "0", "out.bin"}, "bad size"},
		{"flash-read past any flash", []string{"flash-read", "0x7FFF000", "1M", "out.bin"}, "past the end of the largest flash"},
		{"flash-read folder missing", []string{"flash-read", "0", "4K", "/nonexistent/dir/out.bin"}, "cannot write"},
		{"flash-read into a folder", []string{"flash-read", "0", "4K", t.TempDir()}, "is a folder"},
		{"flash-read reset", []string{"flash-read", "0", "4K", "out.bin", "--reset", "sometimes"}, ""},
		{"flash-erase unaligned", []string{"flash-erase", "0x1001", "0x1000"}, "multiples of 4 KiB"},
		{"flash-erase one argument", []string{"flash-erase", "0x1000"}, "ADDR SIZE"},
		{"flash-erase after", []string{"flash-erase", "--after", "off"}, "--after"},
		{"chip-info reset", []string{"chip-info", "--reset", "W-5"}, ""},
		{"chip-info after", []string{"chip-info", "--after", "nope"}, "--after"},
		{"provision reset", []string{"provision", "--reset", "bogus"}, ""},
		{"provision set", []string{"provision", "--set", "novalue"}, "KEY=VALUE"},
		{"provision pass without ssid", []string{"provision", "--wifi-pass", "secret123"}, "--wifi-pass needs --wifi-ssid"},
		{"provision ssid too long", []string{"provision", "--wifi-ssid", strings.Repeat("n", 33)}, "1 to 32 bytes"},
		{"provision password too long", []string{"provision", "--wifi-ssid", "net", "--wifi-pass", strings.Repeat("p", 65)}, "at most 64"},
		{"provision demo and bundle", []string{"provision", "--demo", "../../firmware-images/esp32-demo.zip"}, "not both"},
		{"provision demo and no-flash", []string{"provision", "--demo", "--no-flash"}, "give one of them"},
		{"wifi ssid too long", []string{"wifi", strings.Repeat("n", 33), "pass"}, "1 to 32 bytes"},
		{"wifi improv", []string{"wifi", "--improv", "sometimes", "net"}, "--improv"},
		{"config set", []string{"config", "set", "novalue"}, "KEY=VALUE"},
		{"call params", []string{"call", "Sys.GetInfo", "{bad json"}, "not valid JSON"},
		{"get into a missing folder", []string{"get", "conf.json", "/nonexistent/dir/conf.json"}, "cannot write"},
		{"rpc creds", []string{"info", "--rpc-creds", "nopassword"}, "USER:PASS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := t.Name()
			args := append([]string{"--port", "sim://esp32?fast=1&id=" + id, "--json"}, tt.args...)
			r := mos{}.run(t, args...)
			if d := sim.Shared(id); d != nil {
				d.Close()
				t.Fatalf("the port was opened for a bad command line (exit %d)\n%s%s", r.code, r.stdout, r.stderr)
			}
			if r.code != output.ExitUsage {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, output.ExitUsage, r.stdout, r.stderr)
			}
			e := oneJSON(t, r.stdout)["error"].(map[string]any)
			if !strings.Contains(e["message"].(string), tt.want) {
				t.Errorf("message %q does not say %q", e["message"], tt.want)
			}
		})
	}
}

// countingServer is a TCP port that counts the clients that connect.
func countingServer(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// `mos provision` without a bundle would flash the demo firmware, which
// runs only on the virtual device: on any other port (a served virtual
// device looks like any board) it is refused before connecting, unless a
// bundle is named or --demo given.
func TestProvisionRefusesDemoOffSim(t *testing.T) {
	addr, clients := countingServer(t)
	tests := []struct {
		name    string
		port    string
		args    []string
		refused bool
	}{
		{"RFC 2217 server", "rfc2217://" + addr, nil, true},
		{"raw TCP", "socket://" + addr, nil, true},
		{"serial device", "/dev/ttyUSB-mos-test-none", nil, true},
		{"--demo asked for", "socket://" + addr, []string{"--demo"}, false},
		{"bundle named", "socket://" + addr, []string{"../../firmware-images/esp32-demo.zip"}, false},
		{"--no-flash", "socket://" + addr, []string{"--no-flash"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := clients.Load()
			args := append([]string{"--port", tt.port, "--timeout", "1s", "--json", "provision"}, tt.args...)
			r := mos{}.run(t, args...)
			if !tt.refused {
				// Not refused for that reason: it went on to connect (and
				// then fails, as nothing answers there).
				if r.code == output.ExitUsage {
					t.Fatalf("refused: %s", r.stdout)
				}
				time.Sleep(20 * time.Millisecond)
				if clients.Load() == before {
					t.Fatalf("never connected (exit %d)\n%s", r.code, r.stdout)
				}
				return
			}
			if r.code != output.ExitUsage {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, output.ExitUsage, r.stdout, r.stderr)
			}
			time.Sleep(20 * time.Millisecond) // let a connection that was made be counted
			if n := clients.Load() - before; n != 0 {
				t.Fatalf("%d connections made before the refusal", n)
			}
			e := oneJSON(t, r.stdout)["error"].(map[string]any)
			if msg := e["message"].(string); !strings.Contains(msg, "demo firmware runs only on the virtual device") {
				t.Errorf("message %q", msg)
			}
			if hint := e["hint"].(string); !strings.Contains(hint, "BUNDLE.zip") || !strings.Contains(hint, "--demo") {
				t.Errorf("hint %q does not say what to do", hint)
			}
		})
	}
}

func TestLoaderBaudTooLow(t *testing.T) {
	for _, args := range [][]string{
		{"--port", "sim://esp32?fast=1", "--baud", "50", "flash-read", "0", "4096", filepath.Join(t.TempDir(), "x.bin")},
		{"--port", "sim://esp32?fast=1", "flash", "--baud", "76", "0x10000:nofile.bin"},
	} {
		r := mos{}.run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "is below 77, the slowest rate") || !strings.Contains(r.stderr, "mos flash") {
			t.Errorf("%q: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	if minLoaderBaud() != 77 { // 80 MHz / (2^20 - 1), rounded up
		t.Errorf("minLoaderBaud() = %d", minLoaderBaud())
	}
}

// At a slow rate a 4 KiB reply takes longer on the wire (4.3 s at 9600
// baud) than the 3 s a reply used to be given: the wait follows the rate.
// The virtual device models the wire time here (no fast=1).
func TestSlowBaudRead(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.bin")
	r := mos{}.run(t, "--port", "sim://esp32", "--baud", "9600", "flash-read", "0", "8192", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
