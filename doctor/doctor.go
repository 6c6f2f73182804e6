// Package doctor diagnoses what keeps a board from being flashed on this
// machine: port permissions, programs that grab or hold the port, a USB-UART
// bridge without a driver, a weak hub, a boot log at an unexpected baud, and
// (inside the mos source tree) the development toolchain.
//
// Every check reads the machine through Env: the filesystem as an fs.FS
// rooted at "/", so tests run against fake sysfs, /proc and /dev trees, and
// the serial port through port.Open, so the boot-log check runs against the
// virtual device. The package prints nothing; it returns a Report.
package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/mos-tool/mos/port"
)

// Status is how a check came out.
type Status string

const (
	OK      Status = "ok"      // checked, nothing wrong
	Problem Status = "problem" // will stop a flash: doctor exits non-zero
	Warning Status = "warning" // may cause trouble, or a heuristic
	Info    Status = "info"    // a fact worth knowing
	Skipped Status = "skipped" // could not or need not run here; Detail says why
)

// Finding is the outcome of one check on one subject (a port, a device).
type Finding struct {
	Check   string `json:"check"`             // stable id: "permission", "holder", ...
	Subject string `json:"subject,omitempty"` // what was checked: "/dev/ttyUSB0", "USB 1-1.2"
	Status  Status `json:"status"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"` // what was looked at, and why it matters
	Fix     string `json:"fix,omitempty"`    // the exact thing to do
}

// Report is every finding, in the order the checks ran.
type Report struct {
	Findings []Finding `json:"findings"`
}

// Problems counts findings with status Problem.
func (r *Report) Problems() int {
	n := 0
	for _, f := range r.Findings {
		if f.Status == Problem {
			n++
		}
	}
	return n
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// Env is the machine doctor looks at. Zero fields take no part: a nil Open
// skips the boot-log check, an empty SourceDir the toolchain check.
type Env struct {
	GOOS string
	// Root is the machine's "/" (os.DirFS("/") for real); paths in it have
	// no leading slash. It must support fs.ReadLink for /proc and /sys.
	Root fs.FS
	// Access reports whether the current user may open the absolute path
	// for reading and writing (access(2), which honours ACLs such as the
	// one udev's uaccess grants; mode bits alone cannot tell).
	Access func(path string) error
	// Port is --port: the boot-log check needs it, and a local device path
	// is checked like the ports found in sysfs.
	Port string
	Open func(ctx context.Context, addr string, baud int) (port.Port, error)
	// Listen is how long the boot-log check listens after each reset.
	Listen time.Duration
	// SourceDir is the working directory, absolute; the toolchain check runs
	// when it is inside the mos source tree.
	SourceDir string
	// Run runs a program and returns its standard output (toolchain check).
	Run func(ctx context.Context, name string, args ...string) (string, error)
}

// Run performs every check that applies to env and returns the report.
// Only a cancelled ctx is an error; a check that cannot run is a finding.
func Run(ctx context.Context, env Env) (*Report, error) {
	r := &Report{Findings: []Finding{}}
	if env.GOOS == "linux" && env.Root != nil {
		checkLinux(r, env)
	} else {
		r.add(Finding{Check: "usb", Status: Skipped,
			Summary: "USB, driver and permission checks are implemented for Linux only",
			Detail:  fmt.Sprintf("on %s, `mos ports` lists the serial ports the system sees", env.GOOS)})
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if env.Open != nil {
		if err := checkBootBaud(ctx, r, env); err != nil {
			return r, err
		}
	}
	if env.SourceDir != "" && env.Root != nil && env.Run != nil {
		checkToolchain(ctx, r, env)
	}
	return r, ctx.Err()
}

// ProblemsFound is the error doctor's command returns when the report has
// problems, so the exit code says the machine is not ready.
type ProblemsFound struct{ N int }

func (e *ProblemsFound) Error() string {
	if e.N == 1 {
		return "mos doctor found 1 problem"
	}
	return fmt.Sprintf("mos doctor found %d problems", e.N)
}

func (e *ProblemsFound) Hint() string {
	return "apply the fix printed under each problem, then run mos doctor again"
}

// rel turns an absolute path into a path in Root.
func rel(p string) string { return strings.TrimPrefix(p, "/") }

func readTrim(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
