package flasher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mos-tool/mos/port"
)

// A ResetStep is one action of a reset sequence.
type ResetStep struct {
	Line  byte          // 'D' (DTR), 'R' (RTS), or 0 for a wait
	Level bool          // line asserted
	Wait  time.Duration // for waits
}

// ResetSequence is a named list of line changes and waits.
//
// The sequence language (--reset SEQ) is steps joined by '|':
//
//	D0, D1   set DTR off / on
//	R0, R1   set RTS off / on
//	W<ms>    wait, in milliseconds (W100); "W0.1s" for seconds also works
//
// On the classic auto-reset circuit DTR drives IO0 and RTS drives EN, both
// inverted: asserting a line pulls its pin low, asserting both does nothing.
type ResetSequence struct {
	Name  string
	Steps []ResetStep
}

func (s ResetSequence) String() string {
	var parts []string
	for _, st := range s.Steps {
		switch st.Line {
		case 'D', 'R':
			v := "0"
			if st.Level {
				v = "1"
			}
			parts = append(parts, string(st.Line)+v)
		default:
			parts = append(parts, "W"+strconv.FormatInt(st.Wait.Milliseconds(), 10))
		}
	}
	return strings.Join(parts, "|")
}

// ParseResetSequence reads the sequence language described on ResetSequence.
func ParseResetSequence(s string) (ResetSequence, error) {
	seq := ResetSequence{Name: "custom"}
	for _, part := range strings.Split(s, "|") {
		part = strings.TrimSpace(part)
		if len(part) < 2 {
			return seq, fmt.Errorf("bad reset step %q (use D0, D1, R0, R1, W<ms>)", part)
		}
		switch part[0] {
		case 'D', 'd', 'R', 'r':
			if part[1:] != "0" && part[1:] != "1" {
				return seq, fmt.Errorf("bad reset step %q: a line is set to 0 or 1", part)
			}
			seq.Steps = append(seq.Steps, ResetStep{Line: strings.ToUpper(part[:1])[0], Level: part[1] == '1'})
		case 'W', 'w':
			arg := part[1:]
			var d time.Duration
			if strings.HasSuffix(arg, "s") && !strings.HasSuffix(arg, "ms") {
				f, err := strconv.ParseFloat(strings.TrimSuffix(arg, "s"), 64)
				if err != nil || f < 0 {
					return seq, fmt.Errorf("bad wait %q", part)
				}
				d = time.Duration(f * float64(time.Second))
			} else {
				ms, err := strconv.ParseFloat(strings.TrimSuffix(arg, "ms"), 64)
				if err != nil || ms < 0 {
					return seq, fmt.Errorf("bad wait %q", part)
				}
				d = time.Duration(ms * float64(time.Millisecond))
			}
			if d > 10*time.Second {
				return seq, fmt.Errorf("wait %q is longer than 10 s", part)
			}
			seq.Steps = append(seq.Steps, ResetStep{Wait: d})
		default:
			return seq, fmt.Errorf("bad reset step %q (use D0, D1, R0, R1, W<ms>)", part)
		}
	}
	return seq, nil
}

func mustSeq(name, s string) ResetSequence {
	seq, err := ParseResetSequence(s)
	if err != nil {
		panic(err)
	}
	seq.Name = name
	return seq
}

// ClassicReset enters download mode through the two-transistor circuit:
// hold EN low, then release EN while IO0 is held low, then release IO0
// after delay. DTR is set before RTS when releasing EN so that the
// intermediate state (both asserted) keeps the chip's pins high.
func ClassicReset(delay time.Duration) ResetSequence {
	return mustSeq(fmt.Sprintf("classic(%dms)", delay.Milliseconds()),
		fmt.Sprintf("D0|R1|W100|D1|R0|W%d|D0", delay.Milliseconds()))
}

// USBJTAGReset is the sequence for the USB-Serial/JTAG peripheral of the
// ESP32-C3, -S3, -C6: arm download boot with DTR, reset with RTS, release.
func USBJTAGReset() ResetSequence {
	return mustSeq("usb-jtag", "R0|D0|W100|D1|R0|W100|R1|D0|R1|W100|R0|D0")
}

// HardReset resets the chip into its application: an RTS pulse with DTR
// released.
func HardReset() ResetSequence {
	return mustSeq("hard-reset", "D0|R1|W100|R0")
}

// Run performs the sequence on p.
func (s ResetSequence) Run(ctx context.Context, p port.Port) error {
	for _, st := range s.Steps {
		var err error
		switch st.Line {
		case 'D':
			err = p.SetDTR(st.Level)
		case 'R':
			err = p.SetRTS(st.Level)
		default:
			t := time.NewTimer(st.Wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ResetMode selects how Connect resets the chip.
type ResetMode string

const (
	ResetAuto    ResetMode = "auto"     // try the fitting sequences with growing delays
	ResetClassic ResetMode = "classic"  // two-transistor circuit only
	ResetUSBJTAG ResetMode = "usb-jtag" // USB-Serial/JTAG only
	ResetNone    ResetMode = "none"     // the chip is already in download mode
)

// ResetPlan returns the sequences to try, in order, for a mode or a custom
// sequence string.
func ResetPlan(mode string, usbJTAG bool) ([]ResetSequence, error) {
	switch ResetMode(mode) {
	case "", ResetAuto:
		plan := []ResetSequence{ClassicReset(50 * time.Millisecond), ClassicReset(550 * time.Millisecond)}
		if usbJTAG {
			plan = append([]ResetSequence{USBJTAGReset()}, plan...)
		}
		return plan, nil
	case ResetClassic:
		return []ResetSequence{ClassicReset(50 * time.Millisecond), ClassicReset(550 * time.Millisecond)}, nil
	case ResetUSBJTAG:
		return []ResetSequence{USBJTAGReset()}, nil
	case ResetNone:
		return nil, nil
	}
	seq, err := ParseResetSequence(mode)
	if err != nil {
		return nil, fmt.Errorf("--reset: %w (or use auto, classic, usb-jtag, none)", err)
	}
	return []ResetSequence{seq}, nil
}

// errNoLines reports that the port could not drive the reset lines.
func noLines(err error) bool { return errors.Is(err, port.ErrNoControlLines) }
