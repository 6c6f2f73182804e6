package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

func newSimCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the virtual ESP device",
		Long: "The virtual device emulates a chip's serial ROM loader, flasher stub, reset\n" +
			"wiring, SPI flash and boot. In-process it is the port sim://CHIP; `mos sim serve`\n" +
			"makes it reachable over TCP for other tools.",
		Args: usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newSimServeCmd(a))
	return cmd
}

type simServeOptions struct {
	chip      string
	board     string
	listen    string
	listenRaw string
	rawBaud   int
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
		Long: "Serve a virtual device over TCP until interrupted (Ctrl-C).\n\n" +
			"--listen serves RFC 2217 (telnet COM-PORT-OPTION): baud rate and the DTR/RTS\n" +
			"reset lines are carried, so tools reset the board as over a USB bridge, e.g.\n" +
			"  mos --port rfc2217://127.0.0.1:4000 chip-info\n" +
			"--listen-raw serves the UART as a plain byte stream at --raw-baud, without\n" +
			"control lines (socket://). Port 0 picks a free port; the addresses are printed.",
		Example: "  mos sim serve --chip esp32 --listen 127.0.0.1:4000 --flash-file esp32.flash",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSimServe(cmd.Context(), a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.chip, "chip", "esp32", "chip to emulate: "+strings.Join(chips.Keys(), ", "))
	f.StringVar(&o.board, "board", string(sim.BoardDevKit), "board wiring: devkit, slow-en, usb-jtag, no-autoreset")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address for RFC 2217 clients (empty: none)")
	f.StringVar(&o.listenRaw, "listen-raw", "", "address for raw TCP clients (empty: none)")
	f.IntVar(&o.rawBaud, "raw-baud", 115200, "baud rate the raw TCP port runs at")
	f.StringVar(&o.flashFile, "flash-file", "", "keep the flash contents in this file across runs")
	f.StringVar(&o.flashSize, "flash-size", "4M", "flash size, 256K to 16M")
	f.BoolVar(&o.fast, "fast", false, "skip modelled wire and flash times (for tests; not realistic)")
	f.BoolVar(&o.download, "download", false, "power on with BOOT held: start in download mode")
	f.StringVar(&o.timing, "flash-timing", "typ", "flash chip timings: typ (datasheet typical) or max (datasheet maxima)")
	return cmd
}

// serveResult is printed once the listeners are up.
type serveResult struct {
	Chip    string `json:"chip"`
	Board   string `json:"board"`
	RFC2217 string `json:"rfc2217,omitempty"`
	Raw     string `json:"raw,omitempty"`
}

func (r serveResult) Data() any { return r }
func (r serveResult) Text() string {
	s := fmt.Sprintf("virtual %s (%s board) serving:\n", r.Chip, r.Board)
	if r.RFC2217 != "" {
		s += "  " + r.RFC2217 + "\n"
	}
	if r.Raw != "" {
		s += "  " + r.Raw + "\n"
	}
	return s + "press Ctrl-C to stop"
}

func runSimServe(ctx context.Context, a *app, o simServeOptions) error {
	chip, err := chips.ByKey(o.chip)
	if err != nil {
		return &output.UsageError{Err: err}
	}
	size, err := sim.ParseSize(o.flashSize)
	if err != nil {
		return &output.UsageError{Err: err}
	}
	timings, err := sim.ParseTimings(o.timing)
	if err != nil {
		return &output.UsageError{Err: err}
	}
	if o.listen == "" && o.listenRaw == "" {
		return output.Usagef("nothing to serve: give --listen or --listen-raw")
	}
	dev, err := sim.New(sim.Config{
		Chip: chip, Board: sim.Board(o.board), FlashSize: size, FlashFile: o.flashFile,
		Fast: o.fast, DownloadAtPowerOn: o.download, Timings: &timings,
		Firmware: demofw.New(),
	})
	if errors.Is(err, sim.ErrFlashFileSize) {
		return output.WithExitCode(output.WithHint(err, "give the --flash-size the file was made with, or another --flash-file"), output.ExitBadInput)
	}
	if err != nil {
		return &output.UsageError{Err: err}
	}
	defer dev.Close()

	res := serveResult{Chip: chip.Name, Board: o.board}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	listen := func(addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	errs := make(chan error, 2)
	if o.listen != "" {
		ln, err := listen(o.listen)
		if err != nil {
			return err
		}
		res.RFC2217 = "rfc2217://" + ln.Addr().String()
		go func() { errs <- dev.ServeRFC2217(ctx, ln) }()
	}
	if o.listenRaw != "" {
		ln, err := listen(o.listenRaw)
		if err != nil {
			return err
		}
		res.Raw = "socket://" + ln.Addr().String()
		go func() { errs <- dev.ServeRaw(ctx, ln, o.rawBaud) }()
	}
	if err := a.out.Print(res); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil // Ctrl-C is how serving ends
	case err := <-errs:
		return err
	}
}
