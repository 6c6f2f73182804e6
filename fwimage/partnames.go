package fwimage

import (
	"fmt"
	"strconv"
	"strings"
)

// The names ESP-IDF's partition tables use for types and subtypes, as in
// partitions.csv and gen_esp32part.py's TYPES and SUBTYPES tables. They are
// spelt here once: `mos fw info` prints them, bundle specs read them.

var typeNames = []struct {
	code uint8
	name string
}{{PartTypeApp, "app"}, {PartTypeData, "data"}}

var subTypeNames = map[uint8][]struct {
	code uint8
	name string
}{
	PartTypeApp: {{PartSubAppFactory, "factory"}, {PartSubAppTest, "test"}},
	PartTypeData: {
		{PartSubDataOTA, "ota"}, {PartSubDataPHY, "phy"}, {PartSubDataNVS, "nvs"},
		{PartSubDataCoredump, "coredump"}, {PartSubDataNVSKeys, "nvs_keys"},
		{PartSubDataEfuse, "efuse"}, {PartSubDataFAT, "fat"},
		{PartSubDataSPIFFS, "spiffs"}, {PartSubDataLittleFS, "littlefs"},
	},
}

// PartitionTypeName is ESP-IDF's name for a partition type ("app",
// "data"), or the number in hex ("0x40") for a custom type.
func PartitionTypeName(typ uint8) string {
	for _, t := range typeNames {
		if t.code == typ {
			return t.name
		}
	}
	return fmt.Sprintf("0x%02x", typ)
}

// PartitionSubTypeName is ESP-IDF's name for a subtype of typ ("factory",
// "ota_3", "nvs", "spiffs"), or the number in hex when it has none.
func PartitionSubTypeName(typ, sub uint8) string {
	if typ == PartTypeApp && sub >= PartSubAppOTA0 && sub < PartSubAppOTA0+16 {
		return fmt.Sprintf("ota_%d", sub-PartSubAppOTA0)
	}
	for _, s := range subTypeNames[typ] {
		if s.code == sub {
			return s.name
		}
	}
	return fmt.Sprintf("0x%02x", sub)
}

// TypeName and SubTypeName name the partition's type and subtype.
func (p Partition) TypeName() string    { return PartitionTypeName(p.Type) }
func (p Partition) SubTypeName() string { return PartitionSubTypeName(p.Type, p.SubType) }

// ParsePartitionType reads a type name or a number (decimal or 0x hex).
func ParsePartitionType(s string) (uint8, error) {
	for _, t := range typeNames {
		if t.name == s {
			return t.code, nil
		}
	}
	return parseCode(s)
}

// ParsePartitionSubType reads a subtype name of typ ("ota_0", "nvs") or a
// number (decimal or 0x hex).
func ParsePartitionSubType(typ uint8, s string) (uint8, error) {
	if typ == PartTypeApp && strings.HasPrefix(s, "ota_") {
		if n, err := strconv.Atoi(s[4:]); err == nil && n >= 0 && n < 16 {
			return PartSubAppOTA0 + uint8(n), nil
		}
	}
	for _, st := range subTypeNames[typ] {
		if st.name == s {
			return st.code, nil
		}
	}
	return parseCode(s)
}

func parseCode(s string) (uint8, error) {
	if v, err := strconv.ParseUint(s, 0, 8); err == nil {
		return uint8(v), nil
	}
	return 0, fmt.Errorf("%q is neither a known name nor a number below 256", s)
}

// HoldsDeviceData reports whether the partition holds what the device
// writes at run time: its files, saved settings, keys, crash dumps. That is
// every data partition except otadata, which only selects the app slot to
// boot (a re-flash must reset it, or the bootloader may keep starting the
// old app from another slot).
func (p Partition) HoldsDeviceData() bool {
	return p.Type == PartTypeData && p.SubType != PartSubDataOTA
}

// Containing returns the partition that holds the flash range [addr,
// addr+size), or nil.
func (t *PartitionTable) Containing(addr uint32, size int) *Partition {
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if addr >= p.Offset && uint64(addr)+uint64(size) <= uint64(p.Offset)+uint64(p.Size) {
			return p
		}
	}
	return nil
}
