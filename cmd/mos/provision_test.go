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

// Provisioning keeps the board's data partitions (its saved settings
// survive a second run); --erase-data replaces them and says so before
// writing. A failed run reports the steps it got through with its error.
func TestProvisionDataPartitions(t *testing.T) {
	id := t.Name()
	url := "sim://esp32?fast=1&id=" + id
	defer func() {
		if d := sim.Shared(id); d != nil {
			d.Close()
		}
	}()
	set := []string{"--port", url, "provision", "--set", "debug.level=3", "--json"}
	steps := func(t *testing.T, doc map[string]any) map[string]map[string]any {
		t.Helper()
		res, ok := doc["result"].(map[string]any)
		if !ok {
			t.Fatalf("no result: %v", doc)
		}
		m := map[string]map[string]any{}
		for _, s := range res["steps"].([]any) {
			m[s.(map[string]any)["step"].(string)] = s.(map[string]any)
		}
		return m
	}
	if r := (mos{}).run(t, set...); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r := mos{}.run(t, set...)
	doc := oneJSON(t, r.stdout)
	st := steps(t, doc)
	if r.code != 0 || st["config"]["status"] != "skipped" || !strings.Contains(st["flash"]["detail"].(string), "the board's data kept (fs)") {
		t.Fatalf("second run: exit %d, steps %v", r.code, st)
	}
	if w := doc["warnings"].([]any); len(w) != 0 {
		t.Errorf("warnings %v", w)
	}

	r = mos{}.run(t, append(set, "--erase-data")...)
	doc = oneJSON(t, r.stdout)
	st = steps(t, doc)
	if r.code != 0 || st["config"]["status"] != "done" {
		t.Fatalf("--erase-data: exit %d, steps %v (the saved setting should be gone)", r.code, st)
	}
	warned := false
	for _, w := range doc["warnings"].([]any) {
		warned = warned || (strings.Contains(w.(string), "fs at 0x") && strings.HasSuffix(w.(string), "as --erase-data asks"))
	}
	if !warned {
		t.Errorf("--erase-data: no warning naming fs: %v", doc["warnings"])
	}

	r = mos{}.run(t, "--port", url, "provision", "--wifi-ssid", "mos-demo-net", "--wifi-pass", "wrong-password", "--json")
	doc = oneJSON(t, r.stdout)
	e, _ := doc["error"].(map[string]any)
	st = steps(t, doc)
	if r.code != output.ExitWiFiAuth || e["name"] != "wifi_wrong_password" || st["wifi"]["status"] != "failed" || st["boot"]["status"] != "done" {
		t.Fatalf("failed run: exit %d, error %v, steps %v", r.code, e, st)
	}
	if doc["result"].(map[string]any)["complete"] != false {
		t.Errorf("failed run reported complete")
	}
}
