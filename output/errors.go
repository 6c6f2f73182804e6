package output

import (
	"context"
	"errors"
	"fmt"
)

// Hinter is implemented by errors that can tell the user what to do next
// (port.Error does: "add your user to the dialout group", ...).
type Hinter interface {
	Hint() string
}

// Hint returns the first non-empty hint found in err's chain, outermost
// first, or a generic one for a bare timeout; "" when there is none.
func Hint(err error) string {
	var hint string
	walk(err, func(e error) bool {
		if h, ok := e.(Hinter); ok {
			hint = h.Hint()
		}
		return hint != ""
	})
	if hint == "" && errors.Is(err, context.DeadlineExceeded) {
		hint = "the operation took too long: try a longer --timeout"
	}
	return hint
}

// UsageError is a mistake in how mos was called (unknown flag or command,
// wrong number of arguments, an invalid flag value). It exits with ExitUsage.
type UsageError struct {
	Err     error
	Command string // command path such as "mos flash", to point at its help
}

// Usagef returns a *UsageError; the format may use %w.
func Usagef(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }
func (e *UsageError) ExitCode() int { return ExitUsage }

func (e *UsageError) Hint() string {
	cmd := e.Command
	if cmd == "" {
		cmd = "mos"
	}
	return "run `" + cmd + " --help` for usage"
}

// WithExitCode wraps err so that ExitCode reports code. The CLI uses it to
// give a library's plain error a precise code without changing the library.
func WithExitCode(err error, code int) error {
	if err == nil {
		return nil
	}
	return &codedError{err: err, code: code}
}

// WithHint wraps err so that Hint reports hint.
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintedError{err: err, hint: hint}
}

type codedError struct {
	err  error
	code int
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }
func (e *codedError) ExitCode() int { return e.code }

type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }
func (e *hintedError) Hint() string  { return e.hint }

// WithResult attaches to err what the command got done before it failed
// or was interrupted (the regions a flash verified, say), so that the
// error report carries it: as text before the error, and in JSON as
// "result" next to "error" in the one document.
func WithResult(err error, r Result) error {
	if err == nil || r == nil {
		return err
	}
	return &resultError{err: err, result: r}
}

// ResultOf returns the partial result attached to err by WithResult, or nil.
func ResultOf(err error) Result {
	var r Result
	walk(err, func(e error) bool {
		if re, ok := e.(*resultError); ok {
			r = re.result
		}
		return r != nil
	})
	return r
}

type resultError struct {
	err    error
	result Result
}

func (e *resultError) Error() string { return e.err.Error() }
func (e *resultError) Unwrap() error { return e.err }
