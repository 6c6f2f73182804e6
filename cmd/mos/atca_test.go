package main

import (
	"os"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/mos-tool/mos/sim/atca"
)

func TestATCACommands(t *testing.T) {
	url, dev := demoDevice(t, "&fast=1")
	run := func(args ...string) outcome {
		return mos{}.run(t, append([]string{"--port", url}, args...)...)
	}
	r := run("atca", "get-config")
	if r.code == 0 || !strings.Contains(r.stderr, "sys.atca.enable=true i2c.enable=true") {
		t.Fatalf("get-config with the library off: exit %d\n%s", r.code, r.stderr)
	}
	if r := run("config", "set", "sys.atca.enable=true", "i2c.enable=true"); r.code != 0 {
		t.Fatalf("config set: %d %s", r.code, r.stderr)
	}
	r = run("atca", "get-config", "--json")
	res, _ := oneJSON(t, r.stdout)["result"].(map[string]any)
	if r.code != 0 || res["config_locked"] != false || len(res["config"].(string)) != 256 {
		t.Fatalf("get-config: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// locking asks; with no terminal to ask on it refuses and does nothing
	r = run("atca", "lock-zone", "config")
	if r.code != 2 || !strings.Contains(r.stderr, "add --yes") || !strings.Contains(r.stderr, "lock the config zone") {
		t.Fatalf("lock-zone without --yes: exit %d\n%s", r.code, r.stderr)
	}
	if dev.CryptoChip().Locked(atca.ZoneConfig) {
		t.Fatal("the zone was locked without confirmation")
	}
	if r := run("atca", "lock-zone", "data", "--yes"); r.code == 0 || !strings.Contains(r.stderr, "config zone") {
		t.Fatalf("data before config: exit %d %s", r.code, r.stderr)
	}
	if r := run("atca", "lock-zone", "config", "--yes"); r.code != 0 || !dev.CryptoChip().Locked(atca.ZoneConfig) {
		t.Fatalf("lock-zone config --yes: exit %d %s", r.code, r.stderr)
	}
	if r := run("atca", "lock-zone", "config"); r.code != 0 || !strings.Contains(r.stdout, "already locked") {
		t.Fatalf("locking again: exit %d %s %s", r.code, r.stdout, r.stderr)
	}

	gen := run("atca", "gen-key", "0")
	if gen.code != 0 || !strings.Contains(gen.stdout, "BEGIN PUBLIC KEY") {
		t.Fatalf("gen-key: %d %s %s", gen.code, gen.stdout, gen.stderr)
	}
	get := run("atca-get-pub-key", "0") // the old spelling
	if get.code != 0 || get.stdout != gen.stdout {
		t.Fatalf("get-pub-key: %d\n%s\nwant\n%s%s", get.code, get.stdout, gen.stdout, get.stderr)
	}
	// replacing a key asks too
	if r := run("atca", "gen-key", "0"); r.code != 2 || !strings.Contains(r.stderr, "already holds a key") {
		t.Fatalf("gen-key over a key: exit %d %s", r.code, r.stderr)
	}
	if r := run("atca", "get-pub-key", "0"); r.stdout != gen.stdout {
		t.Fatal("the key changed without confirmation")
	}
	if r := run("atca", "lock-zone", "data", "--yes"); r.code != 0 || !dev.CryptoChip().Locked(atca.ZoneData) {
		t.Fatalf("lock-zone data: exit %d %s", r.code, r.stderr)
	}
	if r := run("atca", "lock-zone", "2"); r.code != 2 {
		t.Fatalf("zone 2: exit %d", r.code)
	}
}

// TestATCALockAsks: at a terminal, lock-zone says what it will do and
// goes on only on "y".
func TestATCALockAsks(t *testing.T) {
	url, dev := demoDevice(t, "&fast=1")
	if r := (mos{}).run(t, "--port", url, "config", "set", "sys.atca.enable=true", "i2c.enable=true"); r.code != 0 {
		t.Fatalf("config set: %d %s", r.code, r.stderr)
	}
	type answer struct {
		answer string
		code   int
		locked bool
	}
	answers := []answer{{"n\n", 2, false}, {"\n", 2, false}, {"y\n", 0, true}}
	for _, tt := range answers {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		old := os.Stdin
		os.Stdin = tty
		ptmx.Write([]byte(tt.answer))
		r := mos{}.run(t, "--port", url, "atca", "lock-zone", "config")
		os.Stdin = old
		ptmx.Close()
		tty.Close()
		if r.code != tt.code || !strings.Contains(r.stderr, "Continue? [y/N]") || !strings.Contains(r.stderr, "About to lock the config zone") {
			t.Fatalf("answer %q: exit %d\n%s", tt.answer, r.code, r.stderr)
		}
		if got := dev.CryptoChip().Locked(atca.ZoneConfig); got != tt.locked {
			t.Fatalf("answer %q: locked %v", tt.answer, got)
		}
	}
}
