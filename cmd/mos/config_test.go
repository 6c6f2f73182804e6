package main

import (
	"strings"
	"testing"

	"github.com/mos-tool/mos/output"
)

func TestConfigGetSet(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "--port", url, "config", "get", "--json")
	tree := oneJSON(t, r.stdout)["result"].(map[string]any)
	if r.code != 0 || tree["wifi"] == nil || tree["device"] == nil {
		t.Fatalf("config get: exit %d %v", r.code, tree)
	}
	r = mos{}.run(t, "--port", url, "config", "set", "debug.level=3", "mqtt.server=broker.example.com:8883",
		"mqtt.reconnect_timeout_min=2.5", "mqtt.enable=true", "--json")
	if r.code != 0 {
		t.Fatalf("config set: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	changed := res["changed"].(map[string]any)
	if res["saved"] != true || res["rebooted"] != true || changed["debug.level"] != 3.0 || changed["mqtt.enable"] != true ||
		changed["mqtt.reconnect_timeout_min"] != 2.5 || changed["mqtt.server"] != "broker.example.com:8883" {
		t.Fatalf("config set result %v", res)
	}
	// Saved: the values survive the reboot.
	r = mos{}.run(t, "--port", url, "config", "get", "mqtt")
	if r.code != 0 || !strings.Contains(r.stdout, `"server": "broker.example.com:8883"`) || !strings.Contains(r.stdout, `"enable": true`) {
		t.Fatalf("config get mqtt: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The old names, and setting what is already set.
	r = mos{}.run(t, "--port", url, "config-get", "debug.level")
	if r.code != 0 || r.stdout != "3\n" {
		t.Fatalf("config-get: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "config-set", "debug.level=3")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "nothing to change") {
		t.Fatalf("config-set unchanged: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "config-set", "--no-reboot", "device.id=kitchen")
	if r.code != 0 || !strings.Contains(r.stdout, "device.id = \"kitchen\"\nsaved (not rebooted") {
		t.Fatalf("config-set --no-reboot: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "config", "get", "device.id")
	if r.stdout != "\"kitchen\"\n" {
		t.Fatalf("device.id %q", r.stdout)
	}
}

// Unknown keys and values of the wrong type are refused with a clear
// message before anything reaches the device.
func TestConfigSetRejects(t *testing.T) {
	url := fastDemo(t)
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"wifi.sta.ssd=home"}, "wifi.sta.ssd: no such key; did you mean wifi.sta.ssid?"},
		{[]string{"debug.levle=3"}, "debug.levle: no such key; did you mean debug.level?"},
		{[]string{"wifi.sta.enable=yes please"}, `wifi.sta.enable: "yes please" is not a boolean`},
		{[]string{"debug.level=high"}, `debug.level: "high" is not an integer`},
		{[]string{"mqtt.reconnect_timeout_min=soon"}, `mqtt.reconnect_timeout_min: "soon" is not a number`},
		{[]string{"wifi.sta=x"}, "wifi.sta is a section, not a value"},
		{[]string{"novalue"}, `"novalue": want KEY=VALUE`},
	}
	for _, tt := range tests {
		r := mos{}.run(t, append([]string{"--port", url, "config", "set", "--json"}, tt.args...)...)
		e := oneJSON(t, r.stdout)["error"].(map[string]any)
		if r.code != output.ExitUsage || !strings.HasPrefix(e["message"].(string), tt.msg) {
			t.Errorf("%v: exit %d, %v", tt.args, r.code, e["message"])
		}
	}
	r := mos{}.run(t, "--port", url, "config", "get", "wifi.sta.ssd")
	if r.code != output.ExitUsage || !strings.Contains(r.stderr, "did you mean wifi.sta.ssid?") {
		t.Fatalf("config get unknown: exit %d %s", r.code, r.stderr)
	}
	// Nothing was changed or saved: no conf9.json.
	r = mos{}.run(t, "--port", url, "ls")
	if strings.Contains(r.stdout, "conf9.json") {
		t.Fatalf("a refused change reached the device: %s", r.stdout)
	}
}

// A value the firmware rejects is neither applied nor saved; Wi-Fi
// settings set with `config set` that cannot connect are rolled back as
// with `mos wifi`.
func TestConfigSetFailuresKeepSettings(t *testing.T) {
	url := fastDemo(t)
	if r := (mos{}).run(t, "--port", url, "wifi", "mos-demo-net", "demo-pass-1234"); r.code != 0 {
		t.Fatalf("join: exit %d\n%s", r.code, r.stderr)
	}
	saved := (mos{}).run(t, "--port", url, "get", "conf9.json")
	if saved.code != 0 || !strings.Contains(saved.stdout, "demo-pass-1234") {
		t.Fatalf("conf9.json: exit %d %q %s", saved.code, saved.stdout, saved.stderr)
	}
	tests := []struct {
		arg  string
		code int
		msg  string
	}{
		{"wifi.sta.pass=short", output.ExitDeviceError, "the device rejected the change: STA password must be between 8 and 63 chars; its settings are unchanged"},
		{"wifi.sta.ssid=" + strings.Repeat("n", 32), output.ExitDeviceError, "the device rejected the change: STA SSID must be between 1 and 31 chars; its settings are unchanged"},
		{"wifi.sta.pass=not-the-password", output.ExitWiFiAuth,
			`wrong Wi-Fi password for "mos-demo-net" (reason: 202); the previous settings were restored (Wi-Fi network "mos-demo-net")`},
	}
	for _, tt := range tests {
		r := (mos{}).run(t, "--port", url, "config", "set", "--json", tt.arg)
		e, _ := oneJSON(t, r.stdout)["error"].(map[string]any)
		if r.code != tt.code || e == nil || e["message"] != tt.msg {
			t.Errorf("%s: exit %d, %v", tt.arg, r.code, e)
		}
		if now := (mos{}).run(t, "--port", url, "get", "conf9.json"); now.stdout != saved.stdout {
			t.Errorf("%s: conf9.json changed:\n%s\nwas:\n%s", tt.arg, now.stdout, saved.stdout)
		}
		if r := (mos{}).run(t, "--port", url, "config", "get", "wifi.sta.pass"); r.stdout != "\"demo-pass-1234\"\n" {
			t.Errorf("%s: wifi.sta.pass %q", tt.arg, r.stdout)
		}
		if w := wifiStatus(t, url, "got ip"); w["status"] != "got ip" || w["ssid"] != "mos-demo-net" {
			t.Errorf("%s: offline after: %v", tt.arg, w)
		}
	}
}
