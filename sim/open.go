package sim

import (
	"errors"
	"time"
)

// HostPort is the host's end of the virtual serial line (placeholder until the device lands).
type HostPort struct{}

var errTODO = errors.New("sim: not implemented yet")

func (h *HostPort) Read([]byte) (int, error)             { return 0, errTODO }
func (h *HostPort) Write([]byte) (int, error)            { return 0, errTODO }
func (h *HostPort) Close() error                         { return nil }
func (h *HostPort) SetReadTimeout(d time.Duration) error { return nil }
func (h *HostPort) SetBaudRate(int) error                { return nil }
func (h *HostPort) BaudRate() int                        { return 0 }
func (h *HostPort) SetDTR(bool) error                    { return errTODO }
func (h *HostPort) SetRTS(bool) error                    { return errTODO }
func (h *HostPort) ResetInputBuffer() error              { return nil }
func (h *HostPort) Drain() error                         { return nil }
func (h *HostPort) Name() string                         { return "sim" }

// Open is replaced by the real device.
func Open(url string) (*HostPort, error) { return nil, errTODO }
