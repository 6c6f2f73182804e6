package sim

import (
	"hash/fnv"
	"math"
)

// The ESP32 ROM does not know its crystal: it estimates the crystal
// frequency by counting crystal cycles against the internal 8 MHz RC
// oscillator (CK8M), whose nominal frequency is in eFuse word 4, and
// computes UART dividers from that estimate. The RC oscillator is not
// calibrated at that point and drifts from part to part and with
// temperature (ESP-IDF's rtc_clk notes that the ROM's estimate can be off
// enough to take a 40 MHz crystal for a 26 MHz one), so the rate the ROM
// sets on CHANGE_BAUDRATE is off by the same ratio. esptool corrects for
// it (targets/esp32.py, ESP32ROM.change_baud and get_rom_cal_crystal_freq):
// it reads the calibration count from RTCCALICFG1 and the eFuse value,
// recomputes the ROM's estimate and asks for a rate scaled by
// estimate / real crystal.
const (
	esp32RTCCaliCfg1 = 0x3FF5F06C // TIMERS_RTC_CALI_VALUE in bits 31:7
	esp32CK8MEfuse   = 50         // eFuse word 4 bits 7:0, as on production parts
	esp32XtalHz      = 40000000
)

// defaultCK8MSpread bounds the drift a device gets when none is set: a
// fixed value per MAC within ±6 %, so that some virtual boards are within
// a UART's tolerance and most are not.
const defaultCK8MSpread = 0.06

// defaultCK8MDrift derives a stable drift from the MAC address.
func defaultCK8MDrift(mac [6]byte) float64 {
	f := fnv.New32a()
	f.Write(mac[:])
	h := f.Sum32()
	steps := int(h%241) - 120 // -120..120, in 1/2000 steps
	return float64(steps) / 120 * defaultCK8MSpread
}

// rtcCaliValue is the count the ROM's calibration leaves in RTCCALICFG1:
// 2048 when the oscillator runs at its eFuse value (40 MHz estimate).
func (d *Device) rtcCaliValue() uint32 {
	drift := 0.0
	if d.cfg.CK8MDrift != nil {
		drift = *d.cfg.CK8MDrift
	}
	return uint32(math.Round(2048 * (1 + drift)))
}

// romXtalEstimate is the crystal frequency the ROM believes in, computed
// as esptool's get_rom_cal_crystal_freq does.
func (d *Device) romXtalEstimate() float64 {
	return float64(d.rtcCaliValue()) * 15625 * esp32CK8MEfuse / 40
}

// romUARTBaud is the rate the ROM's UART really runs at after
// CHANGE_BAUDRATE asked for baud. The ROM programs the divider
// (integer and 1/16 parts, truncated: measured on the ESP32 emulator,
// 921600 gives 43 + 6/16) from its crystal estimate, while the UART is
// clocked by the real crystal. Other ROMs use a known clock.
func (d *Device) romUARTBaud(baud int) int {
	if d.chip.Key != "esp32" {
		return baud
	}
	div16 := int64(d.romXtalEstimate() * 16 / float64(baud))
	if div16 <= 0 {
		return baud
	}
	return int(int64(esp32XtalHz) * 16 / div16)
}

// UARTBaud is the rate the device's UART runs at now, for tests and
// diagnostics.
func (d *Device) UARTBaud() int { return int(d.uartBaud.Load()) }
