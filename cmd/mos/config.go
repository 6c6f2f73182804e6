package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/provision"
)

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read or change the firmware's configuration",
		Long: "Read or change the configuration of firmware that speaks Mongoose OS RPC\n" +
			"(Config.Get, Config.Set, Config.Save). Keys are dotted paths into the device's\n" +
			"configuration tree, such as wifi.sta.ssid. The board is not reset.",
		Example: "  mos config get --port /dev/ttyUSB0\n" +
			"  mos config set --port /dev/ttyUSB0 debug.level=3",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newConfigGetCmd(a, "get"), newConfigSetCmd(a, "set"))
	return cmd
}

// newConfigGetCmd builds `config get`, also registered as the old mos
// command `config-get`.
func newConfigGetCmd(a *app, name string) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   name + " [KEY]",
		Short: "Print the configuration, or the value of one key, as JSON",
		Long: "Print the device's whole configuration as JSON, or the value of one key. A key\n" +
			"that does not exist is refused with the closest names the device has.",
		Example: "  mos config get\n" +
			"  mos config get wifi.sta.ssid",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := ""
			if len(args) == 1 {
				key = args[0]
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				v, err := s.ConfigGet(ctx, key)
				if err != nil {
					return err
				}
				return a.out.Print(jsonResult{v})
			})
		},
	}
	if name != "get" {
		cmd.Hidden = true
		cmd.Short = "Same as `mos config get` (the old mos name)"
	}
	o.addFlags(cmd, a)
	return cmd
}

type configSetOptions struct {
	rpcOptions
	noReboot bool
	noSave   bool
}

// newConfigSetCmd builds `config set`, also registered as the old mos
// command `config-set`.
func newConfigSetCmd(a *app, name string) *cobra.Command {
	var o configSetOptions
	cmd := &cobra.Command{
		Use:   name + " KEY=VALUE...",
		Short: "Change configuration values, save them and reboot",
		Long: "Change configuration values. Each key must exist on the device, and each value\n" +
			"is read as its key's type (true/false, an integer, a number or text): a\n" +
			"mistake is reported before anything is sent. Only values that change are sent,\n" +
			"and the device reboots to apply them. They are on trial until the device\n" +
			"answers again (and, for Wi-Fi station settings, is online), then saved; a\n" +
			"change that fails is rolled back to the previous settings. A value the\n" +
			"firmware rejects changes nothing. --no-reboot saves without a trial.",
		Example: "  mos config set mqtt.enable=true mqtt.server=broker.example.com:8883\n" +
			"  mos config set debug.level=3 --no-reboot",
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			values := map[string]any{}
			for _, arg := range args {
				k, v, ok := strings.Cut(arg, "=")
				if !ok || k == "" {
					return usageErr(cmd, fmt.Errorf("%q: want KEY=VALUE", arg))
				}
				values[k] = v
			}
			opts := provision.SetOptions{Save: !o.noSave, Reboot: !o.noReboot && !o.noSave}
			return withDevice(cmd, a, o.rpcOptions, func(ctx context.Context, s *session) error {
				res, err := s.ConfigSet(ctx, values, opts)
				if err != nil {
					return err
				}
				return a.out.Print(configSetResult{res})
			})
		},
	}
	if name != "set" {
		cmd.Hidden = true
		cmd.Short = "Same as `mos config set` (the old mos name)"
	}
	f := cmd.Flags()
	f.BoolVar(&o.noReboot, "no-reboot", false, "save without rebooting (some settings apply only after a reboot)")
	f.BoolVar(&o.noSave, "no-save", false, "apply until the next reboot only: neither save nor reboot")
	o.addFlags(cmd, a)
	return cmd
}

type configSetResult struct{ *provision.SetResult }

func (r configSetResult) Data() any { return r.SetResult }

func (r configSetResult) Text() string {
	if len(r.Changed) == 0 {
		return "nothing to change: the device already has these values"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(r.Changed)) {
		v, _ := json.Marshal(r.Changed[k])
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	switch {
	case r.Rebooted:
		b.WriteString("tried after a reboot and saved")
	case r.Saved:
		b.WriteString("saved (not rebooted: some settings apply only after a reboot)")
	default:
		b.WriteString("applied, not saved: lost at the next reboot")
	}
	return b.String()
}
