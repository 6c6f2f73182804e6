package port

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// errHangUp is what Read reports when the tty hung up under it (a pty whose
// master closed, a USB bridge that went away).
var errHangUp = errors.New("the line hung up")

// serialPort is a local serial device opened through go.bug.st/serial.
type serialPort struct {
	sp   serial.Port
	path string
	lock io.Closer // advisory lock held on the device until Close
	baud atomic.Int64

	closed atomic.Bool
}

// openSerial opens the device at path as 8N1 without flow control.
//
// go.bug.st/serial marks the tty exclusive (TIOCEXCL), but root ignores that,
// so first an advisory flock is taken on the device (see lockDevice): a second
// mos gets KindBusy even as root. The lock is taken before the port is
// configured, so a losing opener never touches the winner's line settings.
func openSerial(path string, baud int) (Port, error) {
	lock, err := lockDevice(path)
	if err != nil {
		return nil, newSerialError("open", path, err)
	}
	sp, err := serial.Open(path, serialMode(baud))
	if err != nil {
		lock.Close()
		return nil, newSerialError("open", path, err)
	}
	p := &serialPort{sp: sp, path: path, lock: lock}
	p.baud.Store(int64(baud))
	return p, nil
}

// serialMode is 8N1 at baud. InitialStatusBits stays nil: setting it would
// make the open fail on ports without modem lines (a pseudo-terminal).
func serialMode(baud int) *serial.Mode {
	return &serial.Mode{
		BaudRate: baud,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
	}
}

func (p *serialPort) Read(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if len(b) == 0 {
		// go.bug.st/serial would take the 0-byte read for a hang-up.
		return 0, nil
	}
	n, err := p.sp.Read(b)
	if err != nil {
		if p.closed.Load() {
			// Our own Close woke the read up.
			return n, ErrClosed
		}
		if code, ok := serialErrorCode(err); ok && code == serial.PortClosed {
			// go.bug.st/serial's name for end of file on the tty.
			err = errHangUp
		}
		return n, p.ioError("read", err)
	}
	if n == 0 {
		// go.bug.st/serial reports the read timeout as (0, nil).
		return 0, ErrTimeout
	}
	return n, nil
}

func (p *serialPort) Write(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	total := 0
	for len(b) > 0 {
		n, err := p.sp.Write(b)
		total += n
		if err != nil {
			return total, p.ioError("write", err)
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
		b = b[n:]
	}
	return total, nil
}

func (p *serialPort) SetReadTimeout(d time.Duration) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if d <= 0 {
		// For go.bug.st/serial a zero timeout means "poll", not "forever".
		d = serial.NoTimeout
	}
	return p.sp.SetReadTimeout(d)
}

func (p *serialPort) SetBaudRate(baud int) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if baud <= 0 {
		return fmt.Errorf("set baud rate on %s: invalid rate %d", p.path, baud)
	}
	if err := p.sp.SetMode(serialMode(baud)); err != nil {
		return p.ioError(fmt.Sprintf("set baud rate %d on", baud), err)
	}
	p.baud.Store(int64(baud))
	return nil
}

func (p *serialPort) BaudRate() int { return int(p.baud.Load()) }

func (p *serialPort) SetDTR(on bool) error { return p.setLine("set DTR", p.sp.SetDTR, on) }
func (p *serialPort) SetRTS(on bool) error { return p.setLine("set RTS", p.sp.SetRTS, on) }

func (p *serialPort) setLine(op string, set func(bool) error, on bool) error {
	if p.closed.Load() {
		return ErrClosed
	}
	err := set(on)
	if err == nil {
		return nil
	}
	// A pseudo-terminal (and some odd drivers) reject the modem ioctls.
	if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
		return &Error{Kind: KindOther, Port: p.path, Op: op, Err: fmt.Errorf("%w (%w)", ErrNoControlLines, err)}
	}
	return p.ioError(op, err)
}

func (p *serialPort) ResetInputBuffer() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.sp.ResetInputBuffer(); err != nil {
		return p.ioError("reset input buffer of", err)
	}
	return nil
}

func (p *serialPort) Drain() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.sp.Drain(); err != nil {
		return p.ioError("drain", err)
	}
	return nil
}

func (p *serialPort) Name() string { return p.path }

// Close closes the device, then releases the lock, so no other mos can get
// in between. A second Close returns ErrClosed.
func (p *serialPort) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	err := p.sp.Close()
	if lerr := p.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return &Error{Kind: KindOther, Port: p.path, Op: "close", Err: err}
	}
	return nil
}

func (p *serialPort) ioError(op string, err error) error {
	return newSerialError(op, p.path, err)
}

func newSerialError(op, path string, err error) *Error {
	return &Error{Kind: serialErrorKind(op, err), Port: path, Op: op, Err: err}
}

// serialErrorKind classifies an error from go.bug.st/serial or from the
// system calls behind it. op is "open" for errors while opening.
func serialErrorKind(op string, err error) ErrorKind {
	if code, ok := serialErrorCode(err); ok {
		return serialCodeKind(code)
	}
	if errors.Is(err, errHangUp) {
		return KindDisconnected
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT:
			return KindNotFound
		case syscall.EBUSY, syscall.EWOULDBLOCK: // EWOULDBLOCK: the flock is held
			return KindBusy
		case syscall.EACCES, syscall.EPERM:
			return KindPermission
		case syscall.ENODEV, syscall.ENXIO, syscall.EIO:
			if op == "open" {
				// No device behind the node (EIO: a /dev/ttyS* without
				// a UART).
				return KindNotFound
			}
			// The USB device went away under an open port: a hung-up
			// tty gives EIO, a driver mid-disconnect may give ENODEV.
			return KindDisconnected
		}
	}
	// Other platforms' errors (Windows' ERROR_FILE_NOT_FOUND and the like).
	// Only while opening: on Windows a read from an unplugged device can
	// fail with ERROR_ACCESS_DENIED, which is no permission problem.
	if op == "open" {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return KindNotFound
		case errors.Is(err, fs.ErrPermission):
			return KindPermission
		}
	}
	return KindOther
}

// serialCodeKind classifies a go.bug.st/serial error code.
func serialCodeKind(code serial.PortErrorCode) ErrorKind {
	switch code {
	case serial.PortNotFound:
		return KindNotFound
	case serial.PortBusy:
		return KindBusy
	case serial.PermissionDenied:
		return KindPermission
	case serial.InvalidSerialPort:
		// The path exists but is no tty (a regular file, /dev/null).
		return KindBadAddress
	case serial.PortClosed:
		// Read saw a hang-up (end of file on the tty), not our Close,
		// which the callers check for first.
		return KindDisconnected
	}
	return KindOther
}

// serialErrorCode extracts a go.bug.st/serial PortError code; the library
// returns *PortError, but the value type implements error too.
func serialErrorCode(err error) (serial.PortErrorCode, bool) {
	var pp *serial.PortError
	if errors.As(err, &pp) && pp != nil {
		return pp.Code(), true
	}
	var pv serial.PortError
	if errors.As(err, &pv) {
		return pv.Code(), true
	}
	return 0, false
}
