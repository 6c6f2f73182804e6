package console

import (
	"fmt"
	"testing"
	"time"
)

func TestLevelOf(t *testing.T) {
	tests := []struct {
		text string
		want Level
	}{
		{"E (123) wifi: connect failed", LevelError},
		{"\x1b[0;33mW (5) nvs: low space\x1b[0m", LevelWarn},
		{"I (27) boot: ESP-IDF v5.3.1", LevelInfo},
		{"D (1) x: y", LevelDebug},
		{"V (1) x: y", LevelDebug},
		{"[Dec  7 02:00:00.123] mgos_vfs.c:284          /: mount failed: error 5", LevelError},
		{"mgos_sys_config.c:391  conf9.json: warning: unknown key", LevelWarn},
		{"mgos_init.c:33          Init done", LevelNone},
		{"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)", LevelBoot},
		{"ets Jun  8 2016 00:22:57", LevelBoot},
		{"Guru Meditation Error: Core  0 panic'ed (LoadProhibited)", LevelError},
		{"Backtrace: 0x400d1234:0x3ffb0000", LevelError},
		{"the user printed an error here", LevelNone}, // not a log-format line
	}
	for _, tc := range tests {
		if got := levelOf(tc.text); got != tc.want {
			t.Errorf("levelOf(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestParseHex(t *testing.T) {
	tests := []struct {
		in   string
		want string
		bad  bool
	}{
		{"de ad be ef", "deadbeef", false},
		{"0xde,0xad", "dead", false},
		{"DEAD", "dead", false},
		{"c0:ff:ee", "c0ffee", false},
		{"abc", "", true},
		{"zz", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		b, err := ParseHex(tc.in)
		if (err != nil) != tc.bad || fmt.Sprintf("%x", b) != tc.want {
			t.Errorf("ParseHex(%q) = %x, %v; want %s (error: %v)", tc.in, b, err, tc.want, tc.bad)
		}
	}
}

func TestSafeText(t *testing.T) {
	tests := []struct {
		in      string
		visible bool
		want    string
	}{
		{"\x1b[0;32mI (1) ok\x1b[0m", false, "I (1) ok"},
		{"\x1b[0;32mok\x1b[0m\r", true, "^[[0;32mok^[[0m^M"},
		{"a\tb", false, "a       b"},
		{"bell\x07", false, "bell"},
		{"bad \xff byte", false, "bad \uFFFD byte"},
		{"\x00\x7f", true, "^@^?"},
	}
	for _, tc := range tests {
		if got := safeText(tc.in, tc.visible); got != tc.want {
			t.Errorf("safeText(%q, %v) = %q, want %q", tc.in, tc.visible, got, tc.want)
		}
	}
}

func TestShortNames(t *testing.T) {
	got := shortNames([]string{"/dev/ttyUSB0", "rfc2217://lab:4000", "sim://esp32?fast=1", "sim://esp32", "COM3"})
	want := []string{"ttyUSB0", "lab:4000", "esp32#1", "esp32#2", "COM3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("shortNames = %q, want %q", got, want)
	}
}

func TestStamp(t *testing.T) {
	start := t0
	at := t0.Add(1500 * time.Millisecond)
	prev := t0.Add(1250 * time.Millisecond)
	tests := []struct {
		mode TimeMode
		want string
	}{
		{TimeAbs, "02:00:01.500"},
		{TimeStart, "    1.500"},
		{TimeDelta, "+   0.250"},
		{TimeOff, ""},
	}
	for _, tc := range tests {
		if got := stamp(tc.mode, at, start, prev); got != tc.want {
			t.Errorf("stamp(%v) = %q, want %q", tc.mode, got, tc.want)
		}
	}
	for _, s := range []string{"off", "absolute", "start", "delta"} {
		if _, err := ParseTimeMode(s); err != nil {
			t.Errorf("ParseTimeMode(%q): %v", s, err)
		}
	}
}
