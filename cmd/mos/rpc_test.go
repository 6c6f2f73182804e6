package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// demoDevices numbers the virtual devices, so that each run (-count)
// gets its own.
var demoDevices atomic.Int64

// demoDevice makes a virtual ESP32 with the demo firmware programmed
// straight into its flash, booted, and returns its address. opts are more
// sim:// options ("&wifi=...", or "" and fast mode off with real=true).
func demoDevice(t *testing.T, opts string) (string, *sim.Device) {
	t.Helper()
	id := fmt.Sprintf("%s-%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), demoDevices.Add(1))
	url := "sim://esp32?id=" + id + opts
	hp, err := sim.Open(url, demofw.New)
	if err != nil {
		t.Fatal(err)
	}
	dev := hp.Device()
	t.Cleanup(func() { dev.Close() })
	if err := dev.ProgramBundle("../../firmware-images/esp32-demo.zip"); err != nil {
		t.Fatal(err)
	}
	hp.Close()
	dev.PressReset(false)
	return url, dev
}

func fastDemo(t *testing.T) string {
	url, _ := demoDevice(t, "&fast=1")
	return url
}

func TestInfo(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "--port", url, "info", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	if res["app"] != "mos-demo" || res["arch"] != "esp32" || res["fs_size"].(float64) <= 0 {
		t.Fatalf("result %v", res)
	}
	// Opening the port does not reset the board: the firmware keeps running.
	time.Sleep(1100 * time.Millisecond)
	r = mos{}.run(t, "--port", url, "info")
	if r.code != 0 || !strings.Contains(r.stdout, "App:      mos-demo 1.0.0") || !strings.Contains(r.stdout, "MAC:      24:0a:c4:") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "Uptime:   0s") {
		t.Fatalf("the board was reset when the port was opened:\n%s", r.stdout)
	}
}

func TestCall(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "--port", url, "call", "Config.Get", `{"key": "device.id"}`)
	if r.code != 0 || !strings.HasPrefix(r.stdout, `"esp32_`) {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "call", "RPC.List", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if list := oneJSON(t, r.stdout)["result"].([]any); len(list) < 5 {
		t.Fatalf("RPC.List %v", list)
	}
	r = mos{}.run(t, "--port", url, "call", "No.Such", "--json")
	e := oneJSON(t, r.stdout)["error"].(map[string]any)
	if r.code != output.ExitDeviceError || e["message"] != "No.Such: No handler for No.Such (code 404)" || !strings.Contains(e["hint"].(string), "RPC.List") {
		t.Fatalf("exit %d %v", r.code, e)
	}
	r = mos{}.run(t, "--port", url, "call", "Sys.GetInfo", "{bad")
	if r.code != output.ExitUsage {
		t.Fatalf("bad JSON: exit %d %s", r.code, r.stderr)
	}
}

func TestReboot(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "--port", url, "reboot", "--json")
	if r.code != 0 || oneJSON(t, r.stdout)["result"].(map[string]any)["rebooted"] != true {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// It really restarted: uptime starts again, and it answers.
	r = mos{}.run(t, "--port", url, "info", "--json")
	if r.code != 0 || oneJSON(t, r.stdout)["result"].(map[string]any)["uptime"].(float64) > 1 {
		t.Fatalf("after reboot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// A board whose firmware does not serve RPC (blank flash: the ROM prints
// its boot error in a loop; or the ROM loader waiting for download) is
// reported as such, with exit code 6, not as a timeout.
func TestNoRPCFirmware(t *testing.T) {
	tests := []struct {
		name, url, hint string
	}{
		// The ROM prints its boot error over and over: a device that talks
		// but not RPC.
		{"blank flash", "sim://esp32?fast=1", "does not serve RPC"},
		// The ROM loader says "waiting for download" once, maybe before
		// the port is open: then it is a silent port.
		{"ROM loader", "sim://esp32?fast=1&download=1", "rpc-uart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{}.run(t, "--port", tt.url, "--timeout", "700ms", "info", "--json")
			if r.code != output.ExitNoAnswer {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			e := oneJSON(t, r.stdout)["error"].(map[string]any)
			if !strings.Contains(e["message"].(string), "no RPC answer from "+tt.url) || !strings.Contains(e["hint"].(string), tt.hint) {
				t.Fatalf("error %v", e)
			}
		})
	}
}

func TestRPCCredsFlag(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "--port", url, "info", "--rpc-creds", "nocolon")
	if r.code != output.ExitUsage || !strings.Contains(r.stderr, "USER:PASS") {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	// Firmware without auth ignores the credentials.
	r = mos{}.run(t, "--port", url, "info", "--rpc-creds", "admin:pw")
	if r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
}
