package sim_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/sim"
)

// writeBootableFlash lays out what ESP-IDF's build flashes: bootloader,
// partition table with a factory app, and the app with its descriptor.
func writeBootableFlash(t *testing.T, dev *sim.Device, corruptApp bool) {
	t.Helper()
	c := dev.Chip()
	boot, err := fwimage.Build(fwimage.Spec{Chip: c, FlashMode: 2, Entry: 0x40080400, HashAppended: true,
		Segments: []fwimage.Segment{{Addr: 0x3FFF0030, Data: pattern(1024)}, {Addr: 0x40078000, Data: pattern(2048)}}})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := (&fwimage.PartitionTable{Partitions: []fwimage.Partition{
		{Type: fwimage.PartTypeData, SubType: fwimage.PartSubDataNVS, Offset: 0x9000, Size: 0x6000, Label: "nvs"},
		{Type: fwimage.PartTypeApp, SubType: fwimage.PartSubAppFactory, Offset: 0x10000, Size: 0x100000, Label: "factory"},
	}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	app, err := fwimage.Build(fwimage.Spec{Chip: c, FlashMode: 2, Entry: 0x400D1234, HashAppended: true,
		AppDesc:  &fwimage.AppDesc{Version: "1.2.3", ProjectName: "blinky", Date: "Nov 25 2026", Time: "12:00:00", IDFVersion: "v5.3.1"},
		Segments: []fwimage.Segment{{Addr: 0x3F400020, Data: pattern(4096)}, {Addr: 0x400D0020, Data: pattern(8192)}}})
	if err != nil {
		t.Fatal(err)
	}
	if corruptApp {
		app[len(app)-40] ^= 0xFF // inside the last segment: breaks checksum and digest
	}
	f := dev.Flash()
	for _, part := range []struct {
		addr uint32
		data []byte
	}{{c.BootloaderOffset, boot}, {fwimage.PartitionTableOffset, pt}, {0x10000, app}} {
		if _, err := f.Program(part.addr, part.data); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBootValidImagePrintsAppDescriptor(t *testing.T) {
	for _, key := range []string{"esp32", "esp32c3"} {
		t.Run(key, func(t *testing.T) {
			p, dev := open(t, "sim://"+key+"?fast=1")
			writeBootableFlash(t, dev, false)
			if err := flasher.HardReset().Run(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			out := readFor(p, 300*time.Millisecond)
			for _, want := range []string{"SPI_FAST_FLASH_BOOT", "entry 0x40080400", "Loaded app from partition at offset 0x10000",
				"Project name:     blinky", "App version:      1.2.3", "ESP-IDF:          v5.3.1"} {
				if !strings.Contains(out, want) {
					t.Errorf("boot log lacks %q:\n%s", want, out)
				}
			}
			if dev.State() != "app" {
				t.Errorf("state %q, want app", dev.State())
			}
		})
	}
}

func TestBootCorruptAppIsNotBooted(t *testing.T) {
	p, dev := open(t, "sim://esp32?fast=1")
	writeBootableFlash(t, dev, true)
	flasher.HardReset().Run(context.Background(), p)
	out := readFor(p, 300*time.Millisecond)
	if !strings.Contains(out, "factory app partition is not bootable") || strings.Contains(out, "Project name") {
		t.Fatalf("corrupt app: boot log\n%s", out)
	}
	if dev.State() != "boot-error" {
		t.Errorf("state %q, want boot-error", dev.State())
	}
}

// A bootloader whose flash header was patched without fixing its SHA-256:
// the ROM says so and boots anyway (no secure boot), as ESP32 ROMs do.
func TestBootBadBootloaderDigest(t *testing.T) {
	p, dev := open(t, "sim://esp32?fast=1")
	writeBootableFlash(t, dev, false)
	c, _ := chips.ByKey("esp32")
	// header byte 2 is the flash mode: DIO (2) -> QIO (0) only clears
	// bits, so it can be programmed over, as a careless flasher would
	if _, err := dev.Flash().Program(c.BootloaderOffset+2, []byte{0}); err != nil {
		t.Fatal(err)
	}
	flasher.HardReset().Run(context.Background(), p)
	out := readFor(p, 300*time.Millisecond)
	if !strings.Contains(out, "SHA-256 comparison failed") || !strings.Contains(out, "Project name") {
		t.Fatalf("boot log\n%s", out)
	}
}

func TestFlashPersistsInFile(t *testing.T) {
	path := t.TempDir() + "/esp32.flash"
	url := "sim://esp32?fast=1&flash-file=" + path
	p, dev := open(t, url)
	writeBootableFlash(t, dev, false)
	p.Close()
	p2, dev2 := open(t, url)
	flasher.HardReset().Run(context.Background(), p2)
	if out := readFor(p2, 300*time.Millisecond); !strings.Contains(out, "Project name:     blinky") {
		t.Fatalf("after reopening the flash file the app is gone:\n%s", out)
	}
	_ = dev2
}
