package main

import (
	"strings"
	"testing"

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
		{"wrong password", []string{"mos-demo-net", "not-the-password"}, output.ExitWiFiAuth, `wrong Wi-Fi password for "mos-demo-net" (reason: 202)`},
		{"not found", []string{"NoSuchNet", "whatever-1234"}, output.ExitWiFiNotFound, `Wi-Fi network "NoSuchNet" not found (reason: 201)`},
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
