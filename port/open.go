package port

import (
	"context"
	"errors"
	"strings"

	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// DefaultBaud is the rate a port starts at: the ROM loaders' and most
// firmwares' console rate.
const DefaultBaud = 115200

// Open opens the port named by addr (see the package comment for the forms)
// at the given baud rate (DefaultBaud when zero).
//
// When a running `mos console` holds that port and lends it (package
// port/share), the port returned goes through the console instead: same
// Name, same behaviour, and the console shows what was done. See
// WithBorrower for how the caller learns of it.
func Open(ctx context.Context, addr string, baud int) (Port, error) {
	if baud <= 0 {
		baud = DefaultBaud
	}
	if p, ok, err := borrow(ctx, addr, baud); ok || err != nil {
		return p, err
	}
	return OpenDirect(ctx, addr, baud)
}

// OpenDirect is Open without going through a console that lends the port:
// for the console itself, which must not borrow from its own endpoint when
// it reopens a port that came back.
func OpenDirect(ctx context.Context, addr string, baud int) (Port, error) {
	if baud <= 0 {
		baud = DefaultBaud
	}
	if addr == "" {
		return nil, &Error{Kind: KindBadAddress, Port: addr, Op: "open", Err: errNoPort}
	}
	switch {
	case strings.HasPrefix(addr, "sim://"):
		hp, err := sim.Open(addr, demofw.New) // the demo runs the demo images
		if err != nil {
			kind := KindBadAddress
			switch {
			case errors.Is(err, sim.ErrBusy):
				kind = KindBusy
			case errors.Is(err, sim.ErrUnplugged):
				kind = KindNotFound // as a USB device that is not plugged in
			}
			return nil, &Error{Kind: kind, Port: addr, Op: "open", Err: err}
		}
		p := simPort{hp}
		if err := p.SetBaudRate(baud); err != nil {
			p.Close()
			return nil, err
		}
		return p, nil
	case strings.HasPrefix(addr, "rfc2217://"):
		return openRFC2217(ctx, addr, strings.TrimPrefix(addr, "rfc2217://"), baud)
	case strings.HasPrefix(addr, "socket://"):
		return openSocket(ctx, addr, strings.TrimPrefix(addr, "socket://"), baud)
	case strings.HasPrefix(addr, "tcp://"):
		return openSocket(ctx, addr, strings.TrimPrefix(addr, "tcp://"), baud)
	case strings.HasPrefix(addr, "serial://"):
		return openSerial(strings.TrimPrefix(addr, "serial://"), baud)
	case strings.Contains(addr, "://"):
		return nil, &Error{Kind: KindBadAddress, Port: addr, Op: "open", Err: errUnknownScheme}
	default:
		return openSerial(addr, baud)
	}
}

// simPort adapts the virtual device's host port to this package's errors.
type simPort struct{ *sim.HostPort }

func (p simPort) Read(b []byte) (int, error) {
	n, err := p.HostPort.Read(b)
	return n, mapSimErr(err, p.Name(), "read")
}

func (p simPort) Write(b []byte) (int, error) {
	n, err := p.HostPort.Write(b)
	return n, mapSimErr(err, p.Name(), "write")
}

// SimDevice returns the virtual device behind a sim:// port, or nil.
func SimDevice(p Port) *sim.Device {
	if sp, ok := p.(simPort); ok {
		return sp.Device()
	}
	return nil
}

func mapSimErr(err error, name, op string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sim.ErrReadTimeout):
		return ErrTimeout
	case errors.Is(err, sim.ErrClosed):
		return ErrClosed
	case errors.Is(err, sim.ErrUnplugged):
		return &Error{Kind: KindDisconnected, Port: name, Op: op, Err: err}
	}
	return err
}
