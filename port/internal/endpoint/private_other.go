//go:build !unix

package endpoint

import (
	"errors"
	"syscall"
)

// checkPrivate has nothing to check where the temporary directory is the
// user's own (Windows' %TEMP%).
func checkPrivate(dir string) error { return nil }

func isRefused(err error) bool {
	// WSAECONNREFUSED (10061): nobody listens on the socket file.
	return errors.Is(err, syscall.Errno(10061)) || errors.Is(err, syscall.ENOENT)
}
