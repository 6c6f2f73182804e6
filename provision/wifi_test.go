package provision

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
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

// A failed join on firmware that does not revert by itself (Mongoose OS
// keeps settings on trial until the next boot) is rolled back with a
// reboot; firmware that ignores try_once keeps the new settings, and the
// error says so.
func TestJoinWiFiRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noTry    bool
		restored bool
		want     string
	}{
		{"trial", false, true, `Wi-Fi network "Elsewhere2" not found (reason: 201); the previous settings were restored (Wi-Fi network "HomeNet")`},
		{"no trial", true, false, `Wi-Fi network "Elsewhere2" not found (reason: 201); the device kept the new settings: its firmware does not try settings once (try_once)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFirmware(t)
			f.noTry = tc.noTry
			c := connectFake(t, f.fakeDevice, fastOpts())
			if _, err := c.JoinWiFi(t.Context(), "HomeNet", "correct horse", WiFiOptions{Timeout: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
			_, err := c.JoinWiFi(t.Context(), "Elsewhere2", "whatever1", WiFiOptions{Timeout: 5 * time.Second})
			var ce *ChangeFailedError
			if !errors.As(err, &ce) || !errors.Is(err, ErrWiFiNotFound) || ce.Restored != tc.restored {
				t.Fatalf("err %v", err)
			}
			if err.Error() != tc.want {
				t.Errorf("message %q\nwant %q", err, tc.want)
			}
			f.mu.Lock()
			ssid, savedSSID := f.get("wifi.sta.ssid"), f.saved["wifi"].(map[string]any)["sta"].(map[string]any)["ssid"]
			f.mu.Unlock()
			want := "HomeNet"
			if !tc.restored {
				want = "Elsewhere2"
			}
			if ssid != want || savedSSID != want {
				t.Errorf("running on %v, saved %v; want %s", ssid, savedSSID, want)
			}
			// the fake does not revert by itself: the client rebooted it
			if tc.restored && !slices.Contains(f.methods(), "Sys.Reboot") {
				t.Errorf("no reboot to roll back: %v", f.methods())
			}
		})
	}
}

func TestConfigSetRejectedValue(t *testing.T) {
	f := newFakeFirmware(t)
	f.reject = map[string]string{"wifi.sta.pass": "STA password must be between 8 and 63 chars"}
	c := connectFake(t, f.fakeDevice, fastOpts())
	_, err := c.ConfigSet(t.Context(), map[string]any{"wifi.sta.pass": "short", "debug.level": "3"}, SetOptions{Save: true, Reboot: true})
	var re *ConfigRejectedError
	if !errors.As(err, &re) || err.Error() != "the device rejected the change: STA password must be between 8 and 63 chars; its settings are unchanged" {
		t.Fatalf("err %v", err)
	}
	if f.boots != 0 || f.try != nil || slices.Contains(f.methods(), "Config.Save") {
		t.Fatalf("boots %d, trial %v, methods %v", f.boots, f.try, f.methods())
	}
}

// A device that does not answer the reboot of a rollback: the error says
// the previous settings come back at its next reboot.
func TestJoinWiFiRollbackFails(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	f.fakeDevice.mu.Lock()
	f.ignore["Sys.Reboot"] = 1
	f.fakeDevice.mu.Unlock()
	_, err := c.JoinWiFi(t.Context(), "HomeNet", "battery staple", WiFiOptions{Timeout: 5 * time.Second})
	var ce *ChangeFailedError
	if !errors.As(err, &ce) || ce.Restored || ce.RollbackErr == nil || !errors.Is(err, ErrWiFiWrongPassword) ||
		!strings.Contains(err.Error(), "; restoring the previous settings failed (the device did not restart (up ") ||
		!strings.HasSuffix(err.Error(), "the device goes back to them at its next reboot") {
		t.Fatalf("err %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.try != nil || f.saved["wifi"].(map[string]any)["sta"].(map[string]any)["ssid"] != "" {
		t.Fatalf("the trial was saved: %v", f.saved)
	}
}
