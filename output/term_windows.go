package output

import "golang.org/x/sys/windows"

// isTerminal reports whether fd is a console. Consoles since Windows 10
// understand the "\r" and ESC[K the progress bar uses.
func isTerminal(fd uintptr) bool {
	var mode uint32
	return windows.GetConsoleMode(windows.Handle(fd), &mode) == nil
}
