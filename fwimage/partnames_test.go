package fwimage

import (
	"errors"
	"testing"
)

var errorsAs = errors.As

func TestPartitionNames(t *testing.T) {
	tests := []struct {
		typ, sub         uint8
		typName, subName string
		deviceData       bool
	}{
		{PartTypeApp, PartSubAppFactory, "app", "factory", false},
		{PartTypeApp, PartSubAppOTA0 + 3, "app", "ota_3", false},
		{PartTypeApp, PartSubAppTest, "app", "test", false},
		{PartTypeApp, 0x05, "app", "0x05", false},
		{PartTypeData, PartSubDataOTA, "data", "ota", false},
		{PartTypeData, PartSubDataNVS, "data", "nvs", true},
		{PartTypeData, PartSubDataPHY, "data", "phy", true},
		{PartTypeData, PartSubDataSPIFFS, "data", "spiffs", true},
		{PartTypeData, PartSubDataLittleFS, "data", "littlefs", true},
		{PartTypeData, PartSubDataNVSKeys, "data", "nvs_keys", true},
		{PartTypeData, 0x99, "data", "0x99", true},
		{0x40, 0x01, "0x40", "0x01", false},
	}
	for _, tt := range tests {
		p := Partition{Type: tt.typ, SubType: tt.sub}
		if got := p.TypeName(); got != tt.typName {
			t.Errorf("%02x/%02x: type name %q, want %q", tt.typ, tt.sub, got, tt.typName)
		}
		if got := p.SubTypeName(); got != tt.subName {
			t.Errorf("%02x/%02x: subtype name %q, want %q", tt.typ, tt.sub, got, tt.subName)
		}
		if got := p.HoldsDeviceData(); got != tt.deviceData {
			t.Errorf("%02x/%02x: HoldsDeviceData %v, want %v", tt.typ, tt.sub, got, tt.deviceData)
		}
		// every name reads back as the code it came from
		typ, err := ParsePartitionType(tt.typName)
		if err != nil || typ != tt.typ {
			t.Errorf("ParsePartitionType(%q) = %02x, %v", tt.typName, typ, err)
		}
		sub, err := ParsePartitionSubType(tt.typ, tt.subName)
		if err != nil || sub != tt.sub {
			t.Errorf("ParsePartitionSubType(%02x, %q) = %02x, %v", tt.typ, tt.subName, sub, err)
		}
	}
	for _, bad := range []string{"ota_16", "bogus", "256"} {
		if _, err := ParsePartitionSubType(PartTypeApp, bad); err == nil {
			t.Errorf("ParsePartitionSubType(app, %q) accepted", bad)
		}
	}
}

func TestPartitionContaining(t *testing.T) {
	pt := &PartitionTable{Partitions: []Partition{
		{Label: "nvs", Type: PartTypeData, SubType: PartSubDataNVS, Offset: 0x9000, Size: 0x6000},
		{Label: "factory", Type: PartTypeApp, Offset: 0x10000, Size: 0x100000},
	}}
	tests := []struct {
		addr uint32
		size int
		want string
	}{
		{0x9000, 0x6000, "nvs"},
		{0xA000, 0x1000, "nvs"},
		{0x9000, 0x6001, ""}, // runs past its end
		{0x10000, 100, "factory"},
		{0x8000, 0xC00, ""},
	}
	for _, tt := range tests {
		got := ""
		if p := pt.Containing(tt.addr, tt.size); p != nil {
			got = p.Label
		}
		if got != tt.want {
			t.Errorf("Containing(0x%x, %d) = %q, want %q", tt.addr, tt.size, got, tt.want)
		}
	}
}

func TestFlashParamsCheck(t *testing.T) {
	tests := []struct {
		params FlashParams
		field  string // "" when valid
	}{
		{FlashParams{}, ""},
		{FlashParams{Mode: "keep", Size: "keep", Freq: "keep"}, ""},
		{FlashParams{Mode: "DIO", Size: "detect", Freq: "80m"}, ""},
		{FlashParams{Size: "2MB-c1"}, ""}, // an ESP8266 size: checked against the chip later
		{FlashParams{Freq: "26m"}, ""},    // not on the ESP32-C6: checked against the chip later
		{FlashParams{Size: "4M"}, ""},
		{FlashParams{Mode: "quad"}, "mode"},
		{FlashParams{Size: "3MB"}, "size"},
		{FlashParams{Freq: "100m"}, "freq"},
		{FlashParams{Freq: "48m"}, "freq"}, // ESP32-H2 only, not a chip mos supports
	}
	for _, tt := range tests {
		err := tt.params.Check()
		var pe *FlashParamError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: %v", tt.params, err)
		case tt.field != "" && (!errorsAs(err, &pe) || pe.Field != tt.field):
			t.Errorf("%+v: err %v, want a FlashParamError on %s", tt.params, err, tt.field)
		}
	}
}
