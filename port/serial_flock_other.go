//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package port

// lockDevice is a no-op where flock is not available; on Windows the serial
// driver already refuses a second open of a COM port.
func lockDevice(path string) (*deviceLock, error) { return &deviceLock{}, nil }

type deviceLock struct{}

func (*deviceLock) Close() error { return nil }
