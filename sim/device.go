// Package sim is the virtual ESP device: a chip's serial ROM loader and
// flasher stub, its reset and boot-strap wiring, its SPI flash with real
// timings, and a UART whose bytes take as long as they would on a wire.
//
// It exists so that every feature of mos can be built, tested and shown
// without a board, so it behaves like the chips do, not like mos wishes:
// tools that mos did not write (esptool-js) are run against it in the
// test suite. The host reaches it through a HostPort, which satisfies
// port.Port, either in-process (sim://) or over TCP (mos sim serve).
package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/sim/atca"
)

var errTimeout = errors.New("sim: read timed out")

// Device is one virtual chip on its board.
type Device struct {
	cfg   Config
	chip  *chips.Chip
	flash *Flash

	toDev  *line // host -> device
	toHost *line // device -> host

	uartBaud atomic.Int64 // the device UART's current rate
	autobaud atomic.Bool  // ROM loader follows the host's rate
	romBaud  atomic.Int64 // the rate last asked of the ROM's CHANGE_BAUDRATE (0: none)

	mu        sync.Mutex
	dtr, rts  bool // as the host drives them
	inReset   bool // EN held low
	armed     bool // USB-Serial/JTAG: download boot requested
	bootTimer *time.Timer
	runCancel context.CancelFunc
	runDone   chan struct{}
	host      *HostPort
	closed    bool
	unplugged bool // the USB cable is out (Unplug)

	regs *registers

	stateMu sync.Mutex
	state   string // what the chip is doing, for tests and `sim serve -v`
}

type resetCause int

const (
	resetPowerOn resetCause = iota
	resetEN
	resetSoftware
)

// New builds a device and powers it on.
func New(cfg Config) (*Device, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	f, err := NewFlash(cfg.FlashSize, cfg.FlashFile)
	if err != nil {
		return nil, err
	}
	if cfg.Timings != nil {
		f.Timings = *cfg.Timings
	}
	if cfg.ATCA && cfg.CryptoChip == nil {
		// the chip's serial number varies per board: take it from the MAC
		serial := [5]byte(cfg.MAC[1:])
		if cfg.FlashFile == "" {
			cfg.CryptoChip = atca.New(serial)
		} else if cfg.CryptoChip, err = atca.Open(atca.StatePath(cfg.FlashFile), serial); err != nil {
			f.Close()
			return nil, err
		}
	}
	d := &Device{
		cfg:    cfg,
		chip:   cfg.Chip,
		flash:  f,
		toDev:  newLine(cfg.Fast, 0),
		toHost: newLine(cfg.Fast, 256<<10),
	}
	d.toHost.setDropping(true) // nobody listening yet
	d.SetNoise(cfg.Noise)
	d.regs = newRegisters(d)
	d.uartBaud.Store(int64(cfg.Chip.BootBaud))
	d.mu.Lock()
	d.startLocked(resetPowerOn, cfg.DownloadAtPowerOn, 0)
	d.mu.Unlock()
	return d, nil
}

// Chip is the chip the device models.
func (d *Device) Chip() *chips.Chip { return d.chip }

// MAC is the factory MAC address in the chip's eFuses.
func (d *Device) MAC() []byte { return append([]byte(nil), d.cfg.MAC[:]...) }

// CryptoChip is the board's ATECC508A, or nil when it has none.
func (d *Device) CryptoChip() *atca.Chip { return d.cfg.CryptoChip }

// Flash gives tests direct access to the flash memory.
func (d *Device) Flash() *Flash { return d.flash }

// State says what the chip is doing: "reset", "download", "stub",
// "boot-error", "app".
func (d *Device) State() string {
	d.stateMu.Lock()
	defer d.stateMu.Unlock()
	return d.state
}

func (d *Device) setState(s string) {
	d.stateMu.Lock()
	d.state = s
	d.stateMu.Unlock()
}

// Close powers the device off and releases its flash file.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.haltLocked()
	d.mu.Unlock()
	d.toDev.close()
	d.toHost.close()
	unshare(d)
	return d.flash.Close()
}

// Connect plugs a host into the device's UART. Only one host at a time, as
// with a serial port.
func (d *Device) Connect() (*HostPort, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("sim: device is powered off")
	}
	if d.unplugged {
		return nil, ErrUnplugged
	}
	if d.host != nil {
		return nil, ErrBusy
	}
	h := &HostPort{dev: d, name: "sim://" + d.chip.Key}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.baud.Store(115200)
	h.requested.Store(115200)
	d.host = h
	d.toHost.discard()
	d.toHost.setDropping(false)
	return h, nil
}

func (d *Device) disconnect(h *HostPort) {
	d.mu.Lock()
	if d.host == h {
		d.host = nil
		d.toHost.setDropping(true)
		// A closing USB-UART bridge releases both lines.
		d.setLinesLocked(false, false)
	}
	d.mu.Unlock()
}

// PressReset is the board's buttons: EN pressed and released, with BOOT
// held down when download is true. It works on every board.
func (d *Device) PressReset(download bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.haltLocked()
	d.startLocked(resetEN, download, d.cfg.Board.enDelay())
}

// setLinesLocked applies the host's DTR/RTS to the board's wiring.
func (d *Device) setLinesLocked(dtr, rts bool) {
	d.dtr, d.rts = dtr, rts
	if d.closed {
		return
	}
	switch d.cfg.Board {
	case BoardNoAutoReset:
		return
	case BoardUSBJTAG:
		// The peripheral arms download boot on (DTR, !RTS) and holds the
		// chip in reset on (RTS, !DTR); releasing reset boots, into the
		// loader if armed. The pass through both-asserted is harmless.
		if dtr && !rts {
			d.armed = true
		}
		reset := rts && !dtr
		if reset && !d.inReset {
			d.haltLocked()
			d.inReset = true
		} else if !reset && d.inReset {
			d.inReset = false
			download := d.armed
			d.armed = false
			d.startLocked(resetEN, download, d.cfg.Board.enDelay())
		}
	default:
		// Two inverting transistors: EN is pulled low only by (RTS, !DTR),
		// IO0 only by (DTR, !RTS).
		enLow := rts && !dtr
		if enLow && !d.inReset {
			d.haltLocked()
			d.inReset = true
		} else if !enLow && d.inReset {
			d.inReset = false
			d.startLocked(resetEN, false, d.cfg.Board.enDelay())
		}
	}
}

// io0LowLocked reports the boot strap pin as the wiring drives it now.
func (d *Device) io0LowLocked() bool {
	switch d.cfg.Board {
	case BoardDevKit, BoardSlowEN:
		return d.dtr && !d.rts
	}
	return false
}

// haltLocked stops the CPU: EN is low.
func (d *Device) haltLocked() {
	if d.bootTimer != nil {
		d.bootTimer.Stop()
		d.bootTimer = nil
	}
	if d.runCancel != nil {
		d.runCancel()
		d.runCancel = nil
	}
	d.toDev.setDropping(true)
	d.setState("reset")
}

// startLocked releases the chip from reset after the EN pin's RC delay.
// The boot mode is sampled when the chip actually starts: download when
// forced (buttons, USB-JTAG arming) or when IO0 is low at that moment.
func (d *Device) startLocked(cause resetCause, forceDownload bool, delay time.Duration) {
	if d.bootTimer != nil {
		d.bootTimer.Stop()
	}
	start := func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.closed || d.inReset {
			return
		}
		d.bootTimer = nil
		download := forceDownload || d.io0LowLocked()
		prev := d.runDone
		ctx, cancel := context.WithCancel(context.Background())
		d.runCancel = cancel
		done := make(chan struct{})
		d.runDone = done
		go func() {
			defer close(done)
			if prev != nil {
				<-prev // the previous run has noticed its cancellation
			}
			d.run(ctx, download, cause)
		}()
	}
	// asynchronous even without delay: the caller holds d.mu
	d.bootTimer = time.AfterFunc(max(delay, 0), start)
}

// run is the chip from reset until the next reset.
func (d *Device) run(ctx context.Context, download bool, cause resetCause) {
	d.toDev.setDropping(false)
	d.toDev.discard()
	d.uartBaud.Store(int64(d.chip.BootBaud))
	d.autobaud.Store(false)
	d.romBaud.Store(0)
	d.regs.reset()
	c := &cpu{dev: d, ctx: ctx}
	c.boot(download, cause)
}

// cpu is the code running between two resets: ROM, stub or firmware.
type cpu struct {
	dev *Device
	ctx context.Context
	rx  []byte // received, not yet consumed

	fault string // what the CPU prints when it faults after a jump (crash)
	// cause is why the chip last left reset, as the application reads it
	cause resetCause
}

// sleep models time the chip spends working; skipped in fast mode.
func (c *cpu) sleep(d time.Duration) error {
	if c.dev.cfg.Fast {
		return c.ctx.Err()
	}
	return sleepCtx(c.ctx, d)
}

// send transmits bytes at the UART's current rate.
func (c *cpu) send(p []byte) error {
	return c.dev.toHost.send(c.ctx, p, int(c.dev.uartBaud.Load()), 0)
}

func (c *cpu) printf(format string, args ...any) error {
	return c.send([]byte(fmt.Sprintf(format, args...)))
}

// recv waits for bytes from the host until deadline (zero: forever).
func (c *cpu) recv(p []byte, deadline time.Time) (int, error) {
	d := c.dev
	return d.toDev.recv(c.ctx, p, func() int {
		// The ROM's auto-baud detection follows the host; the rate of what
		// arrives is the rate it measures.
		return int(d.uartBaud.Load())
	}, deadline)
}

// HostPort is the host's end of the virtual serial line. It satisfies
// port.Port.
type HostPort struct {
	dev        *Device
	name       string
	ownsDevice bool

	baud      atomic.Int64 // the rate the host side of the line really runs at
	requested atomic.Int64 // the rate the host asked for
	timeout   atomic.Int64 // nanoseconds; 0 = forever
	closed    atomic.Bool
	unplugged atomic.Bool     // the device was unplugged under this port
	ctx       context.Context // ends at Close, so blocked calls return
	cancel    context.CancelFunc
}

func (h *HostPort) context() context.Context { return h.ctx }

// Device is the device this port is plugged into.
func (h *HostPort) Device() *Device { return h.dev }

func (h *HostPort) Read(p []byte) (int, error) {
	if h.closed.Load() {
		return 0, errClosedPort
	}
	if h.unplugged.Load() {
		return 0, ErrUnplugged
	}
	var deadline time.Time
	if t := h.timeout.Load(); t > 0 {
		deadline = time.Now().Add(time.Duration(t))
	}
	n, err := h.dev.toHost.recv(h.context(), p, func() int { return int(h.baud.Load()) }, deadline)
	switch {
	case err == errTimeout:
		return 0, ErrReadTimeout
	case err != nil && h.closed.Load():
		return 0, ErrClosed
	case err != nil && h.unplugged.Load():
		return 0, ErrUnplugged
	}
	return n, err
}

// hostBacklog is the host UART driver's transmit buffer in wire time: a
// Write returns once its bytes fit into it.
const hostBacklog = 4096

func (h *HostPort) Write(p []byte) (int, error) {
	if h.closed.Load() {
		return 0, errClosedPort
	}
	if h.unplugged.Load() {
		return 0, ErrUnplugged
	}
	baud := int(h.baud.Load())
	if err := h.dev.receiveFromHost(h.context(), p, baud); err != nil {
		if h.closed.Load() {
			return 0, ErrClosed
		}
		if h.unplugged.Load() {
			return 0, ErrUnplugged
		}
		return 0, err
	}
	return len(p), nil
}

func (d *Device) receiveFromHost(ctx context.Context, p []byte, baud int) error {
	if d.autobaud.Load() && int(d.uartBaud.Load()) != baud {
		// The ROM loader measures the incoming bit time and follows it.
		d.uartBaud.Store(int64(baud))
	}
	return d.toDev.send(ctx, p, baud, WireTime(hostBacklog, baud))
}

func (h *HostPort) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	h.cancel()
	h.dev.disconnect(h)
	if h.ownsDevice {
		return h.dev.Close()
	}
	return nil
}

func (h *HostPort) SetReadTimeout(d time.Duration) error {
	h.timeout.Store(int64(d))
	return nil
}

func (h *HostPort) SetBaudRate(baud int) error {
	if baud <= 0 {
		return fmt.Errorf("sim: invalid baud rate %d", baud)
	}
	h.requested.Store(int64(baud))
	if m := h.dev.cfg.BridgeMaxBaud; m > 0 && baud > m {
		baud = m // the bridge cannot go faster and silently stays below
	}
	h.baud.Store(int64(baud))
	return nil
}

func (h *HostPort) BaudRate() int { return int(h.requested.Load()) }

func (h *HostPort) SetDTR(on bool) error { return h.setLines(&on, nil) }
func (h *HostPort) SetRTS(on bool) error { return h.setLines(nil, &on) }

func (h *HostPort) setLines(dtr, rts *bool) error {
	if h.closed.Load() {
		return errClosedPort
	}
	if h.unplugged.Load() {
		return ErrUnplugged
	}
	d := h.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	nd, nr := d.dtr, d.rts
	if dtr != nil {
		nd = *dtr
	}
	if rts != nil {
		nr = *rts
	}
	d.setLinesLocked(nd, nr)
	return nil
}

func (h *HostPort) ResetInputBuffer() error {
	h.dev.toHost.purgeArrived()
	return nil
}

// Drain waits until everything written has reached the device.
func (h *HostPort) Drain() error {
	if h.dev.cfg.Fast {
		return nil
	}
	return sleepCtx(h.context(), time.Until(h.dev.toDev.idleAt()))
}

func (h *HostPort) Name() string { return h.name }

var errClosedPort = ErrClosed

// ErrClosed is returned by a HostPort after Close.
var ErrClosed = errors.New("sim: port is closed")

// ErrBusy is returned by Connect while another host is connected.
var ErrBusy = errors.New("sim: device is busy (another host is connected)")

// ErrReadTimeout is what HostPort.Read returns when nothing arrived in
// time; port.Open maps it to port.ErrTimeout.
var ErrReadTimeout = errors.New("read timed out")
