package main

import (
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/port"
)

func newPortsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ports",
		Short: "List the serial ports a board may be on",
		Example: "  mos ports\n" +
			"  mos ports --json",
		Long: "List the local serial ports, with the USB IDs and the USB-UART bridge\n" +
			"when known. Use the name with --port (or set MOS_PORT).",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ports, err := a.listPorts()
			if err != nil {
				return err
			}
			if len(ports) == 0 {
				a.out.Warnf("no serial ports found: is the board plugged in with a data (not charge-only) cable?")
			}
			return a.out.Print(portsResult(ports))
		},
	}
}

// portsResult prints as a table, or as a JSON array of port.Info.
type portsResult []port.Info

func (r portsResult) Data() any {
	if r == nil {
		return []port.Info{} // [] rather than null when there are no ports
	}
	return []port.Info(r)
}

func (r portsResult) Text() string {
	if len(r) == 0 {
		return ""
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	tw.Write([]byte("PORT\tVID:PID\tSERIAL\tBRIDGE\n"))
	for _, p := range r {
		ids := "-"
		if p.VID != "" || p.PID != "" {
			ids = p.VID + ":" + p.PID
		}
		tw.Write([]byte(p.Name + "\t" + ids + "\t" + dash(p.SerialNumber) + "\t" + dash(p.Bridge) + "\n"))
	}
	tw.Flush()
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
