package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/slip"
)

// stub is the flasher stub running from RAM after the loader jumped to it:
// it greets with "OHAI" and serves the stub protocol.
func (c *cpu) stub() error {
	d := c.dev
	d.setState("stub")
	if d.chip.Key == "esp32" {
		// On the ESP32, esp-flasher-stub raises the CPU and APB clocks at
		// start and reprograms UART0 with the real clock for the ROM's link
		// rate (src/main.c: stub_lib_uart_rominit_get_baudrate, 115200 when
		// the ROM has none; earlier versions always set 115200): a rate the
		// ROM set from its drifting crystal estimate is replaced by the
		// nominal one. Newer versions do the same on the S2, S3 and C6,
		// whose ROM rates the model takes as exact, so nothing changes there.
		if b := d.romBaud.Load(); b > 0 {
			d.uartBaud.Store(b)
		}
	}
	if err := c.send(slip.Encode(nil, []byte("OHAI"))); err != nil {
		return err
	}
	l := &loader{c: c, chip: c.dev.chip, stub: true}
	l.dec.MaxFrame = 0x4000 + 64
	return l.serve()
}

func encodeSLIP(p []byte) []byte { return slip.Encode(nil, p) }

// bootLog prints an ESP-IDF style log line: level, milliseconds since
// boot, tag, message.
func (c *cpu) bootLog(start time.Time, level, tag, format string, args ...any) error {
	ms := time.Since(start).Milliseconds() + 27
	return c.printf("%s (%d) %s: %s\r\n", level, ms, tag, fmt.Sprintf(format, args...))
}

// secondStage is what the ESP-IDF second-stage bootloader loaded by the
// ROM does: read the partition table, pick the app, check it, load it.
// The virtual device does not execute the bootloader's code; it behaves
// as the bootloader behaves with the data found in flash.
func (c *cpu) secondStage() error {
	start := time.Now()
	d := c.dev
	f := d.flash
	c.bootLog(start, "I", "boot", "ESP-IDF v5.3.1 2nd stage bootloader")
	c.bootLog(start, "I", "boot", "chip revision: v%s", chipRevision(d.chip.Key))
	c.bootLog(start, "I", "boot", "SPI Flash Size : %dMB", f.Size()>>20)
	raw := make([]byte, fwimage.PartitionTableMaxLen)
	if err := f.ReadAt(raw, fwimage.PartitionTableOffset); err != nil {
		return err
	}
	pt, err := fwimage.ParsePartitionTable(raw)
	if err != nil || len(pt.Partitions) == 0 {
		c.bootLog(start, "E", "flash_parts", "partition 0 invalid magic number 0x%02x%02x", raw[1], raw[0])
		c.bootLog(start, "E", "boot", "Failed to verify partition table")
		c.bootLog(start, "E", "boot", "load partition table error!")
		return c.abortReboot()
	}
	c.bootLog(start, "I", "boot", "Partition Table:")
	c.bootLog(start, "I", "boot", "## Label            Usage          Type ST Offset   Length")
	for i, p := range pt.Partitions {
		c.bootLog(start, "I", "boot", "%2d %-16s %-14s %02x %02x %08x %08x", i, p.Label, usage(p), p.Type, p.SubType, p.Offset, p.Size)
	}
	c.bootLog(start, "I", "boot", "End of partition table")
	app := pickApp(pt, c.readOtadata)
	if app == nil {
		c.bootLog(start, "E", "boot", "No bootable app partitions in the partition table")
		return c.abortReboot()
	}
	img, _, err := c.loadImage(app.Offset)
	if err != nil {
		switch {
		case errors.Is(err, fwimage.ErrBadMagic), errors.Is(err, fwimage.ErrTruncated):
			c.bootLog(start, "E", "esp_image", "image at 0x%x has invalid magic byte (nothing flashed here?)", app.Offset)
		case errors.Is(err, fwimage.ErrHash):
			c.bootLog(start, "E", "esp_image", "Image hash failed - image is corrupt")
		case errors.Is(err, fwimage.ErrChecksum):
			c.bootLog(start, "E", "esp_image", "Checksum failed. Calculated/stored values differ")
		default:
			c.bootLog(start, "E", "esp_image", "image at 0x%x is invalid: %v", app.Offset, err)
		}
		c.bootLog(start, "E", "boot", "%s app partition is not bootable", app.Label)
		c.bootLog(start, "E", "boot", "No bootable app partitions in the partition table")
		return c.abortReboot()
	}
	for i, s := range img.Segments {
		c.bootLog(start, "I", "esp_image", "segment %d: paddr=%08x vaddr=%08x size=%05xh (%6d) load", i, app.Offset+uint32(s.FileOffset), s.Addr, len(s.Data), len(s.Data))
		if err := c.sleep(readTime(len(s.Data))); err != nil {
			return err
		}
	}
	c.bootLog(start, "I", "boot", "Loaded app from partition at offset 0x%x", app.Offset)
	c.bootLog(start, "I", "boot", "Disabling RNG early entropy source...")
	return c.runApp(img, app.Offset)
}

// abortReboot is the bootloader giving up: it calls abort(), the chip
// reboots after a short delay, and the same failure repeats.
func (c *cpu) abortReboot() error {
	c.dev.setState("boot-error")
	if err := sleepCtx(c.ctx, 500*time.Millisecond); err != nil {
		return err
	}
	return errWatchdog
}

func usage(p fwimage.Partition) string {
	switch {
	case p.Type == fwimage.PartTypeApp && p.SubType == fwimage.PartSubAppFactory:
		return "factory app"
	case p.Type == fwimage.PartTypeApp:
		return "OTA app"
	case p.SubType == fwimage.PartSubDataNVS:
		return "WiFi data"
	case p.SubType == fwimage.PartSubDataOTA:
		return "OTA data"
	case p.SubType == fwimage.PartSubDataPHY:
		return "RF data"
	}
	return "Unknown data"
}

// otadata layout (ESP-IDF, esp_ota_select_entry_t): the otadata partition
// holds two copies of a 32-byte entry, one at the start of each of its
// first two 4 KiB sectors: ota_seq (u32), seq_label[20], ota_state (u32),
// crc (u32). An entry is valid when ota_seq is not 0xFFFFFFFF and crc is
// the CRC-32 of the four ota_seq bytes, seeded with 0xFFFFFFFF (ESP-IDF
// bootloader_common_ota_select_crc/valid; otatool computes the same).
const (
	otaEntrySize   = 32
	otaEntryStride = 0x1000
)

// otaSeq reads the highest valid ota_seq of an otadata partition's
// contents; ok is false when neither entry is valid.
func otaSeq(otadata []byte) (seq uint32, ok bool) {
	for i := 0; i < 2; i++ {
		off := i * otaEntryStride
		if off+otaEntrySize > len(otadata) {
			break
		}
		e := otadata[off : off+otaEntrySize]
		s := binary.LittleEndian.Uint32(e[0:])
		crc := binary.LittleEndian.Uint32(e[28:])
		if s == 0xFFFFFFFF || crc != crc32.Update(0xFFFFFFFF, crc32.IEEETable, e[0:4]) {
			continue
		}
		if !ok || s > seq {
			seq, ok = s, true
		}
	}
	return seq, ok
}

// pickApp chooses the partition to boot as ESP-IDF's second-stage
// bootloader does (bootloader_utility_get_selected_boot_partition): with
// an otadata partition holding a valid entry, the OTA slot
// (ota_seq - 1) % number of OTA app partitions; otherwise the factory app,
// or ota_0 when there is no factory app. readOta reads the
// otadata partition's contents.
func pickApp(pt *fwimage.PartitionTable, readOta func(p *fwimage.Partition) []byte) *fwimage.Partition {
	var factory, otadata *fwimage.Partition
	var slots []*fwimage.Partition // by slot number
	for i := range pt.Partitions {
		p := &pt.Partitions[i]
		switch {
		case p.Type == fwimage.PartTypeApp && p.SubType == fwimage.PartSubAppFactory:
			if factory == nil {
				factory = p
			}
		case p.Type == fwimage.PartTypeApp && p.SubType >= fwimage.PartSubAppOTA0 && p.SubType < fwimage.PartSubAppOTA0+16:
			n := int(p.SubType - fwimage.PartSubAppOTA0)
			for len(slots) <= n {
				slots = append(slots, nil)
			}
			if slots[n] == nil {
				slots[n] = p
			}
		case p.Type == fwimage.PartTypeData && p.SubType == fwimage.PartSubDataOTA:
			if otadata == nil {
				otadata = p
			}
		}
	}
	count := 0
	for _, p := range slots {
		if p != nil {
			count++
		}
	}
	if otadata != nil && count > 0 {
		if seq, ok := otaSeq(readOta(otadata)); ok {
			if p := slotAt(slots, int((seq-1)%uint32(count))); p != nil {
				return p
			}
		}
	}
	if factory != nil {
		return factory
	}
	return slotAt(slots, 0)
}

// readOtadata reads the part of an otadata partition holding its entries.
func (c *cpu) readOtadata(p *fwimage.Partition) []byte {
	buf := make([]byte, min(p.Size, 2*otaEntryStride))
	if c.dev.flash.ReadAt(buf, p.Offset) != nil {
		return nil
	}
	return buf
}

// slotAt is OTA slot n, the app partition of subtype ota_n: ESP-IDF keeps
// the slots by subtype number and counts those present
// (bootloader_utility_load_partition_table), so a gap in the numbering
// selects a missing slot.
func slotAt(slots []*fwimage.Partition, n int) *fwimage.Partition {
	if n < len(slots) {
		return slots[n]
	}
	return nil
}

func chipRevision(key string) string {
	switch key {
	case "esp32":
		return "3.0"
	case "esp32c3":
		return "0.4"
	}
	return "0.0"
}

// runApp starts the application image: it prints what its app descriptor
// says, then hands over to the firmware behaviour the descriptor names.
func (c *cpu) runApp(img *fwimage.Image, offset uint32) error {
	d := c.dev
	d.setState("app")
	start := time.Now()
	if desc := img.AppDesc; desc != nil {
		c.bootLog(start, "I", "cpu_start", "Pro cpu start user code")
		c.bootLog(start, "I", "app_init", "Application information:")
		c.bootLog(start, "I", "app_init", "Project name:     %s", desc.ProjectName)
		c.bootLog(start, "I", "app_init", "App version:      %s", desc.Version)
		c.bootLog(start, "I", "app_init", "Compile time:     %s %s", desc.Date, desc.Time)
		c.bootLog(start, "I", "app_init", "ELF file SHA256:  %x", desc.ELFSHA256[:8])
		c.bootLog(start, "I", "app_init", "ESP-IDF:          %s", desc.IDFVersion)
	} else {
		c.printf("app at 0x%x, entry 0x%08x (no app descriptor)\r\n", offset, img.Entry)
	}
	return c.runFirmware(img, offset) // firmware.go
}
