package main

import (
	"io"
	"os"
	"slices"
	"time"

	"github.com/mos-tool/mos/doctor"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// globalOptions are the persistent flags every command shares. They are
// fields, not package variables, so each test builds its own command tree.
type globalOptions struct {
	Port    string        // --port, -p; default $MOS_PORT
	Baud    int           // --baud (old mos: --baud-rate)
	Timeout time.Duration // --timeout: how long a device operation may take
	JSON    bool          // --json
	Verbose bool          // -v, --verbose
}

// app is what commands depend on: the parsed global options, the printer,
// and the few outside-world functions tests replace.
type app struct {
	opts   globalOptions
	out    *output.Printer // set in the root's PersistentPreRunE
	stdout io.Writer
	stderr io.Writer

	getenv    func(string) string         // environment, for MOS_* defaults
	listPorts func() ([]port.Info, error) // serial port enumeration

	doctorEnv func(portAddr string) doctor.Env // the machine mos doctor examines
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdout:    stdout,
		stderr:    stderr,
		getenv:    os.Getenv,
		listPorts: port.List,
		doctorEnv: doctor.Local,
	}
}

// printerFor returns the printer for reporting a final error. When flag
// parsing failed before PersistentPreRunE ran there is none yet; the error
// is then still reported as JSON if --json appears among the arguments.
func (a *app) printerFor(args []string) *output.Printer {
	if a.out != nil {
		return a.out
	}
	if i := slices.Index(args, "--"); i >= 0 {
		args = args[:i]
	}
	json := a.opts.JSON || slices.Contains(args, "--json") || slices.Contains(args, "--json=true")
	return output.New(a.stdout, a.stderr, json, a.opts.Verbose)
}
