package sim

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/sim/atca"
)

// The hand-over from the boot model to application firmware. The device
// checks an image as the ROM and the second-stage bootloader do; what a
// valid application then does is not the chip's business but the
// firmware's, which lives in its own package (the project's demo firmware
// is sim/demofw) and is attached to a device when it is built
// (Config.Firmware). One Firmware value belongs to one device for its
// whole life, so whatever it keeps across reboots is that device's.

// Firmware is the behaviour of the application images a device can run.
type Firmware interface {
	// Recognises reports whether img is an application this firmware
	// knows how to run.
	Recognises(img *fwimage.Image) bool
	// Run runs the application until the chip is reset (m.Context ends)
	// or the application restarts the chip (it returns ErrRestart).
	Run(m *Machine, app App) error
}

// App is the application image the boot chain loaded.
type App struct {
	Image  *fwimage.Image
	Offset uint32 // where in flash it was loaded from
}

// ErrRestart is what Firmware.Run returns for a software reset
// (esp_restart): the chip boots again through its ROM, which reports a
// software reset.
var ErrRestart = errors.New("sim: software restart")

// ResetReason is why the chip last left reset, as the application reads it
// from the chip (esp_reset_reason, the ESP8266 SDK's rst_info).
type ResetReason int

const (
	ResetPowerOn  ResetReason = iota // power applied
	ResetExternal                    // EN pin (button or auto-reset circuit)
	ResetSoftware                    // the application restarted the chip
	ResetWatchdog                    // the RTC watchdog fired (e.g. in a boot loop)
)

// runFirmware is the hand-over point: the boot chain has checked and
// loaded img, and the device's firmware runs it if it recognises it.
// An application nobody recognises runs silently until the next reset.
func (c *cpu) runFirmware(img *fwimage.Image, offset uint32) error {
	fw := c.dev.cfg.Firmware
	if fw == nil || !fw.Recognises(img) {
		<-c.ctx.Done()
		return c.ctx.Err()
	}
	err := fw.Run(&Machine{c: c}, App{Image: img, Offset: offset})
	if errors.Is(err, ErrRestart) {
		return exitLoader{exitReboot}
	}
	return err
}

// Machine is the chip as the application sees it for one run, from the
// hand-over to the next reset: its context, identity, flash, UART0 and
// radio surroundings.
type Machine struct {
	c *cpu
}

// Context ends when the chip is reset.
func (m *Machine) Context() context.Context { return m.c.ctx }

// Chip is the chip the application runs on.
func (m *Machine) Chip() *chips.Chip { return m.c.dev.chip }

// MAC is the factory MAC address from the eFuses.
func (m *Machine) MAC() [6]byte { return m.c.dev.cfg.MAC }

// Flash is the SPI flash the application reads and writes.
func (m *Machine) Flash() *Flash { return m.c.dev.flash }

// WiFi is the radio environment: the networks in range.
func (m *Machine) WiFi() []AccessPoint { return slices.Clone(m.c.dev.cfg.WiFi) }

// CryptoChip is the ATECC508A on the board's I2C bus, or nil when the
// board has none.
func (m *Machine) CryptoChip() *atca.Chip { return m.c.dev.cfg.CryptoChip }

// Fast reports the device's fast mode (Config.Fast): no modelled time.
func (m *Machine) Fast() bool { return m.c.dev.cfg.Fast }

// ResetReason says why the chip last left reset.
func (m *Machine) ResetReason() ResetReason {
	switch m.c.cause {
	case resetPowerOn:
		return ResetPowerOn
	case resetSoftware:
		return ResetSoftware
	case resetWatchdog:
		return ResetWatchdog
	}
	return ResetExternal
}

// Sleep is the CPU busy for d; skipped in fast mode. An error means the
// chip was reset meanwhile.
func (m *Machine) Sleep(d time.Duration) error { return m.c.sleep(d) }

// UARTBaud is UART0's rate now.
func (m *Machine) UARTBaud() int { return int(m.c.dev.uartBaud.Load()) }

// SetUARTBaud sets UART0's rate, as the application's driver does.
func (m *Machine) SetUARTBaud(baud int) { m.c.dev.uartBaud.Store(int64(baud)) }

// DiscardRX empties the receive side of UART0 (a driver's FIFO reset).
func (m *Machine) DiscardRX() { m.c.dev.toDev.discard() }

// Recv waits for bytes from the host until deadline (zero: forever) or
// until ctx ends. It returns ErrReadTimeout when the deadline passes.
// Bytes arrive at the line's rate, in pieces of up to RXPiece bytes.
func (m *Machine) Recv(ctx context.Context, p []byte, deadline time.Time) (int, error) {
	d := m.c.dev
	n, err := d.toDev.recv(ctx, p, func() int { return int(d.uartBaud.Load()) }, deadline)
	if errors.Is(err, errTimeout) {
		return n, ErrReadTimeout
	}
	return n, err
}

// RXPiece is how many bytes the virtual line hands over at once at the
// current rate: a receiver that watches its fill level sees a byte up to
// this many bytes late.
func (m *Machine) RXPiece() int { return pieceBytes(m.UARTBaud()) }

// Send transmits p at UART0's current rate; it returns early with the
// context's error when the chip is reset.
func (m *Machine) Send(p []byte) error { return m.c.send(p) }

// SendAhead transmits one byte ahead of the output queued for the wire,
// as the UART hardware does with software flow control (XON/XOFF).
func (m *Machine) SendAhead(b byte) {
	if m.c.ctx.Err() == nil {
		m.c.dev.toHost.sendAhead(b, m.UARTBaud())
	}
}

// UARTStats counts what the firmware's UART receiver did since the device
// was created (they survive resets, so a test can read them afterwards).
type UARTStats struct {
	Received uint64 // bytes that entered the RX FIFO
	Lost     uint64 // bytes that arrived while the FIFO was full
	MaxFill  int    // the most bytes the FIFO held at once
	XOFFSent uint64 // flow control: times the firmware asked the host to stop
	XONSent  uint64 // ... and to go on
}

// UARTStatser is a Firmware that counts its UART receiver's work.
type UARTStatser interface {
	UARTStats() UARTStats
}

// UARTStats reports the receive side of the firmware's UART. It stays
// zero unless the device's firmware counts it (the demo does).
func (d *Device) UARTStats() UARTStats {
	if s, ok := d.cfg.Firmware.(UARTStatser); ok {
		return s.UARTStats()
	}
	return UARTStats{}
}

// Firmware is the firmware attached to the device (Config.Firmware).
func (d *Device) Firmware() Firmware { return d.cfg.Firmware }

// sendAhead queues one byte right after the piece on the wire now; the
// pieces queued behind it arrive one byte time later.
func (l *line) sendAhead(b byte, baud int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.dropping {
		return
	}
	pc := piece{data: []byte{b}, baud: baud}
	i := len(l.pieces)
	if !l.fast {
		bt := byteTime(baud)
		now := time.Now()
		pc.at = now.Add(bt)
		if l.busyUntil.After(now) {
			// keep what has arrived and the piece being sent
			i = 0
			for i < len(l.pieces) && !l.pieces[i].at.After(now) {
				i++
			}
			if i < len(l.pieces) {
				pc.at = l.pieces[i].at.Add(bt)
				i++
			}
			for j := i; j < len(l.pieces); j++ {
				l.pieces[j].at = l.pieces[j].at.Add(bt)
			}
			l.busyUntil = l.busyUntil.Add(bt)
		} else {
			l.busyUntil = pc.at
		}
	}
	l.pieces = slices.Insert(l.pieces, i, pc)
	l.queued++
	l.wake()
}
