package main

import (
	"strings"
	"testing"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

// The Improv variant of the demo firmware is provisioned over Improv with
// --improv always; a wrong password is told by its exit code.
func TestWifiImprov(t *testing.T) {
	id := t.Name()
	url := "sim://esp32?fast=1&id=" + id
	defer func() {
		if d := sim.Shared(id); d != nil {
			d.Close()
		}
	}()
	if r := (mos{}).run(t, "--port", url, "flash", "../../firmware-images/esp32-improv-demo.zip"); r.code != 0 {
		t.Fatalf("flash: exit %d\n%s", r.code, r.stderr)
	}
	r := mos{}.run(t, "--port", url, "wifi", "--improv", "always", "mos-demo-net", "wrong-pass")
	if r.code != output.ExitWiFiAuth {
		t.Fatalf("wrong password over Improv: exit %d, want %d\n%s%s", r.code, output.ExitWiFiAuth, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "wifi", "--improv", "always", "mos-demo-net", "demo-pass-1234")
	if r.code != 0 || !strings.Contains(r.stdout, "IP 192.168.") || !strings.Contains(r.stderr, "Improv") {
		t.Fatalf("Improv provisioning: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := (mos{}).run(t, "--port", url, "wifi", "--improv", "sometimes", "x"); r.code != output.ExitUsage {
		t.Fatalf("bad --improv: exit %d", r.code)
	}
}
