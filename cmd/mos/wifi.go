package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/provision"
)

// wifiTimeout is how long `mos wifi` waits by default: a reboot plus the
// firmware's own 15 s connect timeout, with room to spare.
const wifiTimeout = 30 * time.Second

func newWifiCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "wifi SSID [PASS]",
		Short: "Put the device on a Wi-Fi network and wait until it has an IP address",
		Long: "Configure the device's Wi-Fi station (and turn its access point off), save,\n" +
			"reboot, and wait until it gets an IP address. A wrong password and a network\n" +
			"that is not found are told apart, with their own exit codes (11 and 12).",
		Example: "  mos wifi HomeNet 'my password'\n" +
			"  mos wifi OpenCafe",
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ssid, pass := args[0], ""
			if len(args) == 2 {
				pass = args[1]
			}
			timeout := wifiTimeout
			if cmd.Flags().Changed("timeout") {
				timeout = a.opts.Timeout
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				// The RPC client is one way to join; Improv over serial
				// will be another behind the same interface.
				var joiner provision.WiFiJoiner = s.Client
				res, err := joiner.JoinWiFi(ctx, ssid, pass, provision.WiFiOptions{
					Timeout: timeout,
					Status:  func(msg string) { a.out.Infof("%s", msg) },
				})
				if err != nil {
					return err
				}
				return a.out.Print(wifiResult{SSID: res.SSID, IP: res.IP, Seconds: res.Elapsed.Seconds()})
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
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
