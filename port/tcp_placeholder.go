package port

// Placeholder until rfc2217.go and socket.go land (delete this file then).

import (
	"context"
	"errors"
)

func openRFC2217(ctx context.Context, name, hostport string, baud int) (Port, error) {
	return nil, errors.New("rfc2217 not implemented yet")
}

func openSocket(ctx context.Context, name, hostport string, baud int) (Port, error) {
	return nil, errors.New("socket not implemented yet")
}
