package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// resetOptions are the flags of every command that talks to the ROM loader.
type resetOptions struct {
	reset string
	after string
}

func (o *resetOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.reset, "reset", "auto",
		"how to enter download mode: auto, classic, usb-jtag, none, or a sequence such as 'D0|R1|W100|D1|R0|W50|D0'")
	cmd.Flags().StringVar(&o.after, "after", "hard-reset", "what to do when done: hard-reset (run the app) or stay (in the loader)")
}

func (o *resetOptions) validate() error {
	if o.after != "hard-reset" && o.after != "stay" {
		return fmt.Errorf("--after must be hard-reset or stay, not %q", o.after)
	}
	if _, err := flasher.ResetPlan(o.reset, false); err != nil {
		return err
	}
	return nil
}

func newChipInfoCmd(a *app) *cobra.Command {
	var o resetOptions
	cmd := &cobra.Command{
		Use:   "chip-info",
		Short: "Detect the chip and show its MAC and flash",
		Long: "Reset the board into its ROM loader and report what it is: the chip and its\n" +
			"revision, features (as esptool lists them), crystal, MAC address, flash ID and\n" +
			"size, and the security flags. Nothing is written. --after stay leaves the chip\n" +
			"in the loader for the next command.",
		Example: "  mos chip-info --port /dev/ttyUSB0\n" +
			"  mos chip-info --port sim://esp32c3 --json\n" +
			"  mos chip-info --port socket://192.168.1.20:3333 --reset none",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return usageErr(cmd, err)
			}
			return runChipInfo(cmd.Context(), a, o)
		},
	}
	o.addFlags(cmd)
	return cmd
}

type chipInfoResult struct {
	*flasher.Info
	Features []string `json:"features"`
}

func (r chipInfoResult) Data() any { return r }
func (r chipInfoResult) Text() string {
	size := "unknown"
	if r.FlashSize > 0 {
		size = fmt.Sprintf("%d MiB", r.FlashSize>>20)
		if r.FlashSize < 1<<20 {
			size = fmt.Sprintf("%d KiB", r.FlashSize>>10)
		}
	}
	chip := r.Chip
	if r.Revision != "" {
		chip += " (revision " + r.Revision + ")"
	}
	s := fmt.Sprintf("Chip:       %s\nFeatures:   %s\nCrystal:    %d MHz\nMAC:        %s\nFlash ID:   %s\nFlash size: %s",
		chip, strings.Join(r.Features, ", "), r.CrystalMHz, formatMAC(r.MAC), r.FlashID, size)
	if sec := r.Security; sec != nil {
		s += fmt.Sprintf("\nSecurity:   secure boot %s, flash encryption %s, secure download mode %s, JTAG %s",
			onOff(sec.SecureBoot), onOff(sec.FlashEncryption), onOff(sec.SecureDownloadMode), map[bool]string{true: "disabled", false: "enabled"}[sec.JTAGDisabled])
	}
	return s
}

// connectLoader opens the port and gets the chip's ROM loader to answer.
func connectLoader(ctx context.Context, a *app, o resetOptions) (port.Port, *flasher.Loader, error) {
	p, err := port.Open(ctx, a.opts.Port, port.DefaultBaud)
	if err != nil {
		return nil, nil, err
	}
	var l *flasher.Loader
	copts := sessionOptions(a, o.reset, 0, true).Connect
	handReset(a, p, &copts)
	err = a.out.Task("connecting", "to "+p.Name(), func(func(string, string)) error {
		var err error
		l, err = flasher.Connect(ctx, p, copts)
		return err
	})
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, l, nil
}

// finish leaves the chip as --after says and closes the port.
func finish(ctx context.Context, p port.Port, o resetOptions) error {
	defer p.Close()
	if o.after == "hard-reset" {
		if err := flasher.HardReset().Run(ctx, p); err != nil && !isNoLines(err) {
			return err
		}
	}
	return nil
}

func runChipInfo(ctx context.Context, a *app, o resetOptions) error {
	p, l, err := connectLoader(ctx, a, o)
	if err != nil {
		return err
	}
	info, err := l.ReadInfo(ctx)
	if err != nil {
		p.Close()
		return err
	}
	features, err := chipFeatures(ctx, l)
	if err != nil {
		p.Close()
		return err
	}
	if err := finish(ctx, p, o); err != nil {
		return err
	}
	return a.out.Print(chipInfoResult{info, features})
}

func usageErr(cmd *cobra.Command, err error) error {
	return &output.UsageError{Err: err, Command: cmd.CommandPath()}
}

// isNoLines: a port without DTR/RTS cannot reset the board; that is
// reported when connecting, not an error when leaving.
func isNoLines(err error) bool { return errors.Is(err, port.ErrNoControlLines) }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// uartClkDivMax is the largest divider UART_CLKDIV holds: its integer part
// is 20 bits wide (ESP32 Technical Reference Manual, UART_CLKDIV_REG; the
// same on the ESP8266 and the later chips), so the slowest rate a loader
// can switch its UART to is the UART clock divided by it.
const uartClkDivMax = 1<<20 - 1

// minLoaderBaud is the slowest rate every chip's loader can be moved to.
func minLoaderBaud() int {
	lowest := 0
	for _, c := range chips.All() {
		lowest = max(lowest, (c.APBMHz*1000000+uartClkDivMax-1)/uartClkDivMax)
	}
	return lowest
}

// checkLoaderBaud refuses a --baud the ROM loader and the stub cannot run at.
func checkLoaderBaud(baud int) error {
	if m := minLoaderBaud(); baud < m {
		return fmt.Errorf("--baud %d is below %d, the slowest rate the chips' UART can be set to "+
			"(its divider holds 20 bits); the loaders work at 115200 and above, give e.g. --baud 115200", baud, m)
	}
	return nil
}
