package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
)

// wifiTimeout is how long `mos wifi` waits by default: a reboot plus the
// firmware's own 15 s connect timeout, with room to spare.
const wifiTimeout = 30 * time.Second

func newWifiCmd(a *app) *cobra.Command {
	var o rpcOptions
	var improv string
	cmd := &cobra.Command{
		Use:   "wifi SSID [PASS]",
		Short: "Put the device on a Wi-Fi network and wait until it has an IP address",
		Long: "Configure the device's Wi-Fi station (and turn its access point off), reboot,\n" +
			"and wait until it gets an IP address. The new settings are on trial until then:\n" +
			"when they fail, the device goes back to its previous settings (and network).\n" +
			"A wrong password and a network that is not found are told apart, with their\n" +
			"own exit codes (11 and 12).\n" +
			"Firmware that does not answer RPC but speaks the Improv Wi-Fi serial protocol\n" +
			"(as firmware made for ESP Web Tools does) is provisioned with Improv.",
		Example: "  mos wifi HomeNet 'my password'\n" +
			"  mos wifi OpenCafe",
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if improv != "auto" && improv != "always" && improv != "never" {
				return usageErr(cmd, fmt.Errorf("--improv must be auto, always or never, not %q", improv))
			}
			ssid, pass := args[0], ""
			if len(args) == 2 {
				pass = args[1]
			}
			if err := provision.CheckWiFi(ssid, pass); err != nil {
				return usageErr(cmd, err)
			}
			timeout := wifiTimeout
			if cmd.Flags().Changed("timeout") {
				timeout = a.opts.Timeout
			}
			wopts := provision.WiFiOptions{
				Timeout: timeout,
				Status:  func(msg string) { a.out.Infof("%s", msg) },
			}
			if improv == "always" {
				return wifiImprov(cmd.Context(), a, ssid, pass, wopts)
			}
			err := withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				return joinAndPrint(a, ctx, s.Client, ssid, pass, wopts)
			})
			// Firmware that does not serve RPC may still speak Improv, as
			// firmware made for ESP Web Tools does.
			var na *provision.NoAnswerError
			if improv == "auto" && errors.As(err, &na) {
				if ierr := wifiImprov(cmd.Context(), a, ssid, pass, wopts); !errors.Is(ierr, errNoImprov) {
					return ierr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&improv, "improv", "auto", "use the Improv Wi-Fi serial protocol: auto (when the firmware does not answer RPC), always, never")
	o.addFlags(cmd, a)
	return cmd
}

var errNoImprov = errors.New("the firmware does not speak Improv")

// joinAndPrint joins through any WiFiJoiner (RPC or Improv) and prints
// the result.
func joinAndPrint(a *app, ctx context.Context, j provision.WiFiJoiner, ssid, pass string, o provision.WiFiOptions) error {
	res, err := j.JoinWiFi(ctx, ssid, pass, o)
	if err != nil {
		return err
	}
	return a.out.Print(wifiResult{SSID: res.SSID, IP: res.IP, Seconds: res.Elapsed.Seconds()})
}

// wifiImprov provisions Wi-Fi with the Improv serial protocol.
func wifiImprov(ctx context.Context, a *app, ssid, pass string, o provision.WiFiOptions) error {
	p, err := port.Open(ctx, a.opts.Port, a.opts.Baud)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := releaseResetLines(p); err != nil {
		return err
	}
	im := provision.NewImprov(p, provision.ImprovOptions{Log: func(line string) { a.out.Debugf("device: %s", line) }})
	ok, err := im.Detect(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errNoImprov
	}
	a.out.Infof("the firmware speaks Improv: provisioning with it")
	return joinAndPrint(a, ctx, im, ssid, pass, o)
}

type wifiResult struct {
	SSID    string  `json:"ssid"`
	IP      string  `json:"ip"`
	Seconds float64 `json:"seconds"`
}

func (r wifiResult) Data() any { return r }
func (r wifiResult) Text() string {
	return fmt.Sprintf("connected to %q: IP %s (%.1f s)", r.SSID, r.IP, r.Seconds)
}
