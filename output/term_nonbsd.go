//go:build aix || linux || solaris || zos

package output

import "golang.org/x/sys/unix"

// isTerminal asks the tty driver for its settings, which only a terminal
// has (what golang.org/x/term does, without adding that module).
func isTerminal(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	return err == nil
}
