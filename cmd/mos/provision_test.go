package main

import (
	"strings"
	"testing"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

// One command from blank flash to "Wi-Fi connected, configured"; the
// second run skips flashing and Wi-Fi.
func TestProvisionBlankToConnected(t *testing.T) {
	id := t.Name()
	url := "sim://esp32?fast=1&id=" + id
	defer func() {
		if d := sim.Shared(id); d != nil {
			d.Close()
		}
	}()
	args := []string{"--port", url, "provision", "--wifi-ssid", "mos-demo-net", "--wifi-pass", "demo-pass-1234", "--set", "debug.level=3", "--json"}
	r := mos{}.run(t, args...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	status := map[string]string{}
	for _, s := range res["steps"].([]any) {
		m := s.(map[string]any)
		status[m["step"].(string)] = m["status"].(string)
	}
	if status["flash"] != "done" || status["wifi"] != "done" || status["config"] != "done" || status["verify"] != "done" {
		t.Fatalf("first run steps %v", status)
	}
	dev := res["device"].(map[string]any)
	if w := dev["wifi"].(map[string]any); w["status"] != "got ip" || w["ssid"] != "mos-demo-net" {
		t.Fatalf("device %v", dev)
	}
	r = mos{}.run(t, args...)
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	res = oneJSON(t, r.stdout)["result"].(map[string]any)
	for _, s := range res["steps"].([]any) {
		m := s.(map[string]any)
		if st := m["step"]; (st == "flash" || st == "wifi" || st == "config") && m["status"] != "skipped" {
			t.Errorf("second run: %s %s, want skipped", st, m["status"])
		}
	}
}

func TestProvisionWrongPassword(t *testing.T) {
	id := t.Name()
	defer func() {
		if d := sim.Shared(id); d != nil {
			d.Close()
		}
	}()
	r := mos{}.run(t, "--port", "sim://esp32c3?fast=1&id="+id, "provision", "--wifi-ssid", "mos-demo-net", "--wifi-pass", "wrong-password")
	if r.code != output.ExitWiFiAuth || !strings.Contains(strings.ToLower(r.stderr), "password") {
		t.Fatalf("exit %d, want %d (wrong password)\n%s", r.code, output.ExitWiFiAuth, r.stderr)
	}
}
