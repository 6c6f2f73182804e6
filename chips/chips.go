// Package chips holds what differs between the ESP chips as data: detection
// values, register addresses, ROM quirks and boot banners. The flasher reads
// it to talk to a chip; the virtual device reads it to behave like one.
//
// Sources: Espressif's serial-protocol documentation and technical reference
// manuals (esptool's targets/*.py carry the same values).
package chips

import (
	"fmt"
	"sort"
	"strings"
)

// SecurityInfo says how a chip's ROM answers GET_SECURITY_INFO (0x14).
type SecurityInfo int

const (
	// SecurityInfoNone: the ROM does not know the command (ESP8266, ESP32).
	SecurityInfoNone SecurityInfo = iota
	// SecurityInfoShort: 12 data bytes, no chip id (ESP32-S2).
	SecurityInfoShort
	// SecurityInfoFull: 20 data bytes ending in chip id and ECO version.
	SecurityInfoFull
)

// SPIRegs are the offsets, from Base, of the SPI flash controller registers
// used to run a flash command by hand (how the JEDEC ID is read).
type SPIRegs struct {
	Base     uint32
	Cmd      uint32 // bit 18 starts a user command and reads 1 while busy
	Addr     uint32
	Usr      uint32
	Usr1     uint32
	Usr2     uint32
	MOSIDLen uint32 // 0 on ESP8266: data lengths live in USR1
	MISODLen uint32
	W0       uint32
	// AddrLeftJustified: the address register holds addr << (32 - bits).
	AddrLeftJustified bool
}

// Banner is what the ROM prints at reset, before it decides between
// download mode and booting from SPI flash. Lines are joined with CRLF.
type Banner struct {
	Head         []string // first lines (ROM version, build date)
	ResetLine    string   // format with rst code, rst name, boot code, boot name
	DownloadBoot uint8    // boot strap value shown in download mode
	DownloadName string
	SPIBoot      uint8 // boot strap value shown on SPI boot
	SPIBootName  string
}

// Chip describes one chip family's ROM loader.
type Chip struct {
	Name string // "ESP32-C3", as tools print it
	Key  string // "esp32c3", as bundles and URLs spell it

	Magic       []uint32 // values of the word at 0x40001000
	ImageChipID int      // chip id in image headers and security info; -1 if none

	SecurityInfo  SecurityInfo
	ROMStatusLen  int  // status bytes ending each ROM reply (2 or 4)
	ROMEncWord    bool // ROM FLASH_BEGIN/FLASH_DEFL_BEGIN take a 5th "encrypted" word
	ROMHasDeflate bool // ROM knows FLASH_DEFL_*, SPI_FLASH_MD5, CHANGE_BAUDRATE, SPI_ATTACH
	ROMHasSlowRd  bool // ROM knows READ_FLASH_SLOW (0x0E)

	BootloaderOffset uint32
	BootBaud         int // baud of the ROM banner
	XtalMHz          int // crystal frequency the virtual device models
	APBMHz           int // UART clock: UART_CLKDIV = APB / baud

	UARTDateReg   uint32
	UARTClkDivReg uint32
	EfuseBase     uint32
	MACRegs       []uint32 // ESP8266: OTP words 0, 1, 3; others: low, high word

	SPI SPIRegs

	USBSerialJTAG bool // has the USB-Serial/JTAG peripheral (VID 0x303A, PID 0x1001)

	Banner Banner
}

// DetectMagicAddr is the ROM address whose word identifies the chip family.
const DetectMagicAddr = 0x40001000

var all = []*Chip{
	{
		Name: "ESP8266", Key: "esp8266",
		Magic: []uint32{0xFFF0C101}, ImageChipID: -1,
		SecurityInfo: SecurityInfoNone, ROMStatusLen: 2,
		BootloaderOffset: 0x0, BootBaud: 74880, XtalMHz: 26, APBMHz: 52,
		UARTDateReg: 0x60000078, UARTClkDivReg: 0x60000014,
		EfuseBase: 0x3FF00050, MACRegs: []uint32{0x3FF00050, 0x3FF00054, 0x3FF0005C},
		SPI: SPIRegs{Base: 0x60000200, Cmd: 0x00, Addr: 0x04, Usr: 0x1C, Usr1: 0x20, Usr2: 0x24, W0: 0x40, AddrLeftJustified: true},
		Banner: Banner{
			// The ESP8266 ROM prints "boot mode:(straps,6)"; the sim formats it itself.
			Head: []string{"", " ets Jan  8 2013,rst cause:%d, boot mode:(%d,6)"},
		},
	},
	{
		Name: "ESP32", Key: "esp32",
		Magic: []uint32{0x00F01D83}, ImageChipID: 0,
		SecurityInfo: SecurityInfoNone, ROMStatusLen: 4, ROMHasDeflate: true, ROMHasSlowRd: true,
		BootloaderOffset: 0x1000, BootBaud: 115200, XtalMHz: 40, APBMHz: 40,
		UARTDateReg: 0x60000078, UARTClkDivReg: 0x3FF40014,
		EfuseBase: 0x3FF5A000, MACRegs: []uint32{0x3FF5A004, 0x3FF5A008},
		SPI: SPIRegs{Base: 0x3FF42000, Cmd: 0x00, Addr: 0x04, Usr: 0x1C, Usr1: 0x20, Usr2: 0x24, MOSIDLen: 0x28, MISODLen: 0x2C, W0: 0x80, AddrLeftJustified: true},
		Banner: Banner{
			Head:         []string{"ets Jun  8 2016 00:22:57", ""},
			ResetLine:    "rst:0x%x (%s),boot:0x%x (%s)",
			DownloadBoot: 0x03, DownloadName: "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)",
			SPIBoot: 0x13, SPIBootName: "SPI_FAST_FLASH_BOOT",
		},
	},
	{
		Name: "ESP32-S2", Key: "esp32s2",
		Magic: []uint32{0x000007C6}, ImageChipID: 2,
		SecurityInfo: SecurityInfoShort, ROMStatusLen: 4, ROMEncWord: true, ROMHasDeflate: true, ROMHasSlowRd: true,
		BootloaderOffset: 0x1000, BootBaud: 115200, XtalMHz: 40, APBMHz: 80,
		UARTDateReg: 0x60000078, UARTClkDivReg: 0x3F400014,
		EfuseBase: 0x3F41A000, MACRegs: []uint32{0x3F41A044, 0x3F41A048},
		SPI: SPIRegs{Base: 0x3F402000, Cmd: 0x00, Addr: 0x04, Usr: 0x18, Usr1: 0x1C, Usr2: 0x20, MOSIDLen: 0x24, MISODLen: 0x28, W0: 0x58},
		Banner: Banner{
			Head:         []string{"ESP-ROM:esp32s2-rc4-20191025", "Build:Oct 25 2019"},
			ResetLine:    "rst:0x%x (%s),boot:0x%x (%s)",
			DownloadBoot: 0x00, DownloadName: "DOWNLOAD(USB/UART0/1)",
			SPIBoot: 0x08, SPIBootName: "SPI_FAST_FLASH_BOOT",
		},
	},
	{
		Name: "ESP32-S3", Key: "esp32s3",
		Magic: []uint32{0x00000009}, ImageChipID: 9,
		SecurityInfo: SecurityInfoFull, ROMStatusLen: 4, ROMEncWord: true, ROMHasDeflate: true, ROMHasSlowRd: true,
		BootloaderOffset: 0x0, BootBaud: 115200, XtalMHz: 40, APBMHz: 80,
		UARTDateReg: 0x60000080, UARTClkDivReg: 0x60000014,
		EfuseBase: 0x60007000, MACRegs: []uint32{0x60007044, 0x60007048},
		SPI:           SPIRegs{Base: 0x60002000, Cmd: 0x00, Addr: 0x04, Usr: 0x18, Usr1: 0x1C, Usr2: 0x20, MOSIDLen: 0x24, MISODLen: 0x28, W0: 0x58},
		USBSerialJTAG: true,
		Banner: Banner{
			Head:         []string{"ESP-ROM:esp32s3-20210327", "Build:Mar 27 2021"},
			ResetLine:    "rst:0x%x (%s),boot:0x%x (%s)",
			DownloadBoot: 0x00, DownloadName: "DOWNLOAD(USB/UART0)",
			SPIBoot: 0x08, SPIBootName: "SPI_FAST_FLASH_BOOT",
		},
	},
	{
		Name: "ESP32-C3", Key: "esp32c3",
		Magic: []uint32{0x6921506F, 0x1B31506F, 0x4881606F, 0x4361606F}, ImageChipID: 5,
		SecurityInfo: SecurityInfoFull, ROMStatusLen: 4, ROMEncWord: true, ROMHasDeflate: true, ROMHasSlowRd: true,
		BootloaderOffset: 0x0, BootBaud: 115200, XtalMHz: 40, APBMHz: 80,
		UARTDateReg: 0x6000007C, UARTClkDivReg: 0x60000014,
		EfuseBase: 0x60008800, MACRegs: []uint32{0x60008844, 0x60008848},
		SPI:           SPIRegs{Base: 0x60002000, Cmd: 0x00, Addr: 0x04, Usr: 0x18, Usr1: 0x1C, Usr2: 0x20, MOSIDLen: 0x24, MISODLen: 0x28, W0: 0x58},
		USBSerialJTAG: true,
		Banner: Banner{
			Head:         []string{"ESP-ROM:esp32c3-api1-20210207", "Build:Feb  7 2021"},
			ResetLine:    "rst:0x%x (%s),boot:0x%x (%s)",
			DownloadBoot: 0x04, DownloadName: "DOWNLOAD(USB/UART0/1)",
			SPIBoot: 0x0C, SPIBootName: "SPI_FAST_FLASH_BOOT",
		},
	},
	{
		Name: "ESP32-C6", Key: "esp32c6",
		Magic: []uint32{0x2CE0806F}, ImageChipID: 13,
		SecurityInfo: SecurityInfoFull, ROMStatusLen: 4, ROMEncWord: true, ROMHasDeflate: true, ROMHasSlowRd: true,
		BootloaderOffset: 0x0, BootBaud: 115200, XtalMHz: 40, APBMHz: 80,
		UARTDateReg: 0x6000007C, UARTClkDivReg: 0x60000014,
		EfuseBase: 0x600B0800, MACRegs: []uint32{0x600B0844, 0x600B0848},
		SPI:           SPIRegs{Base: 0x60003000, Cmd: 0x00, Addr: 0x04, Usr: 0x18, Usr1: 0x1C, Usr2: 0x20, MOSIDLen: 0x24, MISODLen: 0x28, W0: 0x58},
		USBSerialJTAG: true,
		Banner: Banner{
			Head:         []string{"ESP-ROM:esp32c6-20220919", "Build:Sep 19 2022"},
			ResetLine:    "rst:0x%x (%s),boot:0x%x (%s)",
			DownloadBoot: 0x04, DownloadName: "DOWNLOAD(USB/UART0/SDIO_FEI_FEO)",
			SPIBoot: 0x0C, SPIBootName: "SPI_FAST_FLASH_BOOT",
		},
	},
}

// All returns every supported chip, in a stable order.
func All() []*Chip { return all }

// ByKey finds a chip by its key ("esp32c3"), also accepting the printed
// name ("ESP32-C3") and common spellings ("esp32-c3").
func ByKey(s string) (*Chip, error) {
	k := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(s, "-", ""), "_", ""))
	for _, c := range all {
		if c.Key == k {
			return c, nil
		}
	}
	return nil, fmt.Errorf("unknown chip %q (known: %s)", s, strings.Join(Keys(), ", "))
}

// Keys lists the chip keys.
func Keys() []string {
	var ks []string
	for _, c := range all {
		ks = append(ks, c.Key)
	}
	sort.Strings(ks)
	return ks
}

// ByMagic finds the chip whose detection word at 0x40001000 is v.
func ByMagic(v uint32) *Chip {
	for _, c := range all {
		for _, m := range c.Magic {
			if m == v {
				return c
			}
		}
	}
	return nil
}

// ByImageChipID finds the chip with the given image/security-info chip id.
func ByImageChipID(id int) *Chip {
	for _, c := range all {
		if c.ImageChipID == id && id >= 0 {
			return c
		}
	}
	return nil
}

// IsESP8266 reports whether c is the ESP8266, whose ROM and image formats
// differ from the ESP32 family in many places.
func (c *Chip) IsESP8266() bool { return c.Key == "esp8266" }

// ClkDiv is the UART_CLKDIV register value for a baud rate: the UART clock
// divided by the baud (ESP32 also keeps a fraction in bits 23:20, which
// readers mask off).
func (c *Chip) ClkDiv(baud int) uint32 {
	if baud <= 0 {
		return 0
	}
	return uint32((c.APBMHz*1000000 + baud/2) / baud)
}
