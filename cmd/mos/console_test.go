package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// consoleFor runs `mos console ARGS` for d (it runs until stopped) and
// returns its output.
func consoleFor(t *testing.T, m mos, d time.Duration, args ...string) outcome {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.getenv = func(k string) string { return m.env[k] }
	a.listPorts = m.listPorts
	if a.listPorts == nil {
		a.listPorts = func() ([]port.Info, error) { return nil, nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	code := execute(ctx, a, args)
	return outcome{code, out.String(), errb.String(), a}
}

// Into a pipe, the console writes the device's lines as plain text: no
// escape codes, RPC frames hidden, timestamps and filter as asked, and a
// timestamped copy in the log file.
func TestConsolePlainOnDemoFirmware(t *testing.T) {
	// A device per run, from one flash file: each console sees a boot.
	dev := "sim://esp32?fast=1&flash-file=" + filepath.Join(t.TempDir(), "flash.bin")
	if r := (mos{}).run(t, "--port", dev, "flash", filepath.Join("..", "..", "firmware-images", "esp32-demo.zip")); r.code != 0 {
		t.Fatalf("flash: exit %d: %s", r.code, r.stderr)
	}
	logFile := filepath.Join(t.TempDir(), "console.log")
	r := consoleFor(t, mos{}, 1500*time.Millisecond, "console", "--port", dev, "--timestamps", "start", "--log-file", logFile)
	if r.code != output.ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "\x1b") {
		t.Errorf("escape codes in plain output: %q", r.stdout)
	}
	for _, want := range []string{"mgos_init.c:33", "Init done"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		if len(l) < 10 || l[5] != '.' {
			t.Errorf("line without a since-start timestamp: %q", l)
		}
	}
	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), "Init done") || !strings.HasPrefix(string(logged), time.Now().Format("2006-01-02T")) {
		t.Errorf("log file lacks dated lines:\n%s", logged)
	}

	r = consoleFor(t, mos{}, time.Second, "console", "--port", dev, "--filter-regex", `^mgos_(init|vfs)\.c`)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 2 {
		t.Errorf("filtered output: %q, want the init and vfs lines", r.stdout)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "mgos_init.c") && !strings.HasPrefix(l, "mgos_vfs.c") {
			t.Errorf("filtered output has %q", l)
		}
	}
}

func TestConsoleUsage(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		ports []port.Info
		want  string
	}{
		{"no port, none present", []string{"console"}, nil, "no serial port found"},
		{"no port, several", []string{"console"}, []port.Info{{Name: "/dev/ttyUSB0", USB: true}, {Name: "/dev/ttyUSB1", USB: true}}, "several serial ports"},
		{"bad timestamps", []string{"console", "-p", "sim://esp32", "--timestamps", "weekly"}, nil, "--timestamps"},
		{"bad regex", []string{"console", "-p", "sim://esp32", "--filter-regex", "("}, nil, "--filter-regex"},
		{"both filters", []string{"console", "-p", "sim://esp32", "--filter", "a", "--filter-regex", "b"}, nil, "together"},
		{"bad ending", []string{"console", "-p", "sim://esp32", "--line-ending", "x"}, nil, "--line-ending"},
		{"missing elf", []string{"console", "-p", "sim://esp32", "--elf", "/no/such.elf"}, nil, "--elf"},
		{"bad address", []string{"console", "-p", "ftp://x"}, nil, "bad port address"},
		{"json", []string{"console", "-p", "sim://esp32", "--json"}, nil, "--json"},
		{"bad chip", []string{"console", "-p", "sim://esp8266", "--chip", "esp9000"}, nil, `--chip: unknown chip "esp9000"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mos{listPorts: func() ([]port.Info, error) { return tc.ports, nil }}
			r := consoleFor(t, m, 2*time.Second, tc.args...)
			if r.code != output.ExitUsage {
				t.Fatalf("exit %d, want %d (usage): %s", r.code, output.ExitUsage, r.stderr)
			}
			// The error goes to stderr, or into the JSON document with --json.
			if !strings.Contains(r.stderr+r.stdout, tc.want) {
				t.Fatalf("error output %q lacks %q", r.stderr+r.stdout, tc.want)
			}
		})
	}
}

// The hints of provision's errors send users to plain `mos console`: with
// one board plugged in it must open that board without further flags.
func TestConsoleHintWorksWithOneBoard(t *testing.T) {
	dev := "sim://esp32?fast=1&id=" + t.Name()
	m := mos{listPorts: func() ([]port.Info, error) {
		return []port.Info{{Name: "/dev/ttyS0"}, {Name: dev, USB: true}}, nil
	}}
	r := consoleFor(t, m, 3*time.Second, "console")
	// The board has blank flash: its ROM prints its banner at power-on
	// (which may come before the console is listening) and then, for ever,
	// that the flash holds no image.
	if r.code != output.ExitOK || !(strings.Contains(r.stdout, "rst:0x") || strings.Contains(r.stdout, "invalid header: 0xffffffff")) {
		t.Fatalf("plain `mos console` with one board: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// With --chip esp8266, the ROM's boot messages at 74880 baud are legible
// into a pipe as well: the board powers on when the console opens it (its
// banner is read at 115200 and lost), the console follows the ROM to its
// rate for the load lines and back for the application's log, and says so
// on stderr.
func TestConsoleFollowsESP8266BootBaud(t *testing.T) {
	flash := filepath.Join(t.TempDir(), "flash.bin")
	if r := (mos{}).run(t, "--port", "sim://esp8266?fast=1&flash-file="+flash, "flash", filepath.Join("..", "..", "firmware-images", "esp8266-demo.zip")); r.code != 0 {
		t.Fatalf("flash: exit %d: %s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		chip   []string
		follow bool
	}{
		{[]string{"--chip", "esp8266"}, true},
		{nil, false},
	} {
		t.Run(fmt.Sprint(tc.chip), func(t *testing.T) {
			args := append([]string{"console", "--port", "sim://esp8266?flash-file=" + flash}, tc.chip...)
			r := consoleFor(t, mos{}, 4*time.Second, args...)
			if r.code != output.ExitOK || !strings.Contains(r.stdout, "Init done") {
				t.Fatalf("exit %d, no application log:\n%s%s", r.code, r.stdout, r.stderr)
			}
			followed := strings.Contains(r.stdout, "load 0x40100000, len ") &&
				strings.Contains(r.stderr, "following the ROM boot messages at 74880 baud") &&
				strings.Contains(r.stderr, "following the application at 115200 baud")
			if followed != tc.follow {
				t.Errorf("ROM text followed: %v, want %v\nstdout:\n%s\nstderr:\n%s", followed, tc.follow, r.stdout, r.stderr)
			}
		})
	}
}
