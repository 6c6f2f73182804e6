package flasher

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The ESP32 ROM sets its UART from a crystal estimate made against its
// uncalibrated 8 MHz oscillator; the virtual ESP32 models that drift
// (sim option ck8m-drift, in percent). A host that asks the ROM for the
// rate it wants gets a UART off by the drift, beyond what a receiver
// tolerates; mos scales the rate as esptool's ESP32ROM.change_baud does.
func TestESP32ROMBaudDrift(t *testing.T) {
	ctx := context.Background()
	for _, drift := range []string{"-6", "-4", "4", "6"} {
		t.Run("uncorrected/"+drift, func(t *testing.T) {
			p := openSim(t, "sim://esp32?fast=1&ck8m-drift="+drift)
			l, err := Connect(ctx, p, ConnectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// what a host that does not correct sends: the rate it wants
			if _, err := l.Command(ctx, OpChangeBaud, le(921600, 0), 0, DefaultTimeout); err != nil {
				t.Fatal(err)
			}
			if err := p.SetBaudRate(921600); err != nil {
				t.Fatal(err)
			}
			l.Flush()
			if err := l.Ping(ctx); !errors.Is(err, ErrLink) {
				t.Fatalf("an uncorrected ROM baud change worked on a device %s%% off: %v", drift, err)
			}
		})
	}
	for _, drift := range []string{"-6", "-4", "0", "4", "6"} {
		t.Run("corrected/"+drift, func(t *testing.T) {
			p := openSim(t, "sim://esp32?fast=1&ck8m-drift="+drift)
			l, err := Connect(ctx, p, ConnectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.ChangeBaud(ctx, 921600); err != nil {
				t.Fatalf("ChangeBaud on a device %s%% off: %v", drift, err)
			}
		})
	}
}

// A whole session at 921600, with and without the stub, on drifting
// ESP32s: no fallback to a lower rate.
func TestSessionOnDriftingESP32(t *testing.T) {
	for _, noStub := range []bool{false, true} {
		for _, drift := range []string{"-5", "5"} {
			t.Run(fmt.Sprintf("nostub=%v/%s", noStub, drift), func(t *testing.T) {
				p := openSim(t, "sim://esp32?fast=1&ck8m-drift="+drift)
				var warned []string
				l, err := Open(context.Background(), p, SessionOptions{Baud: 921600, NoStub: noStub,
					Warn: func(m string) { warned = append(warned, m) }})
				if err != nil {
					t.Fatal(err)
				}
				if l.Stub == noStub {
					t.Fatalf("stub running = %v with NoStub = %v", l.Stub, noStub)
				}
				if p.BaudRate() != 921600 || len(warned) > 0 {
					t.Fatalf("at %d baud, warnings %q", p.BaudRate(), warned)
				}
				if err := l.Ping(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// chip-info's reads leave an ESP32-family ROM with its flash attached, as
// esptool does before touching the flash without its stub: a flash
// command afterwards is answered (the virtual ROM, like the chip, never
// answers one before SPI_ATTACH).
func TestReadInfoAttachesTheFlash(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3"} {
		t.Run(chip, func(t *testing.T) {
			p := openSim(t, "sim://"+chip+"?fast=1")
			ctx := context.Background()
			l, err := Connect(ctx, p, ConnectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.ReadInfo(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Command(ctx, OpSPIFlashMD5, le(0, 0x1000, 0, 0), 0, time.Second); err != nil {
				t.Fatalf("SPI_FLASH_MD5 after ReadInfo: %v", err)
			}
		})
	}
}

// Why the ESP32 uploads its stub before changing rate: the stub
// reprograms the UART for the rate the ROM was asked for, with the real
// clock, so after a corrected ROM change (which asks for a scaled rate)
// the stub's greeting comes at the scaled rate. Exact on an exact
// oscillator, lost on a drifting one.
func TestESP32StubAfterROMBaudChange(t *testing.T) {
	for _, tc := range []struct {
		drift string
		works bool
	}{{"0", true}, {"5", false}} {
		t.Run(tc.drift, func(t *testing.T) {
			p := openSim(t, "sim://esp32?fast=1&ck8m-drift="+tc.drift)
			ctx := context.Background()
			l, err := Connect(ctx, p, ConnectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.ChangeBaud(ctx, 921600); err != nil {
				t.Fatal(err)
			}
			err = l.RunStub(ctx)
			if (err == nil) != tc.works {
				t.Fatalf("stub start after a ROM baud change on a device %s%% off: %v", tc.drift, err)
			}
		})
	}
}
