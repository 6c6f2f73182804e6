package flasher

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/port"
)

// ConnectOptions control how Connect reaches the ROM loader.
type ConnectOptions struct {
	// Reset is a ResetMode ("auto", "classic", "usb-jtag", "none") or a
	// custom sequence (see ResetSequence). Empty means auto.
	Reset string
	// USBJTAG says the port is the chip's own USB-Serial/JTAG peripheral
	// (VID 0x303A, PID 0x1001), which wants its own reset sequence.
	USBJTAG bool
	// Attempts is how many reset-and-sync rounds to make; 0 means 7.
	Attempts int
	// ManualWait is how long to keep listening for a chip put into download
	// mode by hand after the automatic attempts failed; 0 gives up at once.
	ManualWait time.Duration
	// Status, when set, receives short progress messages.
	Status func(msg string)
	// Prompt, when set, receives what the user must do by hand (enter
	// download mode with the buttons) while ManualWait runs.
	Prompt func(msg string)
}

// Loader is a connection to a chip's ROM loader (or to a flasher stub).
type Loader struct {
	*Conn
	Chip *chips.Chip
	// Stub is true once the flasher stub answers instead of the ROM.
	Stub bool
	// Reset is the sequence that got the chip into download mode, empty
	// when it was already there.
	Reset string
}

// ConnectError says why no loader answered, with what was seen on the line.
type ConnectError struct {
	Port       string
	Attempts   int
	BootMode   string // "0x13" when a ROM banner was seen
	Download   bool   // the banner said "waiting for download"
	NotReset   bool   // the port could not drive DTR/RTS
	LastErr    error
	ManualWait time.Duration
}

func (e *ConnectError) Error() string {
	msg := fmt.Sprintf("no answer from the chip's bootloader on %s after %d attempts", e.Port, e.Attempts)
	switch {
	case e.Download:
		msg += ": the chip is in download mode but does not answer (serial TX path down or wrong baud)"
	case e.BootMode != "":
		msg += fmt.Sprintf(": the chip booted in mode %s, not download mode", e.BootMode)
	}
	if e.NotReset {
		msg += "; this port cannot drive the reset lines (DTR/RTS), so the chip was not reset"
	}
	return msg
}

func (e *ConnectError) Unwrap() error { return e.LastErr }

// ExitCode is "no answer from device".
func (e *ConnectError) ExitCode() int { return 6 }

// Hint tells how to enter download mode by hand.
func (e *ConnectError) Hint() string {
	return "put the chip into download mode by hand: hold the BOOT (IO0) button, press and release EN (RST), " +
		"then release BOOT, and run the command again with --reset none. Also check the cable (a charge-only " +
		"USB cable has no data lines) and that no other program uses the port."
}

var bootModeRe = regexp.MustCompile(`boot:(0x[0-9a-fA-F]+)`)

// noteBanner records the boot mode a ROM banner in out shows, if any.
func (e *ConnectError) noteBanner(out []byte) bool {
	m := bootModeRe.FindSubmatch(out)
	if m == nil {
		return false
	}
	e.BootMode = string(m[1])
	e.Download = bytes.Contains(out, []byte("waiting for download"))
	return true
}

// Connect resets the chip into its ROM loader, syncs and detects the chip.
func Connect(ctx context.Context, p port.Port, opt ConnectOptions) (*Loader, error) {
	plan, err := ResetPlan(opt.Reset, opt.USBJTAG)
	if err != nil {
		return nil, err
	}
	attempts := opt.Attempts
	if attempts <= 0 {
		attempts = 7
	}
	status := opt.Status
	if status == nil {
		status = func(string) {}
	}
	c := NewConn(p)
	cerr := &ConnectError{Port: p.Name(), ManualWait: opt.ManualWait}
	var seen []byte // console output of earlier attempts
	for i := 0; i < attempts; i++ {
		cerr.Attempts = i + 1
		name := ""
		if len(plan) > 0 {
			seq := plan[i%len(plan)]
			name = seq.String()
			status(fmt.Sprintf("resetting into download mode (%s)", seq.Name))
			// what the chip printed so far (a banner from before this reset)
			// still tells how it booted
			c.keepJunk()
			seen = appendBounded(seen, c.Junk)
			c.Flush()
			c.Junk = nil
			if err := seq.Run(ctx, p); err != nil {
				if !noLines(err) {
					return nil, err
				}
				cerr.NotReset = true
				plan = nil // no point trying other sequences
			}
		}
		stub, err := c.syncTries(ctx, 5)
		if err == nil {
			l := &Loader{Conn: c, Stub: stub, Reset: name}
			if err := l.detect(ctx); err != nil {
				return nil, err
			}
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		cerr.LastErr = err
		// this attempt's banner, else one from before (power-on, watchdog)
		if !cerr.noteBanner(c.Junk) && cerr.BootMode == "" {
			cerr.noteBanner(seen)
		}
	}
	if opt.ManualWait > 0 {
		prompt := opt.Prompt
		if prompt == nil {
			prompt = status
		}
		prompt(fmt.Sprintf("the chip did not answer: hold BOOT (IO0), press and release EN (RST), then release BOOT; waiting %v...", opt.ManualWait.Round(time.Second)))
		deadline := time.Now().Add(opt.ManualWait)
		for time.Now().Before(deadline) {
			stub, err := c.syncTries(ctx, 1)
			if err == nil {
				l := &Loader{Conn: c, Stub: stub}
				if err := l.detect(ctx); err != nil {
					return nil, err
				}
				return l, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	return nil, cerr
}

// syncTries sends SYNC up to n times. It reports whether a stub (value 0)
// rather than the ROM answered.
func (c *Conn) syncTries(ctx context.Context, n int) (bool, error) {
	var last error
	for i := 0; i < n; i++ {
		if i > 0 {
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return false, err
			}
		}
		c.keepJunk()
		stub, err := c.sync(ctx)
		if err == nil {
			return stub, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		last = err
	}
	return false, last
}

// keepJunk moves undecoded received bytes into Junk (the boot banner), so
// a flush before SYNC does not lose them.
func (c *Conn) keepJunk() {
	_ = c.p.SetReadTimeout(time.Millisecond)
	buf := make([]byte, 4096)
	// bounded: a line full of noise must not keep us here
	for deadline := time.Now().Add(20 * time.Millisecond); time.Now().Before(deadline); {
		n, err := c.p.Read(buf)
		if n > 0 && len(c.Junk) < 8192 {
			c.Junk = append(c.Junk, buf[:n]...)
		}
		if err != nil || n == 0 {
			break
		}
	}
	c.buf = nil
	c.dec.Reset()
}

// appendBounded keeps the last 16 KiB of console output.
func appendBounded(dst, src []byte) []byte {
	dst = append(dst, src...)
	if len(dst) > 16<<10 {
		dst = dst[len(dst)-16<<10:]
	}
	return dst
}

var syncPayload = append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)

// SYNC's timing. esptool (loader.py, sync()) waits 0.1 s for the first
// reply; a ROM sends the other seven right behind it (about 1.2 ms each at
// 115200 baud, measured back to back on the ESP32 emulator), so a gap of
// syncGap means no more are coming.
const (
	syncTimeout = 100 * time.Millisecond
	syncGap     = 100 * time.Millisecond
)

// sync sends one SYNC and collects the loader's eight answers. Whatever is
// still on its way after that is dropped before the next command, so a
// late SYNC reply is never read as the answer to something else.
func (c *Conn) sync(ctx context.Context) (bool, error) {
	if err := c.Send(OpSync, syncPayload, 0); err != nil {
		return false, err
	}
	r, err := c.ReadResponse(ctx, OpSync, syncTimeout)
	if err != nil {
		return false, err
	}
	if r.Status[0] != 0 {
		return false, &DeviceError{Op: OpSync, Status: r.Status}
	}
	// The reply to SYNC carries nothing but status: its length tells
	// this loader's status size.
	if n := len(r.Body); n == 2 || n == 4 {
		c.StatusLen = n
	}
	// ROMs answer with a non-zero value, flasher stubs with 0 (esptool
	// takes 0 in all eight as "a stub is running").
	stub := r.Value == 0
	all := true
	for i := 0; i < 7; i++ {
		extra, err := c.ReadResponse(ctx, OpSync, syncGap)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			all = false
			break
		}
		stub = stub && extra.Value == 0
	}
	if all {
		c.Flush()
	} else if err := c.settle(ctx); err != nil {
		return false, err
	}
	return stub, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// detect identifies the chip: GET_SECURITY_INFO's chip id where the ROM
// has it, else the magic word at 0x40001000.
func (l *Loader) detect(ctx context.Context) error {
	r, err := l.Command(ctx, OpSecurityInfo, nil, 0, DefaultTimeout)
	if err == nil {
		switch {
		case len(r.Data) >= 20:
			id := int(binary.LittleEndian.Uint32(r.Data[12:]))
			if c := chips.ByImageChipID(id); c != nil {
				l.Chip = c
				return nil
			}
			return fmt.Errorf("unknown chip id %d in security info", id)
		case len(r.Data) == 12:
			// only the ESP32-S2 answers without a chip id
			c, _ := chips.ByKey("esp32s2")
			l.Chip = c
			return nil
		}
	} else if !errors.Is(err, ErrUnsupported) {
		// A matching op with a failure status (01 05 from a ROM that
		// takes the length for wrong) also means "no chip id here", as
		// esptool's connect() treats any FatalError.
		var de *DeviceError
		if !errors.As(err, &de) {
			return fmt.Errorf("reading security info: %w", err)
		}
	}
	// an unsupported answer's repeats were drained by ReadResponse
	magic, err := l.ReadReg(ctx, chips.DetectMagicAddr)
	if err != nil {
		return fmt.Errorf("reading chip magic: %w", err)
	}
	c := chips.ByMagic(magic)
	if c == nil {
		return fmt.Errorf("unknown chip (magic 0x%08X at 0x40001000): not an ESP chip mos supports", magic)
	}
	l.Chip = c
	return nil
}
