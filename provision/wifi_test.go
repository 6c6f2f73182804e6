package provision

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestJoinWiFi(t *testing.T) {
	tests := []struct {
		name, ssid, pass string
		want             error
		code             int
	}{
		{"ok", "HomeNet", "correct horse", nil, 0},
		{"wrong password", "HomeNet", "battery staple", ErrWiFiWrongPassword, 11},
		{"not found", "Elsewhere", "whatever1", ErrWiFiNotFound, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFirmware(t)
			c := connectFake(t, f.fakeDevice, fastOpts())
			// Before the change the device was failing on other settings:
			// that must not count.
			f.log("mgos_wifi.c:70          WiFi STA: Disconnected, reason: 202")
			res, err := c.JoinWiFi(t.Context(), tt.ssid, tt.pass, WiFiOptions{Timeout: 5 * time.Second})
			if tt.want == nil {
				if err != nil || res.IP != "192.168.1.23" || res.SSID != "HomeNet" {
					t.Fatalf("%+v %v", res, err)
				}
			} else {
				var we *WiFiError
				if !errors.Is(err, tt.want) || !errors.As(err, &we) || we.ExitCode() != tt.code {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
			}
			var p struct {
				Config map[string]map[string]map[string]any `json:"config"`
				Save   bool                                 `json:"save"`
				Reboot bool                                 `json:"reboot"`
			}
			json.Unmarshal(f.lastRequest("Config.Set").Params, &p)
			sta, ap := p.Config["wifi"]["sta"], p.Config["wifi"]["ap"]
			if sta["enable"] != true || sta["ssid"] != tt.ssid || sta["pass"] != tt.pass || ap["enable"] != false || !p.Save || !p.Reboot {
				t.Fatalf("Config.Set %+v", p)
			}
		})
	}
}

func TestJoinWiFiTimeout(t *testing.T) {
	f := newFakeFirmware(t)
	f.stationMute = true // the station never gets anywhere, and says nothing
	c := connectFake(t, f.fakeDevice, fastOpts())
	_, err := c.JoinWiFi(t.Context(), "HomeNet", "correct horse", WiFiOptions{Timeout: 2500 * time.Millisecond})
	var we *WiFiError
	if !errors.As(err, &we) || !errors.Is(err, ErrWiFiTimeout) || we.ExitCode() != 10 || we.Status != "connecting" {
		t.Fatalf("err %v", err)
	}
}

func TestJoinWiFiRejectsBadArgs(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	for _, ssid := range []string{"", "123456789012345678901234567890123"} {
		_, err := c.JoinWiFi(t.Context(), ssid, "", WiFiOptions{})
		var ae *ArgError
		if !errors.As(err, &ae) {
			t.Errorf("ssid %q: %v", ssid, err)
		}
	}
}
