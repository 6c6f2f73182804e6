//go:build !(aix || linux || solaris || zos || darwin || dragonfly || freebsd || netbsd || openbsd || windows)

package output

// isTerminal: on other systems progress is printed as plain lines.
func isTerminal(fd uintptr) bool { return false }

func terminalWidth(fd uintptr) int { return 0 }
