package output

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/mos-tool/mos/port"
)

// Exit codes of mos. Scripts depend on these numbers: a code is never
// renumbered or reused for another meaning; a retired code stays a gap.
// docs/exit-codes.md mirrors this table (a test checks that it does).
const (
	ExitOK           = 0   // success
	ExitFailure      = 1   // any failure without a more precise code
	ExitUsage        = 2   // bad flags or arguments
	ExitPortNotFound = 3   // the serial port does not exist
	ExitPortBusy     = 4   // another program has the port open
	ExitPermission   = 5   // not allowed to open the port (or a file)
	ExitNoAnswer     = 6   // the device did not answer: could not connect or sync
	ExitDeviceError  = 7   // the device answered with an error
	ExitVerifyFailed = 8   // what was written does not read back the same
	ExitBadInput     = 9   // a corrupt input: firmware bundle, image, checksum
	ExitTimeout      = 10  // the operation ran past --timeout
	ExitWiFiAuth     = 11  // Wi-Fi: wrong password
	ExitWiFiNotFound = 12  // Wi-Fi: network not found
	ExitCloud        = 13  // cloud registration or authentication failed
	ExitInterrupted  = 130 // Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
)

// CodeInfo describes one exit code.
type CodeInfo struct {
	Code    int
	Name    string // stable snake_case name, used as "name" in JSON errors
	Meaning string
}

var codes = []CodeInfo{
	{ExitOK, "ok", "success"},
	{ExitFailure, "failure", "general failure"},
	{ExitUsage, "usage", "usage error: bad flags or arguments"},
	{ExitPortNotFound, "port_not_found", "serial port not found"},
	{ExitPortBusy, "port_busy", "serial port busy (open in another program)"},
	{ExitPermission, "permission_denied", "permission denied"},
	{ExitNoAnswer, "no_answer", "no answer from the device (could not connect or sync)"},
	{ExitDeviceError, "device_error", "the device replied with an error"},
	{ExitVerifyFailed, "verify_failed", "verification failed"},
	{ExitBadInput, "bad_input", "bad input file (corrupt bundle or image, checksum mismatch)"},
	{ExitTimeout, "timeout", "timed out"},
	{ExitWiFiAuth, "wifi_wrong_password", "Wi-Fi: wrong password"},
	{ExitWiFiNotFound, "wifi_not_found", "Wi-Fi: network not found"},
	{ExitCloud, "cloud_error", "cloud or authentication error"},
	{ExitInterrupted, "interrupted", "interrupted (Ctrl-C)"},
}

// Codes returns the exit code table, in ascending order.
func Codes() []CodeInfo { return append([]CodeInfo(nil), codes...) }

// CodeName returns the stable name of an exit code ("failure" if unknown).
func CodeName(code int) string {
	for _, c := range codes {
		if c.Code == code {
			return c.Name
		}
	}
	return "failure"
}

// ExitCoder is implemented by errors that know their exit code. Packages
// below the CLI implement it on their typed errors instead of importing
// this package, so libraries stay free of CLI concerns.
type ExitCoder interface {
	ExitCode() int
}

var portKindCodes = map[port.ErrorKind]int{
	port.KindNotFound:     ExitPortNotFound,
	port.KindBusy:         ExitPortBusy,
	port.KindPermission:   ExitPermission,
	port.KindBadAddress:   ExitUsage,
	port.KindUnreachable:  ExitNoAnswer,
	port.KindDisconnected: ExitNoAnswer,
}

// ExitCode maps an error to the process exit code.
//
// Ctrl-C wins over everything: once the user interrupted, whatever failed
// afterwards is a consequence. Otherwise the outermost error in the chain
// that says something precise decides (an ExitCoder, a *port.Error of a
// known kind, a deadline, a permission error), so a command can wrap a
// library error to refine its code. Anything else is ExitFailure.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	code := ExitFailure
	walk(err, func(e error) bool {
		c, ok := classify(e)
		if ok {
			code = c
		}
		return ok
	})
	return code
}

// classify looks at one link of an error chain, not at what it wraps.
func classify(e error) (int, bool) {
	switch e := e.(type) {
	case ExitCoder:
		if c := e.ExitCode(); c > 0 {
			return c, true
		}
		return 0, false // a zero would report success for a failure: ignore it
	case *port.Error:
		c, ok := portKindCodes[e.Kind]
		return c, ok
	}
	switch {
	case is(e, context.DeadlineExceeded), is(e, os.ErrDeadlineExceeded), is(e, port.ErrTimeout):
		return ExitTimeout, true
	case is(e, fs.ErrPermission):
		return ExitPermission, true
	}
	return 0, false
}

// is is errors.Is restricted to one link of the chain.
func is(e, target error) bool {
	if e == target {
		return true
	}
	x, ok := e.(interface{ Is(error) bool })
	return ok && x.Is(target)
}

// walk visits err and everything it wraps, depth first in the order
// errors.Is uses, until visit returns true.
func walk(err error, visit func(error) bool) bool {
	if err == nil {
		return false
	}
	if visit(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walk(u.Unwrap(), visit)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if walk(e, visit) {
				return true
			}
		}
	}
	return false
}
