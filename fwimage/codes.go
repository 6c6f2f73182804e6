package fwimage

import (
	"fmt"
	"strings"

	"github.com/mos-tool/mos/chips"
)

// Header byte 2 (flash mode) and the nibbles of byte 3 (flash size << 4 |
// flash frequency) mean different things per chip family. The tables below
// follow Espressif's image format documentation and esptool's per-target
// FLASH_SIZES and FLASH_FREQUENCY.

// FlashSize is one flash size a chip's image header can encode.
type FlashSize struct {
	Name  string // as esptool spells it: "4MB", "2MB-c1"
	Bytes int
	Code  uint8 // high nibble of header byte 3
}

// FlashFreq is one SPI flash clock a chip's image header can encode.
type FlashFreq struct {
	Name string // "40m"
	Code uint8  // low nibble of header byte 3
}

const (
	kib = 1 << 10
	mib = 1 << 20
)

// The ESP8266 sizes are not in size order: 512 KB is 0 and 256 KB is 1.
// "-c1" are the 2 MB and 4 MB layouts with 1 MB firmware slots, which the
// SDK bootloader maps differently.
var esp8266Sizes = []FlashSize{
	{"256KB", 256 * kib, 1}, {"512KB", 512 * kib, 0}, {"1MB", 1 * mib, 2},
	{"2MB", 2 * mib, 3}, {"4MB", 4 * mib, 4}, {"2MB-c1", 2 * mib, 5},
	{"4MB-c1", 4 * mib, 6}, {"8MB", 8 * mib, 8}, {"16MB", 16 * mib, 9},
}

var esp32Sizes = []FlashSize{
	{"1MB", 1 * mib, 0}, {"2MB", 2 * mib, 1}, {"4MB", 4 * mib, 2},
	{"8MB", 8 * mib, 3}, {"16MB", 16 * mib, 4}, {"32MB", 32 * mib, 5},
	{"64MB", 64 * mib, 6}, {"128MB", 128 * mib, 7},
}

var defaultFreqs = []FlashFreq{{"40m", 0x0}, {"26m", 0x1}, {"20m", 0x2}, {"80m", 0xF}}

// flashFreqs lists chips whose frequency codes differ from the default.
var flashFreqs = map[string][]FlashFreq{
	// The C6 ROM derives the clock from an 80 MHz source with its own
	// divider, so "80m" is written as 0, like 40m; 40m comes first so that
	// FreqName(0) answers the plain reading.
	"esp32c6": {{"40m", 0x0}, {"80m", 0x0}, {"20m", 0x2}},
	// The H2's flash clock derives from its 32 MHz crystal / 96 MHz PLL.
	"esp32h2": {{"24m", 0x0}, {"16m", 0x1}, {"12m", 0x2}, {"48m", 0xF}},
}

var flashModes = []string{"qio", "qout", "dio", "dout"} // index = code

// FlashSizes lists the sizes chip c's image header can encode.
func FlashSizes(c *chips.Chip) []FlashSize {
	if c.IsESP8266() {
		return esp8266Sizes
	}
	return esp32Sizes
}

// FlashFreqs lists the flash clocks chip c's image header can encode.
func FlashFreqs(c *chips.Chip) []FlashFreq {
	if f, ok := flashFreqs[c.Key]; ok {
		return f
	}
	return defaultFreqs
}

// SizeCode is the header size nibble for a flash of size bytes (on the
// ESP8266, the standard layout rather than "-c1").
func SizeCode(c *chips.Chip, size int) (uint8, error) {
	for _, s := range FlashSizes(c) {
		if s.Bytes == size {
			return s.Code, nil
		}
	}
	return 0, fmt.Errorf("fwimage: %s image headers cannot encode a flash size of %d bytes", c.Name, size)
}

// SizeCodeByName is the size nibble for a name such as "4MB", "4M" or
// "2MB-c1" (case-insensitive).
func SizeCodeByName(c *chips.Chip, name string) (uint8, error) {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToUpper(s), "B", "") }
	for _, s := range FlashSizes(c) {
		if norm(s.Name) == norm(name) {
			return s.Code, nil
		}
	}
	return 0, fmt.Errorf("fwimage: unknown %s flash size %q", c.Name, name)
}

// SizeFromCode is the flash size in bytes a header size nibble means.
func SizeFromCode(c *chips.Chip, code uint8) (int, error) {
	for _, s := range FlashSizes(c) {
		if s.Code == code {
			return s.Bytes, nil
		}
	}
	return 0, fmt.Errorf("fwimage: unknown %s flash size code 0x%x", c.Name, code)
}

// FreqCode is the header frequency nibble for a name such as "40m".
func FreqCode(c *chips.Chip, name string) (uint8, error) {
	for _, f := range FlashFreqs(c) {
		if strings.EqualFold(f.Name, name) {
			return f.Code, nil
		}
	}
	return 0, fmt.Errorf("fwimage: unknown %s flash frequency %q", c.Name, name)
}

// FreqName names a header frequency nibble. Where two clocks share a code
// (ESP32-C6: 40m and 80m), it returns the first of the table.
func FreqName(c *chips.Chip, code uint8) (string, error) {
	for _, f := range FlashFreqs(c) {
		if f.Code == code {
			return f.Name, nil
		}
	}
	return "", fmt.Errorf("fwimage: unknown %s flash frequency code 0x%x", c.Name, code)
}

// ModeCode is header byte 2 for "qio", "qout", "dio" or "dout", the same on
// every chip.
func ModeCode(name string) (uint8, error) {
	for i, m := range flashModes {
		if strings.EqualFold(m, name) {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("fwimage: unknown flash mode %q (qio, qout, dio, dout)", name)
}

// ModeName names header byte 2.
func ModeName(code uint8) (string, error) {
	if int(code) < len(flashModes) {
		return flashModes[code], nil
	}
	return "", fmt.Errorf("fwimage: unknown flash mode code %d", code)
}
