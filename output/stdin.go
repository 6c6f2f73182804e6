package output

import (
	"io"

	"golang.org/x/term"
)

// IsTerminalReader reports whether r is a terminal: a person who can
// answer a question, as opposed to a pipe, a file or /dev/null.
func IsTerminalReader(r io.Reader) bool {
	f, ok := r.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
