package output

import "golang.org/x/sys/windows"

// isTerminal reports whether fd is a console. Consoles since Windows 10
// understand the "\r" and ESC[K the progress bar uses.
func isTerminal(fd uintptr) bool {
	var mode uint32
	return windows.GetConsoleMode(windows.Handle(fd), &mode) == nil
}

// terminalWidth is the console window's width in columns, 0 when unknown.
func terminalWidth(fd uintptr) int {
	var info windows.ConsoleScreenBufferInfo
	if windows.GetConsoleScreenBufferInfo(windows.Handle(fd), &info) != nil {
		return 0
	}
	return int(info.Window.Right-info.Window.Left) + 1
}
