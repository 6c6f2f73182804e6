package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/port"
)

// borrowContext names the command to a `mos console` that lends the port
// (port/share) and reports, as information, that the port goes through it.
func borrowContext(ctx context.Context, cmd *cobra.Command, a *app) context.Context {
	return port.WithBorrower(ctx, port.Borrower{
		Who:    cmd.CommandPath(),
		Notify: func(msg string) { a.out.Infof("%s", msg) },
	})
}
