//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package output

import "golang.org/x/sys/unix"

// isTerminal asks the tty driver for its settings, which only a terminal
// has (what golang.org/x/term does, without adding that module).
func isTerminal(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), unix.TIOCGETA)
	return err == nil
}

// terminalWidth is the terminal's width in columns, 0 when unknown.
func terminalWidth(fd uintptr) int {
	ws, err := unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}
