package flasher

import (
	"context"
	"errors"
	"fmt"

	"github.com/mos-tool/mos/port"
)

// SessionOptions describe how to get a loader ready for flash work.
type SessionOptions struct {
	Connect ConnectOptions
	// Baud is the rate to work at once connected (0: stay at 115200).
	// When the link fails at that rate, lower standard rates are tried.
	Baud int
	// NoStub keeps talking to the ROM loader.
	NoStub bool
	// Warn receives notes the user should see (a baud fallback).
	Warn func(msg string)
	// Step, when set, is told each step as it starts ("uploading the
	// flasher stub", "changing to 921600 baud"), for a progress display.
	Step func(what string)
}

// fallbackBauds are tried, highest first, below a rate the link refuses.
var fallbackBauds = []int{2000000, 1500000, 921600, 460800, 230400, 115200}

// Open connects to the chip, starts the flasher stub (unless NoStub) and
// moves to the working baud rate, falling back to lower rates when the
// link gives errors. Most ESP32-family ROMs change rate before the stub
// upload, so that the stub travels fast too (the stub keeps the UART as
// the ROM left it). Not the ESP32: its stub reprograms the UART at start
// for the rate the ROM was asked for, and the rate asked of that ROM is
// scaled to correct its clock estimate (see esp32ROMBaud), so the stub
// would land on the scaled rate; as esptool does, the ESP32 uploads its
// stub at 115200 and the stub changes rate. The ESP8266 ROM cannot change
// rate at all, so its stub does it.
func Open(ctx context.Context, p port.Port, opt SessionOptions) (*Loader, error) {
	warn := opt.Warn
	if warn == nil {
		warn = func(string) {}
	}
	l, err := Connect(ctx, p, opt.Connect)
	if err != nil {
		return nil, err
	}
	target := opt.Baud
	if target <= 0 {
		target = p.BaudRate()
	}
	for {
		err := l.prepare(ctx, opt.NoStub, target, opt.Step)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrLink) {
			return nil, err
		}
		lower := 0
		for _, b := range fallbackBauds {
			if b < target {
				lower = b
				break
			}
		}
		if lower == 0 {
			return nil, err
		}
		warn(fmt.Sprintf("the link gives errors at %d baud; trying %d", target, lower))
		target = lower
		// The chip now listens at a rate we cannot use: start over.
		if err := p.SetBaudRate(port.DefaultBaud); err != nil {
			return nil, err
		}
		if l, err = Connect(ctx, p, opt.Connect); err != nil {
			return nil, err
		}
	}
}

func (l *Loader) prepare(ctx context.Context, noStub bool, baud int, step func(string)) error {
	if step == nil {
		step = func(string) {}
	}
	changing := fmt.Sprintf("changing to %d baud", baud)
	if !noStub && !l.Stub && !l.Chip.IsESP8266() && l.Chip.Key != "esp32" {
		step(changing)
		if err := l.ChangeBaud(ctx, baud); err != nil {
			return err
		}
	}
	if !noStub && !l.Stub {
		step("uploading the flasher stub")
		if err := l.RunStub(ctx); err != nil {
			return err
		}
	}
	if baud != l.Port().BaudRate() && (l.Stub || !l.Chip.IsESP8266()) {
		step(changing)
	}
	err := l.ChangeBaud(ctx, baud)
	if errors.Is(err, ErrUnsupported) {
		return nil // ESP8266 ROM: stays at 115200
	}
	return err
}
