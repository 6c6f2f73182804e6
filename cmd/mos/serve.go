package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/serve"
)

// serveOptions are the flags `mos serve` and `mos sim serve` share.
type serveOptions struct {
	listen     string
	listenRaw  string
	rawBaud    int
	plain      bool
	resetDelay time.Duration
}

func (o *serveOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address for RFC 2217 clients (empty: none; 0.0.0.0:PORT to share on the network)")
	f.StringVar(&o.listenRaw, "listen-raw", "", "address for raw TCP clients (empty: none)")
	f.IntVar(&o.rawBaud, "raw-baud", 115200, "baud rate the raw TCP port runs at")
	f.BoolVar(&o.plain, "plain", false, "pass DTR/RTS changes through as they arrive, like ser2net, instead of playing ESP reset sequences here")
	f.DurationVar(&o.resetDelay, "reset-delay", serve.DefaultResetDelay, "how long IO0 stays low after EN is released in a download-mode reset (longer if the client releases DTR later)")
}

func (o *serveOptions) validate() error {
	if o.listen == "" && o.listenRaw == "" {
		return output.Usagef("nothing to serve: give --listen or --listen-raw")
	}
	if o.rawBaud <= 0 {
		return output.Usagef("--raw-baud must be positive, not %d", o.rawBaud)
	}
	if o.resetDelay <= 0 || o.resetDelay > 5*time.Second {
		return output.Usagef("--reset-delay must be more than 0 and at most 5s, not %v", o.resetDelay)
	}
	return nil
}

func newServeCmd(a *app) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Share a serial port over RFC 2217 (and raw TCP), with ESP reset handling",
		Long: "Serve the port given with --port (a USB serial device, rfc2217://, sim://CHIP)\n" +
			"over TCP until interrupted (Ctrl-C), one client at a time; others are refused\n" +
			"with a message while one is connected.\n\n" +
			"--listen serves RFC 2217: baud rate changes, purges and the DTR/RTS lines are\n" +
			"carried. Over a network each line change arrives one round trip after the\n" +
			"last, too late for a board's auto-reset circuit, so by default the server\n" +
			"plays the reset itself, as Espressif's esp_rfc2217_server does: DTR asserted\n" +
			"starts a download-mode reset, RTS released a hard reset. --plain passes each\n" +
			"change through instead. Clients:\n" +
			"  mos --port rfc2217://HOST:PORT flash fw.zip\n" +
			"  esptool --port 'rfc2217://HOST:PORT?ign_set_control' flash_id\n" +
			"--listen-raw serves the UART as a plain byte stream at --raw-baud, without\n" +
			"control lines (socket://). Port 0 picks a free port; the addresses are printed.",
		Example: "  mos serve --port /dev/ttyUSB0 --listen 0.0.0.0:4000\n" +
			"  mos serve --port sim://esp32 --listen 127.0.0.1:4000",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if a.opts.Port == "" {
				return output.Usagef("no port to serve: give --port (or set MOS_PORT)")
			}
			return runServe(cmd.Context(), a, a.opts.Port, o, serveResult{Port: a.opts.Port})
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// serveResult is printed once the listeners are up.
type serveResult struct {
	Port    string `json:"port"`
	Chip    string `json:"chip,omitempty"`  // sim serve
	Board   string `json:"board,omitempty"` // sim serve
	Reset   string `json:"reset"`           // "esp" or "plain"
	RFC2217 string `json:"rfc2217,omitempty"`
	Raw     string `json:"raw,omitempty"`
}

func (r serveResult) Data() any { return r }
func (r serveResult) Text() string {
	var s string
	if r.Chip != "" {
		s = fmt.Sprintf("virtual %s (%s board) serving:\n", r.Chip, r.Board)
	} else {
		s = fmt.Sprintf("%s serving:\n", r.Port)
	}
	if r.RFC2217 != "" {
		how := "resets played here for esptool, esptool-js and mos"
		if r.Reset == "plain" {
			how = "DTR/RTS passed through"
		}
		s += "  " + r.RFC2217 + " (" + how + ")\n"
	}
	if r.Raw != "" {
		s += "  " + r.Raw + "\n"
	}
	return s + "press Ctrl-C to stop"
}

// runServe opens addr and serves it until ctx ends or the port fails.
func runServe(ctx context.Context, a *app, addr string, o serveOptions, res serveResult) error {
	p, err := port.Open(ctx, addr, a.opts.Baud)
	if err != nil {
		return err
	}
	defer p.Close()
	srv, err := serve.New(p, serve.Options{
		Plain:      o.plain,
		ResetDelay: o.resetDelay,
		Log:        func(msg string) { a.out.Infof("%s", msg) },
		Debug:      func(msg string) { a.out.Debugf("%s", msg) },
	})
	if err != nil {
		return fmt.Errorf("preparing %s for serving: %w", addr, err)
	}
	res.Reset = "esp"
	if o.plain {
		res.Reset = "plain"
	}

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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	n := 0
	if o.listen != "" {
		ln, err := listen(o.listen)
		if err != nil {
			return err
		}
		res.RFC2217 = "rfc2217://" + ln.Addr().String()
		n++
		go func() { errs <- srv.ServeRFC2217(ctx, ln) }()
	}
	if o.listenRaw != "" {
		ln, err := listen(o.listenRaw)
		if err != nil {
			cancel()
			for range n {
				<-errs
			}
			return err
		}
		res.Raw = "socket://" + ln.Addr().String()
		n++
		go func() { errs <- srv.ServeRaw(ctx, ln, o.rawBaud) }()
	}
	printErr := a.out.Print(res)
	if printErr != nil {
		cancel()
	}
	// Ctrl-C (ctx) ends serving without an error; a failing port or
	// listener ends it with one. Every listener is stopped and its
	// session has left the port released before the port is closed.
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	if first == nil {
		first = printErr
	}
	return first
}
