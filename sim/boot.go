package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mos-tool/mos/fwimage"
)

// boot is the chip from the release of reset: the ROM banner, then either
// the serial loader or the boot from SPI flash. It returns when the chip is
// reset from outside (the context ends).
func (c *cpu) boot(download bool, cause resetCause) {
	d := c.dev
	for c.ctx.Err() == nil {
		c.cause = cause
		d.uartBaud.Store(int64(d.chip.BootBaud))
		d.autobaud.Store(false)
		if err := c.banner(cause, download); err != nil {
			return
		}
		var err error
		if download {
			err = c.romLoader()
		} else {
			err = c.spiBoot()
		}
		var ex exitLoader
		switch {
		case errors.As(err, &ex) && ex == errJumpRAM:
			// the uploaded flasher stub starts and greets the host
			err = c.stub()
			if !errors.As(err, &ex) {
				return
			}
		case errors.As(err, &ex):
		case errors.Is(err, errWatchdog):
			cause = resetWatchdog
			download = d.strapDownload()
			continue
		default:
			return // reset from outside, or a dead end (hung CPU)
		}
		switch ex.action {
		case exitRunApp:
			d.autobaud.Store(false)
			if err := c.runFromFlash(); errors.Is(err, errWatchdog) {
				cause, download = resetWatchdog, d.strapDownload()
				continue
			}
			return
		case exitReboot:
			cause = resetSoftware
			download = d.strapDownload()
		default: // errCrash
			if c.fault != "" {
				if err := c.printf("%s", c.fault); err != nil {
					return
				}
			}
			c.hang()
			return
		}
	}
}

// strapDownload samples the boot strap as a software reset would.
func (d *Device) strapDownload() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.io0LowLocked()
}

const resetWatchdog resetCause = 10

var errWatchdog = errors.New("watchdog reset")

// resetName gives the reset reason as each ROM generation prints it.
func (c *cpu) resetName(cause resetCause) (uint8, string) {
	if c.dev.chip.Key == "esp32" {
		switch cause {
		case resetSoftware:
			return 0x0C, "SW_CPU_RESET"
		case resetWatchdog:
			return 0x10, "RTCWDT_RTC_RESET"
		}
		return 0x01, "POWERON_RESET"
	}
	switch cause {
	case resetSoftware:
		return 0x03, "RTC_SW_SYS_RST"
	case resetWatchdog:
		return 0x07, "TG0WDT_SYS_RST"
	}
	return 0x01, "POWERON"
}

// banner prints what the ROM prints at reset, at the chip's boot baud.
func (c *cpu) banner(cause resetCause, download bool) error {
	chip := c.dev.chip
	var b strings.Builder
	if chip.IsESP8266() {
		rc := 2 // external reset (EN)
		switch cause {
		case resetPowerOn:
			rc = 1
		case resetWatchdog:
			rc = 4
		}
		mode := 3 // SPI flash boot: GPIO15 low, GPIO0 high, GPIO2 high
		if download {
			mode = 1
		}
		fmt.Fprintf(&b, "\r\n ets Jan  8 2013,rst cause:%d, boot mode:(%d,6)\r\n\r\n", rc, mode)
		return c.send([]byte(b.String()))
	}
	bn := chip.Banner
	for _, l := range bn.Head {
		b.WriteString(l + "\r\n")
	}
	code, name := c.resetName(cause)
	boot, bootName := bn.SPIBoot, bn.SPIBootName
	if download {
		boot, bootName = bn.DownloadBoot, bn.DownloadName
	}
	fmt.Fprintf(&b, bn.ResetLine+"\r\n", code, name, boot, bootName)
	if (cause == resetSoftware || cause == resetWatchdog) && chip.Key != "esp32" {
		b.WriteString("Saved PC:0x40048b82\r\n")
	}
	if download {
		b.WriteString("waiting for download\r\n")
	}
	return c.send([]byte(b.String()))
}

// spiBoot is the ROM loading the image at the bootloader offset.
func (c *cpu) spiBoot() error {
	d := c.dev
	chip := d.chip
	c.dev.setState("boot")
	if !chip.IsESP8266() {
		if err := c.printf("configsip: 0, SPIWP:0xee\r\n"); err != nil {
			return err
		}
		if chip.Key == "esp32" {
			c.printf("clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n")
			c.printf("mode:DIO, clock div:2\r\n")
		} else {
			c.printf("mode:DIO, clock div:1\r\n")
		}
	}
	img, raw, err := c.loadImage(chip.BootloaderOffset)
	if errors.Is(err, fwimage.ErrHash) && img != nil {
		// Without secure boot the ROM reports a bad digest and boots anyway.
		calc := sha256.Sum256(raw[:img.Length-32])
		c.printf("SHA-256 comparison failed:\r\nCalculated: %x\r\nExpected: %x\r\nAttempting to boot anyway...\r\n", calc, img.SHA256)
		err = nil
	}
	if err != nil {
		return c.bootError(raw, err)
	}
	if err := c.printLoad(img); err != nil {
		return err
	}
	if chip.IsESP8266() {
		// The ESP8266 ROM runs the image at 0 itself: that is the app.
		return c.runApp(img, chip.BootloaderOffset)
	}
	return c.secondStage()
}

// runFromFlash is the ROM leaving the loader to run the code in flash
// (FLASH_END or RUN_USER_CODE): the same load, without a reset banner.
func (c *cpu) runFromFlash() error { return c.spiBoot() }

// loadImage reads and checks the image at addr as the ROM does.
func (c *cpu) loadImage(addr uint32) (*fwimage.Image, []byte, error) {
	f := c.dev.flash
	n := min(uint32(f.Size())-addr, 1<<20)
	raw := make([]byte, n)
	if err := f.ReadAt(raw, addr); err != nil {
		return nil, raw, err
	}
	img, err := fwimage.ParseFor(c.dev.chip, raw)
	if err != nil {
		return nil, raw, err
	}
	if err := img.Verify(); err != nil {
		return img, raw, err
	}
	return img, raw, nil
}

// printLoad prints the ROM's per-segment load lines and the entry point.
func (c *cpu) printLoad(img *fwimage.Image) error {
	chip := c.dev.chip
	for _, s := range img.Segments {
		var err error
		switch {
		case chip.IsESP8266():
			tail := len(s.Data) % 16
			err = c.printf("load 0x%08x, len %d, room 16 \r\ntail %d\r\nchksum 0x%02x\r\n", s.Addr, len(s.Data), tail, img.Checksum)
		case chip.Key == "esp32":
			err = c.printf("load:0x%08x,len:%d\r\n", s.Addr, len(s.Data))
		default:
			err = c.printf("load:0x%08x,len:0x%x\r\n", s.Addr, len(s.Data))
		}
		if err != nil {
			return err
		}
		if err := c.sleep(readTime(len(s.Data))); err != nil {
			return err
		}
	}
	if chip.IsESP8266() {
		return c.printf("csum 0x%02x\r\n", img.Checksum)
	}
	return c.printf("entry 0x%08x\r\n", img.Entry)
}

// bootError is what a chip does with a blank or corrupt image: the ROM
// prints the reason in a loop until its watchdog resets the chip.
func (c *cpu) bootError(raw []byte, err error) error {
	d := c.dev
	d.setState("boot-error")
	chip := d.chip
	var msg string
	switch {
	case errors.Is(err, fwimage.ErrChecksum):
		var ce *fwimage.ChecksumError
		if errors.As(err, &ce) {
			msg = fmt.Sprintf("csum err:0x%02x!=0x%02x\r\nets_main.c 371 \r\n", ce.Computed, ce.Stored)
		} else {
			msg = "csum err\r\nets_main.c 371 \r\n"
		}
	default:
		var head uint32 = 0xFFFFFFFF
		if len(raw) >= 4 {
			head = binary.LittleEndian.Uint32(raw)
		}
		msg = fmt.Sprintf("invalid header: 0x%08x\r\n", head)
	}
	if chip.IsESP8266() {
		// The ESP8266 ROM finds nothing to run and stays silent.
		<-c.ctx.Done()
		return c.ctx.Err()
	}
	// The ROM retries in a tight loop; the RTC watchdog resets it after a
	// few seconds. Real time is kept here even in fast mode, so that a
	// blank chip does not flood the line.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.printf("%s", msg); err != nil {
			return err
		}
		if err := sleepCtx(c.ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return errWatchdog
}

// hang is a CPU that jumped into nowhere: silence until the next reset.
func (c *cpu) hang() {
	c.dev.setState("hung")
	<-c.ctx.Done()
}
