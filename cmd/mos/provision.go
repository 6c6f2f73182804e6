package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	firmwareimages "github.com/mos-tool/mos/firmware-images"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
)

type provisionOptions struct {
	rpcOptions
	reset     string
	ssid      string
	pass      string
	sets      []string
	force     bool
	eraseData bool
	noFlash   bool
	demo      bool
	cloud     provisionCloudOptions // --cloud mqtt|aws and its flags
}

func newProvisionCmd(a *app) *cobra.Command {
	var o provisionOptions
	cmd := &cobra.Command{
		Use:   "provision [BUNDLE.zip]",
		Short: "Take a board from blank to configured: flash, boot, Wi-Fi, settings, verify",
		Long: "One command from a blank board to a configured device:\n" +
			"  1. flash the firmware bundle, writing only what differs and keeping the board's\n" +
			"     data partitions (files, config) unless --erase-data; without a bundle, the\n" +
			"     embedded demo firmware, on the virtual device (sim://) only unless --demo;\n" +
			"  2. boot it and wait until it answers RPC;\n" +
			"  3. apply settings (--set key=value ...), saved;\n" +
			"  4. join Wi-Fi (--wifi-ssid/--wifi-pass) and wait for an IP address;\n" +
			"  5. with --cloud mqtt|aws: the device's key and certificate, registration with the\n" +
			"     broker or AWS IoT, and a wait until the device reports it is connected;\n" +
			"  6. verify with Sys.GetInfo and print a summary.\n" +
			"Steps with nothing to do are skipped, so a second run is quick.",
		Example: "  mos --port /dev/ttyUSB0 provision fw.zip --wifi-ssid HomeNet --wifi-pass secret\n" +
			"  mos --port sim://esp32 provision --wifi-ssid mos-demo-net --wifi-pass demo-pass-1234",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := flasher.ResetPlan(o.reset, false); err != nil {
				return usageErr(cmd, err)
			}
			if o.pass != "" && o.ssid == "" {
				return usageErr(cmd, fmt.Errorf("--wifi-pass needs --wifi-ssid"))
			}
			if o.ssid != "" {
				if err := provision.CheckWiFi(o.ssid, o.pass); err != nil {
					return usageErr(cmd, err)
				}
			}
			if err := o.cloud.check(cmd); err != nil {
				return usageErr(cmd, err)
			}
			values, err := parseSets(o.sets)
			if err != nil {
				return usageErr(cmd, err)
			}
			if err := o.checkFirmware(cmd, a.opts.Port, args); err != nil {
				return err
			}
			return runProvision(cmd, a, o, args, values)
		},
	}
	o.rpcOptions.addFlags(cmd, a)
	f := cmd.Flags()
	f.StringVar(&o.reset, "reset", "auto", "how to enter download mode (see mos flash --help)")
	f.StringVar(&o.ssid, "wifi-ssid", "", "Wi-Fi network to join")
	f.StringVar(&o.pass, "wifi-pass", "", "Wi-Fi password (empty for an open network)")
	f.StringArrayVar(&o.sets, "set", nil, "configuration KEY=VALUE to apply (repeatable)")
	f.BoolVar(&o.force, "force", false, "rewrite all of the firmware even where the flash already holds it")
	f.BoolVar(&o.eraseData, "erase-data", false, "also write the bundle's data partitions (wipes files and config)")
	f.BoolVar(&o.noFlash, "no-flash", false, "skip flashing: the board already runs the firmware")
	o.cloud.addFlags(cmd, a)
	f.BoolVar(&o.demo, "demo", false, "flash the demo firmware (made for the virtual device) even to a port other than sim://")
	return cmd
}

// checkFirmware refuses, before the port is opened, to put the embedded
// demo firmware on anything but the in-process virtual device unless
// --demo asks for it: the demo's code is not real ESP code, and on a board
// it would replace the user's firmware with one that cannot boot.
func (o *provisionOptions) checkFirmware(cmd *cobra.Command, portName string, args []string) error {
	switch {
	case o.demo && len(args) > 0:
		return usageErr(cmd, errors.New("name a bundle or give --demo, not both"))
	case o.demo && o.noFlash:
		return usageErr(cmd, errors.New("--demo flashes the demo firmware, --no-flash flashes nothing: give one of them"))
	case len(args) > 0 || o.noFlash || o.demo || isVirtualPort(portName):
		return nil
	case portName == "": // no port at all: opening it says so
		return nil
	}
	return output.WithHint(output.WithExitCode(
		fmt.Errorf("no firmware bundle named: the embedded demo firmware runs only on the virtual device (sim://); "+
			"on %s it would replace the board's firmware with one that cannot boot", portName),
		output.ExitUsage),
		"name your firmware: `mos provision BUNDLE.zip ...`; --no-flash if the board runs it already; "+
			"--demo if you really want the demo firmware on this port")
}

// isVirtualPort reports whether the port is the in-process virtual device.
// A virtual device served over the network (`mos sim serve`) is not: from
// here it looks like any board.
func isVirtualPort(name string) bool { return strings.HasPrefix(name, "sim://") }

func parseSets(sets []string) (map[string]any, error) {
	values := map[string]any{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want KEY=VALUE", s)
		}
		values[k] = v
	}
	return values, nil
}

// provisionStep is one line of the summary.
type provisionStep struct {
	Step    string  `json:"step"`
	Status  string  `json:"status"` // done, skipped
	Detail  string  `json:"detail,omitempty"`
	Seconds float64 `json:"seconds"`
}

type provisionResult struct {
	Port    string          `json:"port"`
	Chip    string          `json:"chip,omitempty"`
	Steps   []provisionStep `json:"steps"`
	Device  *provision.Info `json:"device,omitempty"`
	Seconds float64         `json:"seconds"`
	// Complete is false in the partial result of a run that failed.
	Complete bool `json:"complete"`
}

func (r provisionResult) Data() any { return r }

func (r provisionResult) Text() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%.1f s\t%s\n", s.Step, s.Status, s.Seconds, s.Detail)
	}
	tw.Flush()
	if d := r.Device; d != nil {
		fmt.Fprintf(&b, "device %s: %s %s on %s", d.ID, d.App, d.FWVersion, d.Arch)
		if w := d.WiFi; w != nil && w.STAIP != "" {
			fmt.Fprintf(&b, ", Wi-Fi %q, IP %s", w.SSID, w.STAIP)
		}
		fmt.Fprintf(&b, "\n")
	}
	if !r.Complete {
		fmt.Fprintf(&b, "INCOMPLETE: stopped after %.1f s", r.Seconds)
		return b.String()
	}
	fmt.Fprintf(&b, "provisioned in %.1f s", r.Seconds)
	return b.String()
}

func runProvision(cmd *cobra.Command, a *app, o provisionOptions, args []string, values map[string]any) error {
	ctx := cmd.Context()
	start := time.Now()
	res := provisionResult{Port: a.opts.Port}
	step := func(name string, f func() (status, detail string, err error)) error {
		t := time.Now()
		a.out.Infof("%s...", name)
		status, detail, err := f()
		if err != nil {
			// What was done so far is reported with the error.
			partial := res
			partial.Steps = append(slices.Clone(res.Steps), provisionStep{Step: name, Status: "failed", Seconds: time.Since(t).Seconds()})
			partial.Seconds = time.Since(start).Seconds()
			return output.WithResult(err, partial)
		}
		res.Steps = append(res.Steps, provisionStep{Step: name, Status: status, Detail: detail, Seconds: time.Since(t).Seconds()})
		return nil
	}

	// A named bundle is checked before the board is touched.
	var bundle *fwbundle.Bundle
	if len(args) == 1 {
		var err error
		if bundle, err = fwbundle.ParseInputs(args); err != nil {
			return err
		}
	}
	p, err := port.Open(ctx, a.opts.Port, port.DefaultBaud)
	if err != nil {
		return err
	}
	defer p.Close()

	if !o.noFlash {
		if err := step("flash", func() (string, string, error) {
			return provisionFlash(ctx, a, p, o, bundle, &res)
		}); err != nil {
			return err
		}
	}

	var client *provision.Client
	if err := step("boot", func() (string, string, error) {
		if err := p.SetBaudRate(port.DefaultBaud); err != nil {
			return "", "", err
		}
		if err := releaseResetLines(p); err != nil {
			return "", "", err
		}
		client, err = provision.Connect(ctx, p, provision.Options{
			HandshakeTimeout: 20 * time.Second, // a boot, its log and the firmware's init
			Log:              func(line string) { a.out.Debugf("device: %s", line) },
			Debug:            func(msg string) { a.out.Debugf("rpc: %s", msg) },
		})
		if err != nil {
			return "", "", err
		}
		return "done", "firmware answers RPC", nil
	}); err != nil {
		return err
	}
	defer client.Close()

	// Settings first: a reboot they need comes before Wi-Fi is checked,
	// which then waits for the connection the reboot interrupted.
	if len(values) > 0 {
		if err := step("config", func() (string, string, error) {
			r, err := client.ConfigSet(ctx, values, provision.SetOptions{Save: true, Reboot: true})
			if err != nil {
				return "", "", err
			}
			if len(r.Changed) == 0 {
				return "skipped", "already set", nil
			}
			return "done", plural(len(r.Changed), "value", "values") + " saved", nil
		}); err != nil {
			return err
		}
	}
	if o.ssid != "" {
		if err := step("wifi", func() (string, string, error) {
			return provisionWiFi(ctx, a, client, o.ssid, o.pass)
		}); err != nil {
			return err
		}
	}
	if o.cloud.kind != "" {
		if err := step("cloud", func() (string, string, error) {
			return provisionCloud(ctx, a, client, o.cloud)
		}); err != nil {
			return err
		}
	}
	if err := step("verify", func() (string, string, error) {
		info, err := client.GetInfo(ctx)
		if err != nil {
			return "", "", err
		}
		res.Device = info
		if o.ssid != "" && (info.WiFi == nil || info.WiFi.Status != "got ip" || info.WiFi.SSID != o.ssid) {
			return "", "", fmt.Errorf("verification failed: the device reports Wi-Fi %+v, not connected to %q", info.WiFi, o.ssid)
		}
		return "done", fmt.Sprintf("%s %s, id %s", info.App, info.FWVersion, info.ID), nil
	}); err != nil {
		return output.WithExitCode(err, output.ExitVerifyFailed)
	}
	res.Seconds = time.Since(start).Seconds()
	res.Complete = true
	return a.out.Print(res)
}

// provisionFlash flashes the firmware (skipping what is on flash already)
// and hard-resets the board into it.
func provisionFlash(ctx context.Context, a *app, p port.Port, o provisionOptions, bundle *fwbundle.Bundle, res *provisionResult) (string, string, error) {
	l, err := openLoader(ctx, a, p, sessionOptions(a, o.reset, fastBaud, false))
	if err != nil {
		return "", "", err
	}
	res.Chip = l.Chip.Name
	if bundle == nil {
		if bundle, err = firmwareimages.Demo(l.Chip.Key); err != nil {
			return "", "", output.WithExitCode(err, output.ExitUsage)
		}
	}
	// The board's data partitions hold its files and saved config:
	// provisioning keeps them unless asked to start afresh.
	plan, err := planFlash(ctx, a, l, l.Chip, bundle, fwbundle.PlanOptions{KeepData: !o.eraseData})
	if err != nil {
		return "", "", err
	}
	announceData(a, plan, func(string) string { return "as --erase-data asks" })
	regions := planRegions(plan)
	reports, err := l.WriteRegions(ctx, regions, flasher.WriteOptions{Force: o.force, Progress: writeProgress(a),
		Warn: func(m string) { a.out.Warnf("%s", m) }})
	if err != nil {
		return "", "", err
	}
	if err := flasher.HardReset().Run(ctx, p); err != nil && !isNoLines(err) {
		return "", "", err
	}
	written := 0
	for _, r := range reports {
		written += r.BytesWritten
	}
	name := bundle.Source
	if bundle.Manifest != nil {
		name = bundle.Manifest.Name + " " + bundle.Manifest.Version
	}
	var kept []string
	for _, k := range plan.Kept {
		kept = append(kept, k.Name)
	}
	keptNote := ""
	if len(kept) > 0 {
		keptNote = "; the board's data kept (" + strings.Join(kept, ", ") + ")"
	}
	if written == 0 {
		return "skipped", name + " already on flash (verified)" + keptNote, nil
	}
	return "done", fmt.Sprintf("%s: %d bytes written and verified%s", name, written, keptNote), nil
}

// provisionWiFi joins the network unless the device is configured for it
// and gets an IP address by itself (the second run).
func provisionWiFi(ctx context.Context, a *app, c *provision.Client, ssid, pass string) (string, string, error) {
	raw, err := c.ConfigGet(ctx, "wifi.sta")
	if err != nil {
		return "", "", err
	}
	var sta struct {
		Enable bool   `json:"enable"`
		SSID   string `json:"ssid"`
		Pass   string `json:"pass"`
	}
	if err := json.Unmarshal(raw, &sta); err != nil {
		return "", "", fmt.Errorf("Config.Get wifi.sta: %w", err)
	}
	if sta.Enable && sta.SSID == ssid && sta.Pass == pass {
		// configured already: it connects on its own after the boot
		poll := time.NewTicker(300 * time.Millisecond)
		defer poll.Stop()
		deadline := time.Now().Add(wifiTimeout)
		for time.Now().Before(deadline) {
			info, err := c.GetInfo(ctx)
			if err != nil {
				return "", "", err
			}
			if w := info.WiFi; w != nil && w.Status == "got ip" && w.SSID == ssid {
				return "skipped", fmt.Sprintf("already configured; IP %s", w.STAIP), nil
			}
			select {
			case <-poll.C:
			case <-ctx.Done():
				return "", "", ctx.Err()
			}
		}
		a.out.Warnf("configured for %q but not connected: joining again", ssid)
	}
	r, err := c.JoinWiFi(ctx, ssid, pass, provision.WiFiOptions{
		Timeout: wifiTimeout,
		Status:  func(msg string) { a.out.Debugf("%s", msg) },
	})
	if err != nil {
		return "", "", err
	}
	return "done", fmt.Sprintf("joined %q, IP %s", r.SSID, r.IP), nil
}

// plural is "1 value", "2 values".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
