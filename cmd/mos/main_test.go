package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// mos runs one command line in-process, the way main does, with the given
// port enumeration and environment.
type mos struct {
	listPorts func() ([]port.Info, error)
	env       map[string]string
}

type outcome struct {
	code           int
	stdout, stderr string
	app            *app
}

func (m mos) run(t *testing.T, args ...string) outcome {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.getenv = func(k string) string { return m.env[k] }
	a.listPorts = m.listPorts
	if a.listPorts == nil {
		a.listPorts = func() ([]port.Info, error) { return nil, nil }
	}
	code := execute(context.Background(), a, args)
	return outcome{code, out.String(), errb.String(), a}
}

// oneJSON checks that s is exactly one JSON document and decodes it.
func oneJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, s)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one document:\n%s", s)
	}
	return doc
}

func TestRunUsesRealMain(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "mos ") {
		t.Errorf("stdout = %q", out.String())
	}
}

func TestVersion(t *testing.T) {
	r := mos{}.run(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "mos ") || !strings.Contains(r.stdout, "go:") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestVersionJSON(t *testing.T) {
	r := mos{}.run(t, "version", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	doc := oneJSON(t, r.stdout)
	res, ok := doc["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result object:\n%s", r.stdout)
	}
	for _, k := range []string{"version", "commit", "date", "go_version", "os", "arch"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %q:\n%s", k, r.stdout)
		}
	}
	if res["version"] == "" {
		t.Errorf("empty version")
	}
}

var samplePorts = []port.Info{
	{Name: "/dev/ttyUSB0", USB: true, VID: "10c4", PID: "ea60", SerialNumber: "0001", Bridge: "CP210x"},
	{Name: "/dev/ttyS0"},
}

func TestPorts(t *testing.T) {
	r := mos{listPorts: func() ([]port.Info, error) { return samplePorts, nil }}.run(t, "ports")
	want := "PORT          VID:PID    SERIAL  BRIDGE\n" +
		"/dev/ttyUSB0  10c4:ea60  0001    CP210x\n" +
		"/dev/ttyS0    -          -       -\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
}

func TestPortsJSON(t *testing.T) {
	tests := []struct {
		name      string
		ports     []port.Info
		wantCount int
		wantWarn  int
	}{
		{"none", nil, 0, 1},
		{"two", samplePorts, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{listPorts: func() ([]port.Info, error) { return tt.ports, nil }}.run(t, "ports", "--json")
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			doc := oneJSON(t, r.stdout)
			list, ok := doc["result"].([]any)
			if !ok {
				t.Fatalf("result is not an array:\n%s", r.stdout)
			}
			if len(list) != tt.wantCount {
				t.Errorf("%d ports, want %d", len(list), tt.wantCount)
			}
			if w, _ := doc["warnings"].([]any); len(w) != tt.wantWarn {
				t.Errorf("warnings = %v, want %d", doc["warnings"], tt.wantWarn)
			}
		})
	}
}

func TestPortsNoneText(t *testing.T) {
	r := mos{}.run(t, "ports")
	if r.code != 0 || r.stdout != "" || !strings.HasPrefix(r.stderr, "Warning: no serial ports found") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestPortsListError(t *testing.T) {
	busy := &port.Error{Kind: port.KindPermission, Port: "/dev", Op: "list", Err: errors.New("EACCES")}
	r := mos{listPorts: func() ([]port.Info, error) { return nil, busy }}.run(t, "ports", "--json")
	if r.code != output.ExitPermission {
		t.Errorf("exit %d, want %d", r.code, output.ExitPermission)
	}
	doc := oneJSON(t, r.stdout)
	if e, _ := doc["error"].(map[string]any); e["code"] != float64(output.ExitPermission) || e["hint"] == "" {
		t.Errorf("error = %v", doc["error"])
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown flag", []string{"version", "--frobnicate"}, "unknown flag: --frobnicate"},
		{"unknown root flag", []string{"--frobnicate"}, "unknown flag: --frobnicate"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown command suggests", []string{"prots"}, "did you mean ports?"},
		{"extra argument", []string{"ports", "extra"}, `unknown command "extra"`},
		{"bad flag value", []string{"ports", "--baud", "fast"}, "invalid argument"},
		{"bad baud", []string{"ports", "--baud", "0"}, "--baud must be positive"},
		{"bad timeout", []string{"ports", "--timeout", "-1s"}, "--timeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{}.run(t, tt.args...)
			if r.code != output.ExitUsage {
				t.Errorf("exit %d, want %d", r.code, output.ExitUsage)
			}
			if !strings.Contains(r.stderr, tt.wantErr) || !strings.Contains(r.stderr, "Hint: run `mos") {
				t.Errorf("stderr = %q, want it to contain %q and a hint", r.stderr, tt.wantErr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// With --json, even a usage error found before the printer exists is a
// JSON document.
func TestUsageErrorJSON(t *testing.T) {
	for _, args := range [][]string{
		{"--json", "version", "--frobnicate"},
		{"version", "--frobnicate", "--json"},
		{"--json", "frobnicate"},
	} {
		r := mos{}.run(t, args...)
		if r.code != output.ExitUsage {
			t.Errorf("%v: exit %d", args, r.code)
		}
		doc := oneJSON(t, r.stdout)
		if e, _ := doc["error"].(map[string]any); e["name"] != "usage" {
			t.Errorf("%v: error = %v", args, doc["error"])
		}
	}
}

func TestGlobalFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want globalOptions
	}{
		{"defaults", nil, nil, globalOptions{Baud: 115200, Timeout: 20 * time.Second}},
		{"env port", nil, map[string]string{"MOS_PORT": "/dev/ttyACM0"},
			globalOptions{Port: "/dev/ttyACM0", Baud: 115200, Timeout: 20 * time.Second}},
		{"flag beats env", []string{"-p", "sim://esp32"}, map[string]string{"MOS_PORT": "/dev/ttyACM0"},
			globalOptions{Port: "sim://esp32", Baud: 115200, Timeout: 20 * time.Second}},
		{"all", []string{"--port", "COM3", "--baud", "921600", "--timeout", "1m", "--json", "-v"}, nil,
			globalOptions{Port: "COM3", Baud: 921600, Timeout: time.Minute, JSON: true, Verbose: true}},
		{"old baud-rate spelling", []string{"--baud-rate", "460800"}, nil,
			globalOptions{Baud: 460800, Timeout: 20 * time.Second}},
		{"old spelling with =", []string{"--baud-rate=230400"}, nil,
			globalOptions{Baud: 230400, Timeout: 20 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{env: tt.env}.run(t, append([]string{"version"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if r.app.opts != tt.want {
				t.Errorf("options = %+v, want %+v", r.app.opts, tt.want)
			}
		})
	}
}

func TestOldFlagHiddenFromHelp(t *testing.T) {
	r := mos{}.run(t, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--baud ") || strings.Contains(r.stdout, "baud-rate") {
		t.Errorf("exit %d, help:\n%s", r.code, r.stdout)
	}
}

func TestNoArgsShowsHelp(t *testing.T) {
	r := mos{}.run(t)
	if r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("exit %d, stdout:\n%s", r.code, r.stdout)
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.listPorts = func() ([]port.Info, error) {
		cancel() // Ctrl-C while the command runs
		return nil, errors.New("enumeration aborted")
	}
	if code := execute(ctx, a, []string{"ports"}); code != output.ExitInterrupted {
		t.Errorf("exit %d, want %d", code, output.ExitInterrupted)
	}
	if errb.String() != "Interrupted.\n" {
		t.Errorf("stderr = %q", errb.String())
	}
}
