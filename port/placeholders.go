package port

// Placeholders until the transports land; each file replaces its function.
// (This file is removed when serial.go, rfc2217.go and socket.go exist.)

import (
	"context"
	"errors"
)

var errTODO = errors.New("transport not implemented yet")

func openSerial(path string, baud int) (Port, error) { return nil, errTODO }
func openRFC2217(ctx context.Context, name, hostport string, baud int) (Port, error) {
	return nil, errTODO
}
func openSocket(ctx context.Context, name, hostport string, baud int) (Port, error) {
	return nil, errTODO
}
