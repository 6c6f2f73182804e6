package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
)

// deviceCommands are the commands that talk to the firmware over RPC.
func deviceCommands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newCallCmd(a),
		newInfoCmd(a),
		newRebootCmd(a),
		newConfigCmd(a),
		newConfigGetCmd(a, "config-get"),
		newConfigSetCmd(a, "config-set"),
		newLsCmd(a),
		newGetCmd(a),
		newPutCmd(a),
		newRmCmd(a),
		newWifiCmd(a),
		newProvisionCmd(a),
	}
}

// rpcOptions are the flags of every command that talks RPC.
type rpcOptions struct {
	creds string // --rpc-creds USER:PASS or @FILE
}

func (o *rpcOptions) addFlags(cmd *cobra.Command, a *app) {
	cmd.Flags().StringVar(&o.creds, "rpc-creds", a.getenv("MOS_RPC_CREDS"),
		"USER:PASS (or @FILE holding it) for firmware that requires RPC authentication (env MOS_RPC_CREDS)")
}

// credentials splits --rpc-creds into a user name and a password.
func (o rpcOptions) credentials() (user, pass string, err error) {
	s := o.creds
	if s == "" {
		return "", "", nil
	}
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", "", output.Usagef("--rpc-creds: %w", err)
		}
		s = strings.TrimSpace(string(b))
	}
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return "", "", output.Usagef("--rpc-creds: want USER:PASS")
	}
	return user, pass, nil
}

// session is an RPC connection to the board and the port under it.
type session struct {
	*provision.Client
	port port.Port
}

func (s *session) Close() {
	s.Client.Close()
	s.port.Close()
}

// openDevice opens the port without resetting the board and waits for the
// firmware to answer RPC. The firmware's console runs at 115200 unless
// --baud says otherwise.
func openDevice(ctx context.Context, cmd *cobra.Command, a *app, o rpcOptions) (*session, error) {
	user, pass, err := o.credentials()
	if err != nil {
		return nil, err
	}
	p, err := port.Open(ctx, a.opts.Port, a.opts.Baud)
	if err != nil {
		return nil, err
	}
	if err := releaseResetLines(p); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.ResetInputBuffer(); err != nil {
		p.Close()
		return nil, err
	}
	opts := provision.Options{
		Username: user,
		Password: pass,
		Log:      func(line string) { a.out.Debugf("device: %s", line) },
		Debug:    func(msg string) { a.out.Debugf("rpc: %s", msg) },
	}
	if cmd.Flags().Changed("timeout") {
		opts.CallTimeout = a.opts.Timeout
		opts.HandshakeTimeout = a.opts.Timeout
	}
	c, err := provision.Connect(ctx, p, opts)
	if err != nil {
		p.Close()
		return nil, err
	}
	return &session{Client: c, port: p}, nil
}

// releaseResetLines leaves DTR and RTS deasserted, so that the board's
// auto-reset circuit neither resets it nor selects download mode, whatever
// the OS did on open. RTS goes first: the way through (DTR on, RTS off)
// only pulls IO0, which nothing samples while the chip runs, where
// (DTR off, RTS on) would hold EN low and reset it.
func releaseResetLines(p port.Port) error {
	for _, set := range []func(bool) error{p.SetRTS, p.SetDTR} {
		if err := set(false); err != nil && !errors.Is(err, port.ErrNoControlLines) {
			return err
		}
	}
	return nil
}

// withDevice runs f on a connected session and closes it after.
func withDevice(cmd *cobra.Command, a *app, o rpcOptions, f func(ctx context.Context, s *session) error) error {
	ctx := cmd.Context()
	s, err := openDevice(ctx, cmd, a, o)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(ctx, s)
}

func newCallCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "call METHOD [JSON]",
		Short: "Call an RPC method on the firmware and print its result",
		Long: "Call an RPC method of the firmware with optional JSON parameters and print the\n" +
			"result as JSON. Methods that are safe to repeat (Sys.GetInfo, Config.Get, FS.List,\n" +
			"...) are sent again when a reply is lost; others are sent once.",
		Example: "  mos call Sys.GetInfo\n" +
			"  mos call Config.Get '{\"key\": \"device.id\"}'\n" +
			"  mos call RPC.List",
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var params any
			if len(args) == 2 {
				if !json.Valid([]byte(args[1])) {
					return usageErr(cmd, fmt.Errorf("parameters %q are not valid JSON", args[1]))
				}
				params = json.RawMessage(args[1])
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				var res json.RawMessage
				if err := s.Call(ctx, args[0], params, &res); err != nil {
					return err
				}
				return a.out.Print(jsonResult{res})
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

// jsonResult is a JSON value from the device, shown indented.
type jsonResult struct{ v json.RawMessage }

func (r jsonResult) Data() any {
	if len(r.v) == 0 {
		return nil
	}
	return r.v
}

func (r jsonResult) Text() string {
	var b bytes.Buffer
	if len(r.v) == 0 || json.Indent(&b, r.v, "", "  ") != nil {
		return string(r.v)
	}
	return b.String()
}

func newInfoCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show what the firmware reports about itself (Sys.GetInfo)",
		Long: "Ask the firmware for its system information (Sys.GetInfo): application name\n" +
			"and version, build, architecture, uptime, memory, Wi-Fi state. The board is not\n" +
			"reset.",
		Example: "  mos info --port /dev/ttyUSB0\n" +
			"  mos info --port /dev/ttyUSB0 --json",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				info, err := s.GetInfo(ctx)
				if err != nil {
					return err
				}
				return a.out.Print(infoResult{info})
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

type infoResult struct{ *provision.Info }

func (r infoResult) Data() any { return r.Info }

func (r infoResult) Text() string {
	var b strings.Builder
	row := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "%-9s %s\n", name+":", fmt.Sprintf(format, args...))
	}
	row("App", "%s %s", r.App, r.FWVersion)
	if r.FWID != "" {
		row("Build", "%s", r.FWID)
	}
	row("ID", "%s", r.ID)
	row("Arch", "%s", r.Arch)
	row("MAC", "%s", formatMAC(r.MAC))
	row("Uptime", "%v", time.Duration(r.Uptime)*time.Second)
	row("RAM", "%d of %d bytes free (lowest %d)", r.RAMFree, r.RAMSize, r.RAMMinFree)
	if r.FSSize > 0 {
		row("Files", "%d of %d bytes free", r.FSFree, r.FSSize)
	}
	if w := r.WiFi; w != nil {
		s := w.Status
		if w.SSID != "" {
			s += fmt.Sprintf(", network %q", w.SSID)
		}
		if w.STAIP != "" {
			s += ", IP " + w.STAIP
		}
		if w.APIP != "" {
			s += ", access point " + w.APIP
		}
		row("Wi-Fi", "%s", s)
	}
	return b.String()
}

// formatMAC prints a MAC the way chip-info (and esptool) do: lowercase
// hex pairs joined by colons, whatever form the firmware reports.
func formatMAC(m string) string {
	m = strings.ToLower(strings.NewReplacer(":", "", "-", "").Replace(m))
	if len(m) != 12 {
		return m
	}
	var parts []string
	for i := 0; i < 12; i += 2 {
		parts = append(parts, m[i:i+2])
	}
	return strings.Join(parts, ":")
}

func newRebootCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "reboot",
		Short: "Restart the firmware and wait until it answers again",
		Long: "Ask the firmware to restart (Sys.Reboot) and wait until it answers RPC again,\n" +
			"so the next command finds it running. The reset lines are not used.",
		Example: "  mos reboot --port /dev/ttyUSB0",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				start := time.Now()
				if err := s.Reboot(ctx); err != nil {
					return err
				}
				return a.out.Print(rebootResult{Rebooted: true, Seconds: time.Since(start).Seconds()})
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

type rebootResult struct {
	Rebooted bool    `json:"rebooted"`
	Seconds  float64 `json:"seconds"`
}

func (r rebootResult) Data() any { return r }
func (r rebootResult) Text() string {
	return fmt.Sprintf("rebooted; the firmware answered again after %.1f s", r.Seconds)
}
