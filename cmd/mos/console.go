package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/charmbracelet/x/term"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/console"
	"github.com/mos-tool/mos/console/crash"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/port/share"
)

type consoleOptions struct {
	ports      []string
	scrollback int
	timestamps string
	filter     string
	filterRe   string
	rpc        bool
	hex        bool
	control    bool
	ending     string
	logFile    string
	elf        string
	plain      bool
	chip       string
}

// elfAnnotator turns crash reports in the console into function, file and
// line from the firmware's ELF (console/crash), under the line that
// carries the addresses.
type elfAnnotator struct{ d *crash.Decoder }

func (a elfAnnotator) Decode(line string) (string, bool) {
	notes := a.d.Annotate(line)
	return strings.Join(notes, "\n"), len(notes) > 0
}

func newELFAnnotator(path string) (console.LineAnnotator, error) {
	d, err := crash.Open(path)
	if err != nil {
		return nil, err
	}
	return elfAnnotator{d}, nil
}

// lendingOpener opens the console's ports directly (the console never
// borrows from an endpoint, not even its own after a reconnect) and offers
// each to other mos commands through a local endpoint (port/share): a
// command for the same port then goes through the console, which notes
// who had the line and what was done. A port that cannot be offered is
// still shown, with a note saying other commands will find it busy.
func lendingOpener(ports []string, sess *atomic.Pointer[console.Session]) console.Opener {
	devOf := func(addr string) int {
		for i, a := range ports {
			if a == addr {
				return i
			}
		}
		return -1
	}
	note := func(dev int, text string) {
		if s := sess.Load(); s != nil {
			s.Note(dev, text)
		}
	}
	return func(ctx context.Context, addr string, baud int) (port.Port, error) {
		p, err := port.OpenDirect(ctx, addr, baud)
		if err != nil {
			return nil, err
		}
		dev := devOf(addr)
		l, err := share.Offer(ctx, p, share.Hooks{
			OnBorrow: func(b share.Borrower) { note(dev, b.String()+" has the port; the console waits") },
			OnReturn: func(sum share.Summary) { note(dev, sum.String()) },
			OnRefuse: func(b share.Borrower, reason string) { note(dev, "refused "+b.String()+": "+reason) },
		})
		if err != nil {
			note(dev, "other mos commands cannot use this port while the console runs: "+err.Error())
			return p, nil
		}
		return l.Port(), nil
	}
}

func newConsoleCmd(a *app) *cobra.Command {
	var o consoleOptions
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Show a device's serial console (terminal UI, or plain lines into a pipe)",
		Long: "Stream what the device prints. On a terminal it is a full-screen view with\n" +
			"search, filter, timestamps, hex view, sending and reset keys (press ? for the\n" +
			"list); into a pipe or file it writes plain lines with the same options.\n" +
			"Mongoose OS RPC frames are hidden unless --rpc is given. When the port goes\n" +
			"away (board unplugged, server restarted) the console waits for it and goes on.\n" +
			"Several --port values show several devices, each line tagged with its port.\n" +
			"An ESP8266's ROM prints its boot messages at 74880 baud: with --chip esp8266\n" +
			"the console follows it there and back, so they are legible too.",
		Example: "  mos console --port /dev/ttyUSB0\n" +
			"  mos console -p rfc2217://127.0.0.1:4000 --timestamps delta --log-file boot.log\n" +
			"  mos console -p /dev/ttyUSB0 -p /dev/ttyUSB1 --filter error | tee errors.txt\n" +
			"  mos console -p /dev/ttyUSB0 --chip esp8266",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConsole(cmd.Context(), a, o)
		},
	}
	f := cmd.Flags()
	var def []string
	if p := a.getenv("MOS_PORT"); p != "" {
		def = []string{p}
	}
	// A local --port shadows the global one so that it can be repeated.
	f.StringArrayVarP(&o.ports, "port", "p", def, "device port (repeat for several devices; env MOS_PORT)")
	f.IntVar(&o.scrollback, "scrollback", console.DefaultScrollback, "lines kept for scrolling back and searching")
	f.StringVar(&o.timestamps, "timestamps", "off", "time on each line: off, absolute, start (since start), delta (since the previous line)")
	f.StringVar(&o.filter, "filter", "", "show only lines containing this text (all lower case: any case)")
	f.StringVar(&o.filterRe, "filter-regex", "", "show only lines matching this regular expression")
	f.BoolVar(&o.rpc, "rpc", false, "show Mongoose OS RPC frames pretty-printed instead of hiding them")
	f.BoolVar(&o.hex, "hex", false, "show the raw bytes of each line in hex")
	f.BoolVar(&o.control, "show-control", false, "show control characters and escape codes (^M, ^[)")
	f.StringVar(&o.ending, "line-ending", "crlf", "added to a line sent from the console: crlf, lf, cr, none")
	f.StringVar(&o.logFile, "log-file", "", "also append every line, with date and time, to this file")
	f.StringVar(&o.elf, "elf", "", "firmware ELF file: decode crash backtraces into functions and source lines")
	f.BoolVar(&o.plain, "plain", false, "plain lines even on a terminal")
	f.StringVar(&o.chip, "chip", "", "the board's chip ("+strings.Join(chips.Keys(), ", ")+"): with esp8266 the ROM's boot messages at 74880 baud are shown legibly")
	return cmd
}

func runConsole(ctx context.Context, a *app, o consoleOptions) error {
	usage := func(format string, args ...any) error {
		return &output.UsageError{Err: fmt.Errorf(format, args...), Command: "mos console"}
	}
	if len(o.ports) == 0 {
		// The hints that say "`mos console` shows ..." are printed after
		// another command failed: with one board plugged in, plain
		// `mos console` must reach it.
		p, err := onlyPort(a)
		if err != nil {
			return err
		}
		o.ports = []string{p}
	}
	if a.opts.JSON {
		// --json promises one JSON document; a console is a stream of lines.
		return usage("--json is not supported by the console: it streams lines (use --log-file for a copy)")
	}
	if o.scrollback <= 0 {
		return usage("--scrollback must be positive, not %d", o.scrollback)
	}
	tm, err := console.ParseTimeMode(o.timestamps)
	if err != nil {
		return usage("--timestamps: %v", err)
	}
	end, err := console.ParseLineEnding(o.ending)
	if err != nil {
		return usage("--line-ending: %v", err)
	}
	if o.filter != "" && o.filterRe != "" {
		return usage("--filter and --filter-regex cannot be used together")
	}
	flt, err := console.NewFilter(o.filter+o.filterRe, o.filterRe != "")
	if err != nil {
		return usage("--filter-regex: %v", err)
	}
	var sess atomic.Pointer[console.Session] // set once made; the lending hooks note into it
	if o.chip != "" {
		c, err := chips.ByKey(o.chip)
		if err != nil {
			return usage("--chip: %v", err)
		}
		o.chip = c.Key
	}
	cfg := console.Config{Ports: o.ports, Baud: a.opts.Baud, Open: lendingOpener(o.ports, &sess), Chip: o.chip}
	if o.elf != "" {
		if _, err := os.Stat(o.elf); err != nil {
			return usage("--elf: %v", err)
		}
		if cfg.Annotator, err = newELFAnnotator(o.elf); err != nil {
			return fmt.Errorf("--elf %s: %w", o.elf, err)
		}
	}
	if o.logFile != "" {
		lf, err := os.OpenFile(o.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("cannot open the log file: %w", err)
		}
		defer lf.Close()
		cfg.LogFile = lf
	}
	opts := console.Options{
		Scrollback: o.scrollback, Time: tm, Filter: flt, ShowRPC: o.rpc,
		Hex: o.hex, Control: o.control, Ending: end, Profile: termenv.Ascii,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := console.NewSession(ctx, cfg)
	if err != nil {
		return err
	}
	sess.Store(s)
	out, isFile := a.stdout.(*os.File)
	tui := !o.plain && isFile && term.IsTerminal(out.Fd()) && term.IsTerminal(os.Stdin.Fd())
	if tui {
		// termenv reads NO_COLOR (Ascii when set), CLICOLOR and TERM.
		opts.Profile = termenv.NewOutput(out).EnvColorProfile()
		err = console.RunTUI(ctx, s, opts, os.Stdin, out)
	} else {
		err = console.Plain(ctx, s, opts, a.stdout, a.stderr)
	}
	cancel()
	s.Wait()
	if err != nil {
		return err
	}
	if err := s.Err(); err != nil {
		return err
	}
	if err := s.LogErr(); err != nil {
		return fmt.Errorf("writing the log file %s: %w", o.logFile, err)
	}
	return nil
}

// onlyPort picks the serial port when exactly one with a USB bridge (or,
// failing that, exactly one at all) is present.
func onlyPort(a *app) (string, error) {
	list, err := a.listPorts()
	if err != nil {
		return "", fmt.Errorf("no --port given, and listing the serial ports failed: %w", err)
	}
	var usb []string
	var all []string
	for _, p := range list {
		all = append(all, p.Name)
		if p.USB {
			usb = append(usb, p.Name)
		}
	}
	switch {
	case len(usb) == 1:
		return usb[0], nil
	case len(usb) == 0 && len(all) == 1:
		return all[0], nil
	case len(all) == 0:
		return "", &output.UsageError{Err: errors.New("no --port given and no serial port found: plug the board in, or give --port (or MOS_PORT)"), Command: "mos console"}
	}
	return "", &output.UsageError{Err: fmt.Errorf("no --port given and several serial ports are present (%s): choose one with --port", strings.Join(all, ", ")), Command: "mos console"}
}
