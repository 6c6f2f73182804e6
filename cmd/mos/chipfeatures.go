package main

import (
	"context"
	"fmt"

	"github.com/mos-tool/mos/flasher"
)

// chipFeatures lists a chip's features as esptool's get_chip_features
// does (esptool/targets/*.py), so the two tools describe a board alike.
// On the ESP32 they come from eFuse block 0 (ESP32 Technical Reference
// Manual, eFuse controller, EFUSE_BLK0_RDATA3..6); the later chips'
// lists are the fixed part of esptool's (what every variant has), without
// the embedded flash and PSRAM details their eFuses hold.
func chipFeatures(ctx context.Context, l *flasher.Loader) ([]string, error) {
	switch l.Chip.Key {
	case "esp8266":
		return []string{"WiFi"}, nil
	case "esp32":
		return esp32Features(ctx, l)
	case "esp32s2":
		return []string{"WiFi"}, nil
	case "esp32s3", "esp32c3":
		return []string{"WiFi", "BLE"}, nil
	case "esp32c6":
		return []string{"WiFi 6", "BT 5", "IEEE802.15.4"}, nil
	}
	return nil, nil
}

// esp32Features decodes EFUSE_BLK0_RDATA3 (CHIP_VER_DIS_APP_CPU bit 0,
// CHIP_VER_DIS_BT bit 1, CHIP_VER_PKG bits 11:9 and 2, CHIP_CPU_FREQ_LOW
// bit 12, CHIP_CPU_FREQ_RATED bit 13, BLK3_PART_RESERVE bit 14),
// EFUSE_BLK0_RDATA4 (ADC_VREF bits 12:8) and EFUSE_BLK0_RDATA6
// (CODING_SCHEME bits 1:0).
func esp32Features(ctx context.Context, l *flasher.Loader) ([]string, error) {
	word := func(n uint32) (uint32, error) { return l.ReadReg(ctx, l.Chip.EfuseBase+4*n) }
	w3, err := word(3)
	if err != nil {
		return nil, err
	}
	w4, err := word(4)
	if err != nil {
		return nil, err
	}
	w6, err := word(6)
	if err != nil {
		return nil, err
	}
	f := []string{"WiFi"}
	if w3&(1<<1) == 0 {
		f = append(f, "BT")
	}
	if w3&1 != 0 {
		f = append(f, "Single Core")
	} else {
		f = append(f, "Dual Core")
	}
	if w3&(1<<13) != 0 {
		if w3&(1<<12) != 0 {
			f = append(f, "160MHz")
		} else {
			f = append(f, "240MHz")
		}
	}
	pkg := (w3>>9)&7 | ((w3>>2)&1)<<3
	switch pkg {
	case 2, 4, 5, 6:
		f = append(f, "Embedded Flash")
	}
	if pkg == 6 {
		f = append(f, "Embedded PSRAM")
	}
	if (w4>>8)&0x1F != 0 {
		f = append(f, "VRef calibration in efuse")
	}
	if (w3>>14)&1 != 0 {
		f = append(f, "BLK3 partially reserved")
	}
	scheme := map[uint32]string{0: "None", 1: "3/4", 2: "Repeat (UNSUPPORTED)", 3: "None (may contain encoding data)"}[w6&3]
	return append(f, fmt.Sprintf("Coding Scheme %s", scheme)), nil
}
