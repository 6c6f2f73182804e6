package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/doctor"
	"github.com/mos-tool/mos/port"
)

// The command's exit code and output contract; the checks themselves are
// tested in package doctor.
func TestDoctorCommand(t *testing.T) {
	tests := []struct {
		name     string
		port     string
		json     bool
		code     int
		contains []string // in stdout
	}{
		{"healthy board, text", "sim://esp32?fast=1", false, 0,
			[]string{"[ok  ] sim://esp32?fast=1: the boot log is readable at 115200 baud"}},
		{"healthy board, json", "sim://esp32?fast=1", true, 0,
			[]string{`"problems": 0`, `"check": "boot-baud"`, `"status": "ok"`}},
		{"board that cannot be reset, text", "sim://esp32?fast=1&board=no-autoreset&download=1", false, 1,
			[]string{"[FAIL] sim://esp32?fast=1&board=no-autoreset&download=1: the board printed nothing after a reset", "fix: "}},
		{"board that cannot be reset, json", "sim://esp32?fast=1&board=no-autoreset&download=1", true, 1,
			[]string{`"problems": 1`, `"status": "problem"`, `"name": "failure"`, `"message": "mos doctor found 1 problem"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			a := newApp(&out, &errb)
			a.getenv = func(string) string { return "" }
			a.doctorEnv = func(addr string) doctor.Env {
				return doctor.Env{GOOS: "plan9", Port: addr, Open: port.Open, Listen: 300 * time.Millisecond}
			}
			args := []string{"--port", tt.port, "doctor"}
			if tt.json {
				args = append(args, "--json")
			}
			code := execute(context.Background(), a, args)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out.String(), errb.String())
			}
			if tt.json {
				oneJSON(t, out.String())
			}
			for _, s := range tt.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}
