package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
)

// A wrong password and a missing network are told apart, with their own
// exit codes; success gives the address the device got.
func TestWifi(t *testing.T) {
	url := fastDemo(t) // the default environment has mos-demo-net (WPA2) and CoffeeShop (open)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong password", []string{"mos-demo-net", "not-the-password"}, output.ExitWiFiAuth,
			`wrong Wi-Fi password for "mos-demo-net" (reason: 202); the previous settings were restored (Wi-Fi station off)`},
		{"not found", []string{"NoSuchNet", "whatever-1234"}, output.ExitWiFiNotFound,
			`Wi-Fi network "NoSuchNet" not found (reason: 201); the previous settings were restored (Wi-Fi station off)`},
		{"open network", []string{"CoffeeShop"}, 0, ""},
		{"connects", []string{"mos-demo-net", "demo-pass-1234"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{}.run(t, append([]string{"--port", url, "wifi", "--json"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			doc := oneJSON(t, r.stdout)
			if tt.code != 0 {
				e := doc["error"].(map[string]any)
				if e["message"] != tt.want || e["name"] != output.CodeName(tt.code) {
					t.Fatalf("error %v", e)
				}
				return
			}
			res := doc["result"].(map[string]any)
			if res["ssid"] != tt.args[0] || !strings.HasPrefix(res["ip"].(string), "192.168.") {
				t.Fatalf("result %v", res)
			}
		})
	}
	// The last setting was saved: the device reports it after the command.
	r := mos{}.run(t, "--port", url, "info", "--json")
	w := oneJSON(t, r.stdout)["result"].(map[string]any)["wifi"].(map[string]any)
	if w["ssid"] != "mos-demo-net" || w["status"] != "got ip" || w["ap_ip"] != "" {
		t.Fatalf("wifi after: %v", w)
	}
}

func TestWifiNoNetworksAtAll(t *testing.T) {
	url, _ := demoDevice(t, "&fast=1&wifi=none")
	r := mos{}.run(t, "--port", url, "wifi", "mos-demo-net", "demo-pass-1234")
	if r.code != output.ExitWiFiNotFound || !strings.Contains(r.stderr, "Hint: check the network name") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

func TestWifiBadArgs(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "--port", url, "wifi", strings.Repeat("x", 33), "password")
	if r.code != output.ExitUsage {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "wifi")
	if r.code != output.ExitUsage {
		t.Fatalf("no SSID: exit %d %s", r.code, r.stderr)
	}
}

// wifiStatus polls `mos info` until the station reports want ("got ip")
// or a few seconds pass, and returns the last wifi object.
func wifiStatus(t *testing.T, url, want string) map[string]any {
	t.Helper()
	var w map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r := mos{}.run(t, "--port", url, "info", "--json")
		if r.code != 0 {
			continue // rebooting
		}
		w = oneJSON(t, r.stdout)["result"].(map[string]any)["wifi"].(map[string]any)
		if w["status"] == want {
			break
		}
	}
	return w
}

// A device online on one network stays online there when new Wi-Fi
// settings fail, also after a reboot, and the error says so; settings
// that work are kept across reboots.
func TestWifiFailureRestoresPrevious(t *testing.T) {
	url := fastDemo(t)
	if r := (mos{}).run(t, "--port", url, "wifi", "mos-demo-net", "demo-pass-1234"); r.code != 0 {
		t.Fatalf("first join: exit %d\n%s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"Neighbor", "not-the-password"}, output.ExitWiFiAuth, `wrong Wi-Fi password for "Neighbor" (reason: 202)`},
		{[]string{"NoSuchNet", "whatever-1234"}, output.ExitWiFiNotFound, `Wi-Fi network "NoSuchNet" not found (reason: 201)`},
	} {
		r := mos{}.run(t, append([]string{"--port", url, "wifi", "--json"}, tc.args...)...)
		e, _ := oneJSON(t, r.stdout)["error"].(map[string]any)
		want := tc.want + `; the previous settings were restored (Wi-Fi network "mos-demo-net")`
		if r.code != tc.code || e == nil || e["message"] != want {
			t.Fatalf("%v: exit %d, %v\nwant %q", tc.args, r.code, e, want)
		}
		if w := wifiStatus(t, url, "got ip"); w["status"] != "got ip" || w["ssid"] != "mos-demo-net" {
			t.Fatalf("%v: after the failure: %v", tc.args, w)
		}
		if r := (mos{}).run(t, "--port", url, "reboot"); r.code != 0 {
			t.Fatalf("reboot: exit %d\n%s", r.code, r.stderr)
		}
		if w := wifiStatus(t, url, "got ip"); w["status"] != "got ip" || w["ssid"] != "mos-demo-net" {
			t.Fatalf("%v: after a reboot: %v", tc.args, w)
		}
	}
	if r := (mos{}).run(t, "--port", url, "wifi", "CoffeeShop"); r.code != 0 {
		t.Fatalf("open network: exit %d\n%s", r.code, r.stderr)
	}
	if r := (mos{}).run(t, "--port", url, "reboot"); r.code != 0 {
		t.Fatalf("reboot: exit %d\n%s", r.code, r.stderr)
	}
	if w := wifiStatus(t, url, "got ip"); w["status"] != "got ip" || w["ssid"] != "CoffeeShop" {
		t.Fatalf("the working change was not kept: %v", w)
	}
}
