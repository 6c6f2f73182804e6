package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
)

// bootBauds are the rates the ROM boot log is printed at: 115200 on the
// ESP32 family, 74880 on the ESP8266 (its ROM runs the UART from a 26 MHz
// crystal with the divider meant for 40 MHz: 115200 * 26/40 = 74880;
// esptool's documentation, "Boot log"). extraBauds are tried only when
// neither gives readable text, to name the rate a modified board uses.
var (
	bootBauds  = []int{115200, 74880}
	extraBauds = []int{57600, 76800, 230400, 9600}
)

// bootMarkers are strings the ROMs print first after a reset: "ets " (the
// ESP8266's and ESP32's "ets Jun  8 2016 00:22:57"), "rst:"/"rst cause:",
// "boot:" and "ESP-ROM:" (newer chips).
var bootMarkers = []string{"ets ", "rst:", "rst cause:", "boot:", "ESP-ROM:"}

// readable reports whether what arrived after a reset is text: a known ROM
// marker, or at least 16 bytes of which 9 in 10 are printable ASCII. Bytes
// read at the wrong baud are mostly outside that range.
func readable(b []byte) bool {
	s := string(b)
	for _, m := range bootMarkers {
		if strings.Contains(s, m) {
			return true
		}
	}
	if len(b) < 16 {
		return false
	}
	ok := 0
	for _, c := range b {
		if c == '\r' || c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f) {
			ok++
		}
	}
	return ok*10 >= len(b)*9
}

// listenAfterReset resets the board into its application (flasher's hard
// reset: an EN pulse with IO0 released) at baud and collects what it prints
// for d.
func listenAfterReset(ctx context.Context, p port.Port, baud int, d time.Duration) ([]byte, error) {
	if err := p.SetBaudRate(baud); err != nil {
		return nil, err
	}
	// What the board prints before the reset (the tail of a boot log, a
	// running firmware's log) is not an answer to it: wait for a pause of
	// 100 ms, at most 500 ms, and throw it away.
	buf := make([]byte, 512)
	quietBy := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(quietBy) {
		_ = p.SetReadTimeout(100 * time.Millisecond)
		n, err := p.Read(buf)
		if n == 0 && errors.Is(err, port.ErrTimeout) {
			break
		}
		if err != nil && !errors.Is(err, port.ErrTimeout) {
			return nil, err
		}
	}
	if err := p.ResetInputBuffer(); err != nil {
		return nil, err
	}
	if err := flasher.HardReset().Run(ctx, p); err != nil {
		return nil, err
	}
	var got []byte
	end := time.Now().Add(d)
	for time.Now().Before(end) && len(got) < 4096 {
		if err := ctx.Err(); err != nil {
			return got, err
		}
		_ = p.SetReadTimeout(min(100*time.Millisecond, time.Until(end)+time.Millisecond))
		n, err := p.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && !errors.Is(err, port.ErrTimeout) {
			return got, err
		}
	}
	return got, nil
}

func checkBootBaud(ctx context.Context, r *Report, env Env) error {
	if env.Port == "" {
		r.add(Finding{Check: "boot-baud", Status: Skipped,
			Summary: "boot log baud not checked: give --port to check it (the board is reset)"})
		return nil
	}
	listen := env.Listen
	if listen <= 0 {
		listen = 1500 * time.Millisecond
	}
	p, err := env.Open(ctx, env.Port, bootBauds[0])
	if err != nil {
		f := Finding{Check: "boot-baud", Subject: env.Port, Status: Problem,
			Summary: "could not open the port: " + err.Error()}
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			f.Fix = h.Hint()
		}
		r.add(f)
		return ctx.Err()
	}
	defer p.Close()
	// The lines are left released afterwards so the board keeps running.
	defer func() { _ = p.SetDTR(false); _ = p.SetRTS(false) }()

	var ok []int
	received := 0
	try := func(bauds []int) error {
		for _, b := range bauds {
			got, err := listenAfterReset(ctx, p, b, listen)
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
				if errors.Is(err, port.ErrNoControlLines) {
					r.add(Finding{Check: "boot-baud", Subject: env.Port, Status: Skipped,
						Summary: "boot log baud not checked: this port has no DTR/RTS lines to reset the board"})
					return errStop
				}
				f := Finding{Check: "boot-baud", Subject: env.Port, Status: Problem,
					Summary: fmt.Sprintf("the port failed after a reset at %d baud: %v", b, err)}
				var pe *port.Error
				if errors.As(err, &pe) && pe.Kind == port.KindDisconnected {
					f.Summary = "the board dropped off USB when it was reset"
					f.Detail = "a reset that disconnects the bridge usually means the board browns out: a weak hub, a long or thin cable"
					f.Fix = "plug the board into the computer directly or into a powered hub, with a short cable"
				}
				r.add(f)
				return errStop
			}
			received += len(got)
			if readable(got) {
				ok = append(ok, b)
			}
		}
		return nil
	}
	if err := try(bootBauds); err != nil {
		if err == errStop {
			return nil
		}
		return err
	}
	if len(ok) == 0 && received > 0 {
		if err := try(extraBauds); err != nil {
			if err == errStop {
				return nil
			}
			return err
		}
	}
	f := Finding{Check: "boot-baud", Subject: env.Port}
	switch {
	case received == 0:
		f.Status = Problem
		f.Summary = "the board printed nothing after a reset"
		f.Detail = "reset by RTS (EN) with DTR (IO0) released, then listened at 115200 and 74880 baud"
		f.Fix = "check that the board is powered and its TX reaches the bridge; boards without the auto-reset circuit need the RST button pressed"
	case len(ok) == 0:
		f.Status = Problem
		f.Summary = "the boot log is not readable at 115200 or 74880 baud (nor at 57600, 76800, 230400, 9600)"
		f.Detail = "bytes arrived but garbled: a crystal other than the usual 40 MHz (26 MHz on the ESP8266), or noise on the line"
		f.Fix = "check the board's crystal frequency and the cable; find the rate by trying --baud values with a serial terminal"
	case ok[0] == 115200:
		f.Status = OK
		f.Summary = "the boot log is readable at 115200 baud"
	case ok[0] == 74880:
		f.Status = Info
		f.Summary = "the ROM prints its boot log at 74880 baud (the ESP8266 with a 26 MHz crystal)"
		f.Detail = "at 115200 these lines look like garbage; that is expected, not a fault; flashing is unaffected"
		f.Fix = "to read the ROM's lines, open the console at --baud 74880"
	default:
		f.Status = Warning
		f.Summary = fmt.Sprintf("the boot log is readable only at %d baud, an unusual rate", ok[0])
		f.Detail = "the ROM's rate follows the crystal: the board's crystal is not the usual one"
		f.Fix = fmt.Sprintf("use --baud %d for the console; flashing syncs at its own rate", ok[0])
	}
	r.add(f)
	return nil
}

var errStop = errors.New("stop")
