package demofw

import (
	"testing"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
)

func TestDemoRecognition(t *testing.T) {
	esp32, _ := chips.ByKey("esp32")
	esp8266, _ := chips.ByKey("esp8266")
	build := func(c *chips.Chip, desc *fwimage.AppDesc, first string) *fwimage.Image {
		t.Helper()
		seg := append([]byte(first), make([]byte, 64)...)
		raw, err := fwimage.Build(fwimage.Spec{Chip: c, Entry: 0x40080400, HashAppended: desc != nil, AppDesc: desc,
			Segments: []fwimage.Segment{{Addr: 0x3F400020, Data: seg}}})
		if err != nil {
			t.Fatal(err)
		}
		img, err := fwimage.ParseFor(c, raw)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	desc := func(name string) *fwimage.AppDesc {
		return &fwimage.AppDesc{ProjectName: name, Version: "2.0.1", Date: "Mar  4 2025", Time: "05:06:07", IDFVersion: "v5.3.1"}
	}
	for _, tc := range []struct {
		img     *fwimage.Image
		want    bool
		improv  bool
		buildID string
	}{
		{build(esp32, desc("mos-demo"), ""), true, false, "20250304-050607/2.0.1-demo"},
		{build(esp32, desc("mos-demo-improv"), ""), true, true, "20250304-050607/2.0.1-demo-improv"},
		{build(esp32, desc("mos-demonstration"), ""), false, false, ""},
		{build(esp32, desc("blinky"), "mos-demo 1.0.0\x00"), false, false, ""},
		{build(esp8266, nil, "mos-demo 1.0.0\x00"), true, false, "20250101-000000/1.0.0-demo"},
		{build(esp8266, nil, "mos-demo-improv 1.0.0\x00"), true, true, "20250101-000000/1.0.0-demo-improv"},
		{build(esp8266, nil, "blinky 1.0\x00"), false, false, ""},
	} {
		app, ok := demoAppOf(tc.img)
		if ok != tc.want || app.improv != tc.improv || app.buildID != tc.buildID {
			t.Errorf("%q: recognised %v %+v", tc.img.Segments[0].Data[:16], ok, app)
		}
		if New().Recognises(tc.img) != tc.want {
			t.Errorf("%q: Recognises disagrees", tc.img.Segments[0].Data[:16])
		}
	}
}

func TestLogPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"mgos_init.c:33":              "mgos_init.c:33          ",
		"mgos_rpc_channel_uart.c:320": "mgos_rpc_channel_ua:320 ",
		"mgos_sys_config.c:470":       "mgos_sys_config.c:470   ",
	} {
		if got := logPrefix(in); got != want {
			t.Errorf("logPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigPlaceholdersAndTypes(t *testing.T) {
	c := newSysConfig("esp32", [6]byte{0x24, 0x6F, 0x28, 0xA1, 0xB2, 0xC3})
	if id := c.String("device.id"); id != "esp32_A1B2C3" {
		t.Errorf("device.id = %q", id)
	}
	if ssid := c.String("wifi.ap.ssid"); ssid != "Mongoose_A1B2C3" {
		t.Errorf("wifi.ap.ssid = %q", ssid)
	}
	for raw, code := range map[string]int{
		`{"wifi":{"ap":{"channel":"6"}}}`:      400,
		`{"wifi":{"ap":{"channel":6.5}}}`:      400,
		`{"wifi":{"ap":{"enable":1}}}`:         400,
		`{"wifi":{"ap":"x"}}`:                  400,
		`{"mqtt":{"reconnect_timeout_min":3}}`: 0,
		`{"wifi":{"ap":{"chanel":6}}}`:         404,
		`{"nope":1}`:                           404,
	} {
		_, err := c.parseSet("", []byte(raw))
		got := 0
		if ce, ok := err.(*configError); ok {
			got = ce.code
		}
		if got != code {
			t.Errorf("%s: code %d (%v), want %d", raw, got, err, code)
		}
	}
}
