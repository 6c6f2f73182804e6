package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the environment variable that may give a flag's value: the
// original mos read MOS_<FLAG> for every flag (MOS_PORT, MOS_BAUD,
// MOS_FLASH_MODE, ...), dashes turned into underscores.
func envName(flag string) string {
	return "MOS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of cmd that the command line did not set from
// its MOS_<FLAG> variable, so the command line always wins. It walks the
// flags cobra parsed for this command (its own and the inherited ones), so
// commands added later get the same behaviour without any wiring.
func applyEnv(cmd *cobra.Command, getenv func(string) string) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		if serr := cmd.Flags().Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment variable %s=%q: %w", envName(f.Name), v, serr)
		}
	})
	return err
}
