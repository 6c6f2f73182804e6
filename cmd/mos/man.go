package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd writes one man page per command, generated from the same
// command tree as --help, so the two cannot disagree. Release packages
// ship its output (make release).
func newManCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages of every command into DIR",
		Hidden: true,
		Args:   usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			h := &doc.GenManHeader{Title: "MOS", Section: "1", Source: "mos " + currentVersion().Version, Manual: "mos manual"}
			// The date comes from the build (the commit's date), not the
			// clock, so the same commit gives the same pages.
			root := cmd.Root()
			root.DisableAutoGenTag = true
			if d, err := parseBuildDate(currentVersion().Date); err == nil {
				h.Date = &d
			}
			return doc.GenManTree(root, h, args[0])
		},
	}
}

func parseBuildDate(s string) (t time.Time, err error) { return time.Parse(time.RFC3339, s) }
