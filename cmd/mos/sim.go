package main

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

func newSimCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the virtual ESP device",
		Example: "  mos sim serve --chip esp32 --listen 127.0.0.1:4000\n" +
			"  mos chip-info --port rfc2217://127.0.0.1:4000",
		Long: "The virtual device emulates a chip's serial ROM loader, flasher stub, reset\n" +
			"wiring, SPI flash and boot. In-process it is the port sim://CHIP; `mos sim serve`\n" +
			"makes it reachable over TCP for other tools.",
		Args: usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newSimServeCmd(a))
	return cmd
}

type simServeOptions struct {
	serveOptions
	chip      string
	board     string
	flashFile string
	flashSize string
	fast      bool
	download  bool
	timing    string
}

func newSimServeCmd(a *app) *cobra.Command {
	var o simServeOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a virtual device over RFC 2217 and raw TCP",
		Long: "Serve a virtual device over TCP until interrupted (Ctrl-C): the short form of\n" +
			"`mos serve --port sim://CHIP?...`, with the same serving flags (see `mos serve\n" +
			"--help`). By default resets are played by the server as Espressif's\n" +
			"esp_rfc2217_server does, so remote tools reset the board as over a USB bridge:\n" +
			"  mos --port rfc2217://127.0.0.1:4000 chip-info\n" +
			"  esptool --port 'rfc2217://127.0.0.1:4000?ign_set_control' chip_id\n" +
			"--plain passes each DTR/RTS change through, like ser2net.",
		Example: "  mos sim serve --chip esp32 --listen 127.0.0.1:4000 --flash-file esp32.flash",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSimServe(cmd.Context(), a, o)
		},
	}
	f := cmd.Flags()
	o.addFlags(f)
	f.StringVar(&o.chip, "chip", "esp32", "chip to emulate: "+strings.Join(chips.Keys(), ", "))
	f.StringVar(&o.board, "board", string(sim.BoardDevKit), "board wiring: devkit, slow-en, usb-jtag, no-autoreset")
	f.StringVar(&o.flashFile, "flash-file", "", "keep the flash contents in this file across runs")
	f.StringVar(&o.flashSize, "flash-size", "4M", "flash size, 256K to 16M")
	f.BoolVar(&o.fast, "fast", false, "skip modelled wire and flash times (for tests; not realistic)")
	f.BoolVar(&o.download, "download", false, "power on with BOOT held: start in download mode")
	f.StringVar(&o.timing, "flash-timing", "typ", "flash chip timings: typ (datasheet typical) or max (datasheet maxima)")
	return cmd
}

func runSimServe(ctx context.Context, a *app, o simServeOptions) error {
	chip, err := chips.ByKey(o.chip)
	if err != nil {
		return &output.UsageError{Err: err}
	}
	if err := o.validate(); err != nil {
		return err
	}
	addr, err := simAddress(o)
	if err != nil {
		return &output.UsageError{Err: err}
	}
	err = runServe(ctx, a, addr, o.serveOptions, serveResult{Port: addr, Chip: chip.Name, Board: o.board})
	if errors.Is(err, sim.ErrFlashFileSize) {
		return output.WithExitCode(output.WithHint(err, "give the --flash-size the file was made with, or another --flash-file"), output.ExitBadInput)
	}
	return err
}

// simAddress spells the flags as the sim:// address `mos serve --port`
// would take, after checking them, so that a bad flag is a usage error.
func simAddress(o simServeOptions) (string, error) {
	if _, err := sim.ParseSize(o.flashSize); err != nil {
		return "", err
	}
	if _, err := sim.ParseTimings(o.timing); err != nil {
		return "", err
	}
	q := url.Values{}
	q.Set("board", o.board)
	q.Set("flash", o.flashSize)
	q.Set("timing", o.timing)
	if o.flashFile != "" {
		q.Set("flash-file", o.flashFile)
	}
	if o.fast {
		q.Set("fast", "1")
	}
	if o.download {
		q.Set("download", "1")
	}
	addr := "sim://" + o.chip + "?" + q.Encode()
	if _, _, err := sim.ParseURL(addr); err != nil {
		return "", err
	}
	return addr, nil
}
