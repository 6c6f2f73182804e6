// Package bootbaud keeps a chip's ROM boot messages legible when the ROM
// speaks at another rate than the application. The ESP8266's ROM prints
// its banner ("ets Jan  8 2013,rst cause:2, boot mode:(3,6)") and its load
// lines at 74880 baud (its 26 MHz crystal with the divider the ROM assumes
// for 40 MHz, esptool's ESP8266ROM notes), while applications run their
// console at 115200: at 115200 the ROM's text is garbage, at 74880 the
// application's is.
//
// A Follower watches the bytes a console reads and moves the port between
// the two rates:
//
//   - Reset: the console is about to reset the board itself (a reset key):
//     the port goes to the ROM's rate first, so the whole boot text is read
//     legibly;
//   - the bytes turn into garbage: the application started and set its
//     own rate, the port goes back to it. The ROM's last line ("csum
//     0x..") is not the end: the ESP8266 SDK prints its own lines at 74880
//     before the application sets up the UART. The first bytes of the
//     application's first line are read at the wrong rate (the Change has
//     Lost set);
//   - at the application's rate, a run of garbage (bytes no log line
//     holds): the board reset by itself (crash, watchdog, button) and its
//     ROM is talking; the port goes to the ROM's rate at once, so the rest
//     of the boot text (the load lines) is legible. What arrived before
//     the switch cannot be recovered (bytes sampled at a wrong rate are not
//     the data), and the Change says so.
//
// A console feeds every chunk it reads to Observe, in order, and shows a
// note for each Change. New returns nil when the two rates are the same
// (no Follower needed); a nil *Follower's methods do nothing.
package bootbaud

import (
	"fmt"

	"github.com/mos-tool/mos/chips"
)

// Port is what a Follower needs of a serial port (port.Port has it).
type Port interface {
	SetBaudRate(baud int) error
	BaudRate() int
}

// ROMBaud is the rate a chip's ROM prints its boot messages at with the
// usual crystal, by chip key: the chip's BootBaud in package chips (74880
// on the ESP8266, whose 26 MHz crystal gives 115200 x 26/40; 115200 on the
// ESP32 family with 40 MHz crystals), and 115200 for a chip not known.
func ROMBaud(chip string) int {
	if c, err := chips.ByKey(chip); err == nil {
		return c.BootBaud
	}
	return 115200
}

// Change is a move of the port to another rate.
type Change struct {
	Baud   int
	Reason string // for the console's note: "ROM boot messages at 74880 baud"
	// Lost: bytes before the switch were read at the wrong rate (shown
	// as they came, but they are not the device's text).
	Lost bool
}

// Follower moves a port between the ROM's and the application's rate.
type Follower struct {
	p        Port
	app, rom int
	inROM    bool
	junk     int // garbage bytes in a row
}

// junkRun is the garbage detector's threshold. A line at the wrong rate
// gives mostly bytes outside printable ASCII (a 74880 frame sampled at
// 115200 spans 1.5 receiver frames: framing errors, 0x00, 0x80 and up); a
// few in a row never come from a Mongoose OS or ESP-IDF log. An
// application that prints binary makes the Follower try the ROM's rate,
// where its next bytes are garbage again and the port goes back: a few
// bytes are lost each time, so a console offers to turn the Follower off.
const junkRun = 4

// New returns a Follower for a port whose application runs at appBaud on a
// chip whose ROM speaks at romBaud, or nil when the rates are the same.
// The port is expected at appBaud.
func New(p Port, appBaud, romBaud int) *Follower {
	if appBaud == romBaud || appBaud <= 0 || romBaud <= 0 {
		return nil
	}
	return &Follower{p: p, app: appBaud, rom: romBaud}
}

// Reset moves the port to the ROM's rate; call it just before the
// console resets the board.
func (f *Follower) Reset() error {
	if f == nil {
		return nil
	}
	f.inROM, f.junk = true, 0
	return f.set(f.rom)
}

func (f *Follower) set(baud int) error {
	if f.p.BaudRate() == baud {
		return nil
	}
	if err := f.p.SetBaudRate(baud); err != nil {
		return fmt.Errorf("setting %d baud for the boot messages: %w", baud, err)
	}
	return nil
}

// Observe takes the next bytes read from the port and moves the port when
// they say the other side changed rate. It returns the change made (nil:
// none).
func (f *Follower) Observe(p []byte) (*Change, error) {
	if f == nil || len(p) == 0 {
		return nil, nil
	}
	for _, b := range p {
		if legible(b) {
			f.junk = 0
		} else {
			f.junk++
		}
		if f.inROM {
			if f.junk >= junkRun {
				// the application is talking at its own rate
				return f.toApp()
			}
			continue
		}
		if f.junk >= junkRun {
			f.inROM, f.junk = true, 0
			if err := f.set(f.rom); err != nil {
				return nil, err
			}
			return &Change{Baud: f.rom, Reason: fmt.Sprintf("ROM boot messages at %d baud", f.rom), Lost: true}, nil
		}
	}
	return nil, nil
}

func (f *Follower) toApp() (*Change, error) {
	f.inROM, f.junk = false, 0
	if err := f.set(f.app); err != nil {
		return nil, err
	}
	return &Change{Baud: f.app, Reason: fmt.Sprintf("application at %d baud", f.app), Lost: true}, nil
}

// InROM reports whether the port is at the ROM's rate now.
func (f *Follower) InROM() bool { return f != nil && f.inROM }

// legible: printable ASCII, tab, CR, LF, and the ANSI escape that colours
// ESP-IDF's log lines.
func legible(b byte) bool {
	return b >= 0x20 && b < 0x7f || b == '\r' || b == '\n' || b == '\t' || b == 0x1b
}
