//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package port

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// lockDevice takes an exclusive advisory lock (flock) on the device at path
// through a descriptor of its own, and returns it to be closed with the port.
// Unlike TIOCEXCL the lock binds root too, so two mos processes (or two opens
// in one process) never share a port. Programs that do not flock (screen,
// minicom) are not kept out by it; TIOCEXCL does that for non-root users.
func lockDevice(path string) (*deviceLock, error) {
	// O_NONBLOCK: do not wait for carrier detect on a modem line.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("locked by another process: %w", err)
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	return &deviceLock{fd: fd}, nil
}

type deviceLock struct{ fd int }

// Close releases the lock by closing its descriptor.
func (l *deviceLock) Close() error { return unix.Close(l.fd) }
