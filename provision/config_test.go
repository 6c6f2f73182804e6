package provision

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestConfigSetSendsNestedDiffAndReboots(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	res, err := c.ConfigSet(t.Context(), map[string]any{
		"debug.level":                "3",
		"mqtt.enable":                "true",
		"mqtt.server":                "broker:8883",  // changes
		"device.id":                  "esp32_A1B2C3", // unchanged: not sent
		"mqtt.reconnect_timeout_min": "2.5",
	}, SetOptions{Save: true, Reboot: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Saved || !res.Rebooted || len(res.Changed) != 4 {
		t.Fatalf("result %+v", res)
	}
	req := f.lastRequest("Config.Set")
	var p struct {
		Config  map[string]any `json:"config"`
		Save    bool           `json:"save"`
		TryOnce bool           `json:"try_once"`
		Reboot  bool           `json:"reboot"`
	}
	json.Unmarshal(req.Params, &p)
	js, _ := json.Marshal(p.Config)
	want := `{"debug":{"level":3},"mqtt":{"enable":true,"reconnect_timeout_min":2.5,"server":"broker:8883"}}`
	if string(js) != want || !p.Save || !p.TryOnce || !p.Reboot {
		t.Fatalf("sent %s save %v try_once %v reboot %v\nwant %s", js, p.Save, p.TryOnce, p.Reboot, want)
	}
	// tried, and confirmed once the device answered after the reboot
	if m := f.methods(); !slices.Equal(m[len(m)-3:], []string{"Config.Get", "Config.Set", "Config.Save"}) {
		t.Fatalf("methods %v", m)
	}
	if v, _ := lookup(f.saved, "mqtt.server"); v != "broker:8883" || f.try != nil {
		t.Fatalf("saved config: mqtt.server %v, trial left %v", v, f.try)
	}
	if f.boots != 1 {
		t.Fatalf("boots %d", f.boots)
	}
	// The client waited for the device to come back: it answers at once.
	if _, err := c.GetInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigSetNothingChangedSendsNothing(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	res, err := c.ConfigSet(t.Context(), map[string]any{"debug.level": 2}, SetOptions{Save: true, Reboot: true})
	if err != nil || len(res.Changed) != 0 || res.Rebooted {
		t.Fatalf("%+v %v", res, err)
	}
	if slices.Contains(f.methods(), "Config.Set") {
		t.Fatal("Config.Set sent for no change")
	}
}

func TestConfigSetRejectsBeforeSending(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	tests := []struct {
		values map[string]any
		msg    string
	}{
		{map[string]any{"wifi.sta.ssd": "x"}, "wifi.sta.ssd: no such key; did you mean wifi.sta.ssid?"},
		{map[string]any{"wifi.sta.sisd": "x"}, "wifi.sta.sisd: no such key; did you mean wifi.sta.ssid?"},
		{map[string]any{"ssid": "x"}, "ssid: no such key; did you mean wifi.ap.ssid or wifi.sta.ssid?"},
		{map[string]any{"wifi.sta": "x"}, "wifi.sta is a section, not a value; set its keys, such as wifi.sta.enable, wifi.sta.pass, wifi.sta.ssid"},
		{map[string]any{"wifi.sta.ssid.x": "x"}, "wifi.sta.ssid.x: no such key"},
		{map[string]any{"wifi.sta.enable": "maybe"}, `wifi.sta.enable: "maybe" is not a boolean`},
		{map[string]any{"debug.level": "2.5"}, `debug.level: "2.5" is not an integer`},
		{map[string]any{"debug.level": "99999999999"}, `debug.level: "99999999999" is not an integer`},
		{map[string]any{"mqtt.reconnect_timeout_min": "soon"}, `mqtt.reconnect_timeout_min: "soon" is not a number`},
		{map[string]any{"wifi.sta.ssid": 5}, `wifi.sta.ssid: 5 (int) is not a string`},
		{map[string]any{"wifi.sta.enable": 1}, `wifi.sta.enable: 1 (int) is not a boolean`},
	}
	for _, tt := range tests {
		_, err := c.ConfigSet(t.Context(), tt.values, SetOptions{Save: true})
		if err == nil || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("%v: err %v, want %q", tt.values, err, tt.msg)
			continue
		}
		if code := err.(interface{ ExitCode() int }).ExitCode(); code != 2 {
			t.Errorf("%v: exit code %d", tt.values, code)
		}
	}
	if slices.Contains(f.methods(), "Config.Set") {
		t.Fatal("a rejected value reached the device")
	}
}

func TestConvertParsesToTheTreeType(t *testing.T) {
	tests := []struct {
		cur  any
		in   any
		want any
	}{
		{true, "false", false},
		{false, "1", true},
		{false, "ON", true},
		{json.Number("2"), "-3", int64(-3)},
		{json.Number("2"), "0x10", int64(16)},
		{json.Number("2"), 7.0, int64(7)},
		{json.Number("2"), "4294967295", int64(4294967295)},
		{json.Number("2.000000"), "2", 2.0},
		{json.Number("2.000000"), 3, 3.0},
		{"", "123", "123"},
		{"", "true", "true"},
		{nil, "x", "x"},
	}
	for _, tt := range tests {
		got, err := convert("k", tt.cur, tt.in)
		if err != nil || got != tt.want {
			t.Errorf("convert(%v, %#v) = %#v, %v; want %#v", tt.cur, tt.in, got, err, tt.want)
		}
	}
}

func TestConfigGetUnknownKeySuggests(t *testing.T) {
	f := newFakeFirmware(t)
	c := connectFake(t, f.fakeDevice, fastOpts())
	v, err := c.ConfigGet(t.Context(), "wifi.sta.ssid")
	if err != nil || string(v) != `""` {
		t.Fatalf("%s %v", v, err)
	}
	_, err = c.ConfigGet(t.Context(), "devise.id")
	var ke *KeyError
	if !errors.As(err, &ke) || err.Error() != "devise.id: no such key; did you mean device.id?" {
		t.Fatalf("err %v", err)
	}
	v, err = c.ConfigGet(t.Context(), "wifi.ap")
	if err != nil || !strings.Contains(string(v), `"ssid":"Mongoose_A1B2C3"`) {
		t.Fatalf("section: %s %v", v, err)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{
		{"ssid", "ssid", 0}, {"ssd", "ssid", 1}, {"ssdi", "ssid", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if d := editDistance(tt.a, tt.b); d != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
	}
}
