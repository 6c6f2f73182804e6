package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd writes man pages generated from the command tree, so they
// say exactly what --help says (`make man` runs it).
func newManCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write the man pages of mos and every command into DIR",
		Long: "Write one man page (section 1) per command, generated from the same\n" +
			"descriptions, examples and flags as --help, into DIR (created if missing).\n" +
			"Packagers install them under share/man/man1.",
		Example: "  mos man ./man\n" +
			"  man -l ./man/mos-flash.1",
		Args: usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", dir, err)
			}
			if err := writeManPages(cmd.Root(), dir); err != nil {
				return err
			}
			a.out.Infof("Man pages written to %s", dir)
			return nil
		},
	}
}

// writeManPages renders the man pages of root and its subcommands. The
// header carries no date, so the same sources give the same files.
func writeManPages(root *cobra.Command, dir string) error {
	root.DisableAutoGenTag = true
	v := currentVersion()
	hdr := &doc.GenManHeader{Section: "1", Source: "mos " + v.Version, Manual: "mos manual"}
	// The commit's date, not today's: the same commit gives the same pages.
	// Without one, cobra uses SOURCE_DATE_EPOCH or the current time.
	if t, err := time.Parse(time.RFC3339, v.Date); err == nil {
		hdr.Date = &t
	}
	var toMan func(c *cobra.Command)
	toMan = func(c *cobra.Command) {
		c.Long = manText(c.Long)
		for _, sub := range c.Commands() {
			toMan(sub)
		}
	}
	toMan(root)
	if err := doc.GenManTree(root, hdr, dir); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	// GenManTree leaves out the help topics; they are pages of their own,
	// in section 7 (overviews) as man-pages(7) files such pages.
	topicHdr := *hdr
	topicHdr.Section = "7"
	for _, c := range root.Commands() {
		if !c.IsAdditionalHelpTopicCommand() {
			continue
		}
		name := filepath.Join(dir, "mos-"+c.Name()+".7")
		f, err := os.Create(name)
		if err != nil {
			return fmt.Errorf("writing man pages: %w", err)
		}
		h := topicHdr
		err = doc.GenMan(c, &h, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

// manText turns help text into the Markdown cobra's generator reads, so
// the page shows exactly what --help shows: a fenced block is set as it
// is written, without Markdown taking `code`, <tags> or # as formatting
// and without roff refilling lines that were laid out by hand.
func manText(s string) string {
	if strings.TrimSpace(s) == "" {
		return s
	}
	return "```\n" + s + "\n```"
}
