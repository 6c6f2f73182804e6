package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/doctor"
	"github.com/mos-tool/mos/output"
)

func newDoctorCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Find what keeps this machine from flashing a board, and how to fix it",
		Long: "Check the things that stop a first flash: permission on the port (dialout/uucp\n" +
			"group, mos's udev rule), ModemManager or brltty taking the port, another program\n" +
			"holding it, a USB-UART bridge without a driver, a board behind a bus-powered hub,\n" +
			"and, with --port, the baud of the boot log (the board is reset). Inside the mos\n" +
			"source tree it also checks the Go, Node.js, npm and git versions.\n\n" +
			"Each problem comes with the command that fixes it. The exit code is 1 when a\n" +
			"problem is found, 0 when there are only warnings.",
		Example: "  mos doctor\n  mos doctor --port /dev/ttyUSB0\n  mos doctor --json | jq '.result.findings[] | select(.status == \"problem\")'",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := doctor.Run(cmd.Context(), a.doctorEnv(a.opts.Port))
			res := doctorResult{rep}
			if err != nil {
				return output.WithResult(err, res)
			}
			if n := rep.Problems(); n > 0 {
				return output.WithResult(&doctor.ProblemsFound{N: n}, res)
			}
			return a.out.Print(res)
		},
	}
}

type doctorResult struct{ r *doctor.Report }

func (d doctorResult) Data() any {
	return struct {
		Problems int              `json:"problems"`
		Findings []doctor.Finding `json:"findings"`
	}{d.r.Problems(), d.r.Findings}
}

var doctorMarks = map[doctor.Status]string{
	doctor.OK: "ok  ", doctor.Problem: "FAIL", doctor.Warning: "warn", doctor.Info: "info", doctor.Skipped: "skip",
}

func (d doctorResult) Text() string {
	var b strings.Builder
	for _, f := range d.r.Findings {
		subj := ""
		if f.Subject != "" {
			subj = f.Subject + ": "
		}
		fmt.Fprintf(&b, "[%s] %s%s\n", doctorMarks[f.Status], subj, f.Summary)
		if f.Detail != "" && f.Status != doctor.OK {
			fmt.Fprintf(&b, "       %s\n", f.Detail)
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "       fix: %s\n", f.Fix)
		}
	}
	return b.String()
}
