package demofw_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// joinWiFi does what `mos wifi SSID PASS` does: set, save, reboot. It
// returns the output mark of the new boot.
func (dc *demoConn) joinWiFi(ssid, pass string) int {
	dc.t.Helper()
	mark := dc.mark()
	var set struct{ Saved bool }
	dc.result("Config.Set", map[string]any{"config": map[string]any{"wifi": map[string]any{
		"ap":  map[string]any{"enable": false},
		"sta": map[string]any{"enable": true, "ssid": ssid, "pass": pass},
	}}, "save": true, "reboot": true}, &set)
	if !set.Saved {
		dc.t.Fatal("Config.Set did not save")
	}
	dc.waitFor(mark, "Init done", 5*time.Second)
	return mark
}

type wifiInfo struct {
	StaIP  string `json:"sta_ip"`
	ApIP   string `json:"ap_ip"`
	Status string
	SSID   string
}

func (dc *demoConn) wifiInfo() wifiInfo {
	dc.t.Helper()
	var info struct{ WiFi wifiInfo }
	dc.result("Sys.GetInfo", nil, &info)
	return info.WiFi
}

func TestDemoWiFiConnects(t *testing.T) {
	dc := bootDemo(t, "esp32", "")
	if w := dc.wifiInfo(); w.Status != "disconnected" || w.ApIP != "192.168.4.1" {
		t.Errorf("before: %+v", w)
	}
	mark := dc.joinWiFi("mos-demo-net", "demo-pass-1234")
	out := dc.since(mark)
	trying := regexp.MustCompile(`mgos_wifi_sta.c:611     Trying mos-demo-net AP 02:6d(:[0-9a-f]{2}){4} ch 6 RSSI -52 cfg 0 att 1\n`)
	if !trying.MatchString(out) || !strings.Contains(out, "mgos_net.c:89           WiFi STA: connecting\n") ||
		!strings.Contains(out, "WiFi mode: STA\n") {
		t.Errorf("connect log:\n%s", out)
	}
	if w := dc.wifiInfo(); w.Status != "connecting" || w.StaIP != "" || w.ApIP != "" {
		t.Errorf("while connecting: %+v", w)
	}
	out = dc.waitFor(mark, "WiFi STA: ready", 5*time.Second)
	mac := dc.dev.MAC()
	ip := fmt.Sprintf("192.168.1.%d", 100+int(mac[5])%100)
	if !strings.Contains(out, "mgos_wifi.c:83          WiFi STA: Connected, BSSID 02:6d:") ||
		!strings.Contains(out, "mgos_net.c:103          WiFi STA: ready, IP "+ip+", GW 192.168.1.1, DNS 192.168.1.1, NTP 0.0.0.0\n") {
		t.Errorf("connected log:\n%s", out)
	}
	if w := dc.wifiInfo(); w.Status != "got ip" || w.StaIP != ip || w.SSID != "mos-demo-net" {
		t.Errorf("connected: %+v", w)
	}
}

func TestDemoWiFiFailures(t *testing.T) {
	for _, tc := range []struct {
		ssid, pass string
		reason     int
		trying     string
	}{
		{"mos-demo-net", "wrong-password", 202, "Trying mos-demo-net AP 02:6d:"},
		{"NoSuchNet", "whatever", 201, "Trying NoSuchNet AP any ch 0 RSSI 0 cfg 0 att 1"},
	} {
		t.Run(fmt.Sprint(tc.reason), func(t *testing.T) {
			dc := bootDemo(t, "esp32", "")
			mark := dc.joinWiFi(tc.ssid, tc.pass)
			out := dc.waitFor(mark, "att 2", 5*time.Second) // it retries
			for _, want := range []string{tc.trying, fmt.Sprintf("mgos_wifi.c:70          WiFi STA: Disconnected, reason: %d\n", tc.reason),
				"mgos_net.c:84           WiFi STA: disconnected\n", "mgos_wifi_sta.c:638     Connect failed\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "ready") {
				t.Errorf("connected anyway:\n%s", out)
			}
			if w := dc.wifiInfo(); w.Status == "got ip" || w.StaIP != "" {
				t.Errorf("GetInfo: %+v", w)
			}
		})
	}
}

func TestDemoWiFiScanAndEnvironment(t *testing.T) {
	dc := bootDemo(t, "esp32", "&wifi=Lab:wpa2:-40:3:lab-pass-99,Open:open:-90:13")
	r := dc.call("Wifi.Scan", nil)
	var aps []struct {
		SSID, BSSID         string
		Auth, Channel, RSSI int
	}
	if err := json.Unmarshal(r.Result, &aps); err != nil || len(aps) != 2 {
		t.Fatalf("Wifi.Scan: %s", r.raw)
	}
	if aps[0].SSID != "Lab" || aps[0].Auth != 3 || aps[0].Channel != 3 || aps[0].RSSI != -40 || len(aps[0].BSSID) != 17 ||
		aps[1].SSID != "Open" || aps[1].Auth != 0 {
		t.Errorf("Wifi.Scan: %s", r.raw)
	}
	mark := dc.joinWiFi("Lab", "lab-pass-99")
	dc.waitFor(mark, "WiFi STA: ready, IP 192.168.1.", 5*time.Second)

	// the default environment holds the demo network
	dc2 := bootDemo(t, "esp8266", "")
	r = dc2.call("Wifi.Scan", nil)
	for _, ssid := range []string{`"ssid": "mos-demo-net"`, `"ssid": "CoffeeShop"`, `"ssid": "Neighbor"`, `"auth": 6`} {
		if !strings.Contains(r.raw, ssid) {
			t.Errorf("default scan lacks %s: %s", ssid, r.raw)
		}
	}
}
