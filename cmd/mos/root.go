package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// flagAliases maps old mos flag spellings to current ones, so users'
// scripts keep working; the old names are accepted but not shown in help.
var flagAliases = map[string]string{
	"baud-rate": "baud",
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "mos",
		Short: "Flash, provision and connect ESP8266/ESP32 boards",
		Long: "mos takes an ESP8266/ESP32 board from blank to a connected IoT device:\n" +
			"flashing, provisioning, cloud registration and a serial console.\n\n" +
			"Every flag can also be given in the environment as MOS_<FLAG>: the flag's\n" +
			"name in upper case with dashes turned into underscores (MOS_PORT, MOS_BAUD,\n" +
			"MOS_FLASH_MODE, MOS_RPC_CREDS). A flag on the command line wins over the\n" +
			"environment.\n\n" +
			"No board at hand? Every command works on a virtual one: --port sim://esp32\n" +
			"(see mos help virtual-device).",
		Example: "  mos ports\n" +
			"  mos chip-info --port /dev/ttyUSB0\n" +
			"  mos flash --port /dev/ttyUSB0 firmware.zip\n" +
			"  MOS_PORT=sim://esp32 mos provision --wifi-ssid mos-demo-net --wifi-pass demo-pass-1234",
		// Errors are printed once, by run, through the printer, with a hint
		// instead of cobra's full usage text.
		SilenceUsage:  true,
		SilenceErrors: true,
		// Suggest "ports" for "prots": a transposition is distance 2.
		SuggestionsMinimumDistance: 2,
		Args:                       cobra.ArbitraryArgs,
		// The root runs only when no subcommand matched. Having a RunE here
		// turns an unknown command into a UsageError (exit 2) rather than
		// cobra's untyped error; without arguments it shows help.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownCommand(cmd, args[0])
		},
		// Subcommands must not define their own PersistentPreRunE: cobra
		// would run theirs instead of this one.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnv(cmd, a.getenv); err != nil {
				return &output.UsageError{Err: err, Command: cmd.CommandPath()}
			}
			if err := a.opts.validate(); err != nil {
				return &output.UsageError{Err: err, Command: cmd.CommandPath()}
			}
			a.out = output.New(a.stdout, a.stderr, a.opts.JSON, a.opts.Verbose)
			cmd.SetContext(borrowContext(cmd.Context(), cmd, a))
			return nil
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &output.UsageError{Err: err, Command: cmd.CommandPath()}
	})
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if n, ok := flagAliases[name]; ok {
			name = n
		}
		return pflag.NormalizedName(name)
	})
	a.opts.addFlags(root.PersistentFlags(), a.getenv)

	root.AddCommand(
		newVersionCmd(a),
		newPortsCmd(a),
		newChipInfoCmd(a),
		newFlashCmd(a),
		newFlashReadCmd(a),
		newFlashEraseCmd(a),
		newServeCmd(a),
		newSimCmd(a),
		newFwCmd(a),
		newCreateFwBundleCmd(a),
		newDoctorCmd(a),
		newCACmd(a), newBrokerCmd(a), newCloudCmd(a), newAWSIoTSetupCmd(a),
		newConsoleCmd(a),
	)
	root.AddCommand(deviceCommands(a)...)
	root.AddCommand(atcaCommands(a)...)
	root.AddCommand(newManCmd(a))
	root.AddCommand(helpTopics()...)
	return root
}

func (o *globalOptions) addFlags(fs *pflag.FlagSet, getenv func(string) string) {
	fs.StringVarP(&o.Port, "port", "p", getenv("MOS_PORT"),
		"device port: /dev/ttyUSB0, COM3, rfc2217://HOST:PORT, socket://HOST:PORT, sim://CHIP (env MOS_PORT)")
	fs.IntVar(&o.Baud, "baud", port.DefaultBaud, "serial speed in bits per second")
	fs.DurationVar(&o.Timeout, "timeout", 20*time.Second, "how long to wait for the device before giving up")
	fs.BoolVar(&o.JSON, "json", false, "print the result as one JSON document on stdout")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "print debug messages on stderr")
}

func (o *globalOptions) validate() error {
	if o.Baud <= 0 {
		return fmt.Errorf("--baud must be positive, not %d", o.Baud)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout must not be negative, not %v", o.Timeout)
	}
	return nil
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &output.UsageError{Err: errors.New(msg), Command: cmd.CommandPath()}
}

// usageArgs wraps a cobra argument check so that its complaint is a
// UsageError (exit 2) like a bad flag, not a general failure.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &output.UsageError{Err: err, Command: cmd.CommandPath()}
		}
		return nil
	}
}
