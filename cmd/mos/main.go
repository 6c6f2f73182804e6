// Command mos takes an ESP8266/ESP32 board from blank to a connected IoT
// device: flashing, provisioning, cloud registration and a console.
//
// This file is the only place that exits the process; commands return
// errors, which run maps to an exit code (see output.ExitCode).
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mos-tool/mos/output"
)

func main() {
	// Ctrl-C and SIGTERM cancel the context, so every command unwinds
	// through its defers (the port closed, the terminal restored) instead
	// of dying mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default behaviour: a second
		// Ctrl-C kills a command that is slow to notice the cancellation.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one mos command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, newApp(stdout, stderr), args)
}

// execute is run with a prepared app, so tests can swap its dependencies.
func execute(ctx context.Context, a *app, args []string) int {
	root := newRootCmd(a)
	// After the whole tree is built, so that every command, whoever adds
	// it, gets the same flag completions.
	addCompletions(root, a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return output.ExitOK
	}
	// A usage mistake found inside a command (output.Usagef) does not know
	// which command it is in: point its hint at that command's help, not
	// at the whole of `mos --help`.
	var ue *output.UsageError
	if errors.As(err, &ue) && ue.Command == "" && cmd != nil {
		ue.Command = cmd.CommandPath()
	}
	if ctx.Err() != nil {
		// The user interrupted: whatever failed next (a closed port, a
		// short read) is a consequence, not the cause. What the command
		// got done before that (a partial result) is still reported.
		err = output.WithResult(context.Cause(ctx), output.ResultOf(err))
	}
	a.printerFor(args).PrintError(err)
	return output.ExitCode(err)
}
