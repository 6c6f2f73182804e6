package port

import "errors"

var (
	errNoPort        = errors.New("no port given (use --port or set MOS_PORT)")
	errUnknownScheme = errors.New("unknown scheme")
)
