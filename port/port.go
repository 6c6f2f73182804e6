// Package port is the one seam between mos and a device's serial line.
//
// Everything that talks to a board (the flasher, RPC, the console) sees a
// Port: a byte stream with a read timeout, a baud rate and the two modem
// control lines that drive a board's auto-reset circuit. Open picks the
// implementation from the --port value:
//
//	/dev/ttyUSB0, COM3, serial:///dev/ttyUSB0   a local serial device (go.bug.st/serial)
//	rfc2217://host:port                          RFC 2217 (telnet COM-PORT-OPTION): control lines over TCP
//	socket://host:port                           raw TCP, no control lines
//	sim://CHIP[?options]                         the in-process virtual device (package sim)
package port

import (
	"errors"
	"io"
	"time"
)

// Port is a serial connection to a device.
//
// Read blocks until at least one byte is available or the read timeout set
// with SetReadTimeout passes; on a timeout it returns 0 and ErrTimeout.
// Implementations are safe for one reader and one writer running at the same
// time; control calls (baud, lines, purge) may come from either.
type Port interface {
	io.ReadWriteCloser

	// SetReadTimeout sets how long Read waits for the first byte.
	// Zero or a negative value means wait forever.
	SetReadTimeout(d time.Duration) error
	// SetBaudRate changes the line speed. Bytes still in flight may be
	// garbled, exactly as on a real UART.
	SetBaudRate(baud int) error
	// BaudRate reports the current line speed.
	BaudRate() int
	// SetDTR and SetRTS drive the modem control lines; true asserts the
	// line (on a USB-UART bridge that pulls the pin low). They are separate
	// calls because real drivers and RFC 2217 change them one at a time.
	SetDTR(on bool) error
	SetRTS(on bool) error
	// ResetInputBuffer discards bytes received but not yet read.
	ResetInputBuffer() error
	// Drain waits until bytes written so far have left the host.
	Drain() error
	// Name is the address the port was opened with, for messages.
	Name() string
}

// ErrTimeout is returned by Read when no byte arrived within the read timeout.
var ErrTimeout = errors.New("read timed out")

// ErrNoControlLines is returned by SetDTR/SetRTS on ports that cannot carry
// them (raw TCP, a pseudo-terminal). Callers treat it as "board not reset".
var ErrNoControlLines = errors.New("this port has no DTR/RTS control lines")

// IgnoreNoLines drops ErrNoControlLines: for a relay (a server, a console
// lending its port) a line change the port cannot make is no failure of
// the relay's, and other errors pass through.
func IgnoreNoLines(err error) error {
	if errors.Is(err, ErrNoControlLines) {
		return nil
	}
	return err
}

// ErrClosed is returned by operations on a closed port.
var ErrClosed = errors.New("port is closed")

// ErrorKind classifies why a port could not be used, so the CLI can map it
// to an exit code and a hint.
type ErrorKind int

const (
	KindOther ErrorKind = iota
	KindNotFound
	KindBusy
	KindPermission
	KindBadAddress
	KindUnreachable
	KindDisconnected
)

// Error describes a failure to open or use a port.
type Error struct {
	Kind ErrorKind
	Port string
	Op   string // "open", "read", "write", "set DTR", ...
	Err  error
}

func (e *Error) Error() string {
	msg := e.Op + " " + e.Port
	switch e.Kind {
	case KindNotFound:
		msg += ": no such port"
	case KindBusy:
		msg += ": port is busy (another program has it open)"
	case KindPermission:
		msg += ": permission denied"
	case KindBadAddress:
		msg += ": bad port address"
	case KindUnreachable:
		msg += ": cannot connect"
	case KindDisconnected:
		msg += ": device disconnected"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Hint says what the user can do about the error.
func (e *Error) Hint() string {
	switch e.Kind {
	case KindNotFound:
		return "check the cable and run `mos ports` to list the serial ports present"
	case KindBusy:
		return "close the other program using the port (a serial monitor, another mos) and try again"
	case KindPermission:
		return "add your user to the group owning the port (often `dialout`: sudo usermod -aG dialout $USER, then log in again)"
	case KindBadAddress:
		return "use a device path, rfc2217://HOST:PORT, socket://HOST:PORT or sim://CHIP"
	case KindUnreachable:
		return "check that the serial server is running and the address is right"
	case KindDisconnected:
		return "reconnect the board and run the command again"
	}
	return ""
}
