package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
)

// Shell completion: cobra's `mos completion bash|zsh|fish|powershell`
// scripts ask the binary (`mos __complete ...`) for values, so the
// completions below are computed at the moment the user presses Tab.

// completionTimeout bounds asking a device for its configuration keys: a
// Tab press must never hang on a board that does not answer.
const completionTimeout = 3 * time.Second

// flagValueCompletions gives the values of flags that appear on several
// commands, by flag name. addCompletions registers them on every command
// that has such a flag, so commands added later get them without wiring.
func flagValueCompletions(a *app) map[string]cobra.CompletionFunc {
	fixed := func(vals ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp)
	}
	return map[string]cobra.CompletionFunc{
		"port":       a.completePorts,
		"chip":       fixed(chips.Keys()...),
		"reset":      fixed("auto\tDTR/RTS reset, USB-Serial/JTAG when detected", "classic\tDTR/RTS reset of USB-UART boards", "usb-jtag\tUSB-Serial/JTAG reset", "none\tthe board is already in download mode"),
		"after":      fixed("hard-reset\trun the app when done", "stay\tstay in the ROM loader"),
		"flash-mode": fixed("keep", "qio", "qout", "dio", "dout"),
		"flash-freq": fixed("keep", "80m", "40m", "26m", "20m"),
		"flash-size": fixed("keep", "detect", "256K", "512K", "1M", "2M", "4M", "8M", "16M"),
		"baud":       fixed("115200", "230400", "460800", "921600", "1500000", "2000000"),
		"improv":     fixed("auto", "always", "never"),
	}
}

// argCompletions complete the positional arguments of commands, by
// command path. Commands without an entry and without arguments complete
// nothing; others complete file names.
func argCompletions(a *app) map[string]cobra.CompletionFunc {
	return map[string]cobra.CompletionFunc{
		"mos flash":      fileArgs("zip", "json", "bin"),
		"mos provision":  fileArgs("zip"),
		"mos fw info":    fileArgs("zip", "bin", "json"),
		"mos config get": a.completeConfigKeys(""),
		"mos config-get": a.completeConfigKeys(""),
		"mos config set": a.completeConfigKeys("="),
		"mos config-set": a.completeConfigKeys("="),
	}
}

// completionExamples are what cobra's `mos completion SHELL` commands
// lack: how to load the script.
var completionExamples = map[string]string{
	"completion": "  source <(mos completion bash)\n" +
		"  mos completion zsh > \"${fpath[1]}/_mos\"\n" +
		"  mos completion fish > ~/.config/fish/completions/mos.fish\n" +
		"  mos completion powershell | Out-String | Invoke-Expression",
	"bash":       "  source <(mos completion bash)\n  mos completion bash > /etc/bash_completion.d/mos",
	"zsh":        "  mos completion zsh > \"${fpath[1]}/_mos\"",
	"fish":       "  mos completion fish > ~/.config/fish/completions/mos.fish",
	"powershell": "  mos completion powershell | Out-String | Invoke-Expression",
}

// addCompletions walks the whole command tree and attaches value
// completions to every flag named in flagValueCompletions.
func addCompletions(root *cobra.Command, a *app) {
	comps := flagValueCompletions(a)
	args := argCompletions(a)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f, ok := args[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = f
		}
		for name, f := range comps {
			if c.LocalNonPersistentFlags().Lookup(name) != nil || c.PersistentFlags().Lookup(name) != nil {
				// Registered once per flag: a second registration is an error
				// that cobra returns and we can ignore.
				_ = c.RegisterFlagCompletionFunc(name, f)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			c.Long = "Show the help of a command (the same as COMMAND --help), or a help topic:\n" +
				"a page about ports, reset, bundles, exit codes or the virtual device. The\n" +
				"topics are listed at the end of mos --help."
			c.Example = "  mos help flash\n  mos help config set\n  mos help reset"
		}
		if c.Name() != "completion" {
			continue
		}
		c.Example = completionExamples["completion"]
		for _, sh := range c.Commands() {
			sh.Example = completionExamples[sh.Name()]
		}
	}
	walk(root)
}

// completePorts lists the serial ports present and the virtual chips.
func (a *app) completePorts(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	if ports, err := a.listPorts(); err == nil {
		for _, p := range ports {
			desc := p.Bridge
			if desc == "" {
				desc = p.Product
			}
			out = append(out, cobra.CompletionWithDesc(p.Name, desc))
		}
	}
	for _, k := range chips.Keys() {
		out = append(out, cobra.CompletionWithDesc("sim://"+k, "virtual "+k))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// fileArgs completes file arguments with the given extensions (and
// directories, to walk into).
func fileArgs(exts ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return exts, cobra.ShellCompDirectiveFilterFileExt
	}
}

// completeConfigKeys lists the device's configuration keys when --port
// names a port: it asks the firmware for its configuration (Config.Get),
// within completionTimeout, without resetting the board.
func (a *app) completeConfigKeys(suffix string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := applyEnv(cmd, a.getenv); err != nil || a.opts.Port == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
		defer cancel()
		p, err := port.Open(ctx, a.opts.Port, a.opts.Baud)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer p.Close()
		if releaseResetLines(p) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := provision.Connect(ctx, p, provision.Options{CallTimeout: completionTimeout, HandshakeTimeout: completionTimeout})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer c.Close()
		all, err := c.ConfigKeys(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var keys []string
		for _, k := range all {
			if strings.HasPrefix(k, toComplete) {
				keys = append(keys, k+suffix)
			}
		}
		dir := cobra.ShellCompDirectiveNoFileComp
		if suffix != "" {
			dir |= cobra.ShellCompDirectiveNoSpace
		}
		return keys, dir
	}
}
