// Package flasher speaks the ESP serial bootloader protocol: reset into
// download mode, sync, detect the chip, and (in later files) upload the
// flasher stub and write, verify and read flash.
//
// It prints nothing and reads no flags: callers pass options and receive
// results, errors and progress callbacks.
package flasher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/slip"
)

// Opcodes of the serial bootloader protocol.
const (
	OpFlashBegin     = 0x02
	OpFlashData      = 0x03
	OpFlashEnd       = 0x04
	OpMemBegin       = 0x05
	OpMemEnd         = 0x06
	OpMemData        = 0x07
	OpSync           = 0x08
	OpWriteReg       = 0x09
	OpReadReg        = 0x0A
	OpSPISetParams   = 0x0B
	OpSPIAttach      = 0x0D
	OpReadFlashSlow  = 0x0E
	OpChangeBaud     = 0x0F
	OpFlashDeflBegin = 0x10
	OpFlashDeflData  = 0x11
	OpFlashDeflEnd   = 0x12
	OpSPIFlashMD5    = 0x13
	OpSecurityInfo   = 0x14
	OpEraseFlash     = 0xD0
	OpEraseRegion    = 0xD1
	OpReadFlash      = 0xD2
	OpRunUserCode    = 0xD3
)

// DefaultTimeout bounds a command that does no long flash work.
const DefaultTimeout = 3 * time.Second

// Conn is a SLIP-framed command channel to a ROM loader or flasher stub.
type Conn struct {
	p   port.Port
	dec slip.Decoder
	buf []byte // received bytes not yet decoded

	// StatusLen is how many status bytes end each reply: 2 for the ESP8266
	// ROM and every stub, 4 for the ROMs of the ESP32 family. Until the
	// chip is known, replies are read with the longer form tolerated.
	StatusLen int

	// Junk collects bytes seen outside frames (boot messages), bounded.
	Junk []byte

	// unanswered is set when a command got no reply in time: its reply
	// may still come, and must not pass for the next command's.
	unanswered bool
}

// NewConn wraps an open port.
func NewConn(p port.Port) *Conn {
	c := &Conn{p: p}
	c.dec.MaxFrame = 0x4000 + 1024
	return c
}

// Port is the underlying port.
func (c *Conn) Port() port.Port { return c.p }

// Response is a decoded reply.
type Response struct {
	Op     byte
	Value  uint32
	Data   []byte // payload before the status bytes
	Status [2]byte
	Body   []byte // payload and status bytes as received
}

// DeviceError is a command the device answered with a failure status.
type DeviceError struct {
	Op     byte
	Status [2]byte
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("device refused command 0x%02X: %s", e.Op, statusText(e.Status))
}

// ExitCode maps a device-side failure to the CLI's "device error" code.
func (e *DeviceError) ExitCode() int { return 7 }

// ErrUnsupported is returned for a command the ROM or stub does not know.
var ErrUnsupported = errors.New("command not supported by this chip's loader")

// UnsupportedError is the loader's answer to a command it does not know (or
// does not implement on this chip). It matches ErrUnsupported.
type UnsupportedError struct {
	Op     byte
	Status [2]byte
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("command 0x%02X not supported by this chip's loader (%s)", e.Op, statusText(e.Status))
}

// Is makes errors.Is(err, ErrUnsupported) hold.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// statusMessages explains the first two status bytes of a failed reply,
// read as a big-endian code as esptool does (util.py, FatalError.WithResult).
// ROM reasons (01 xx) are those of Espressif's serial protocol
// documentation ("Status bytes"); stub codes are esp-flasher-stub's
// (commands.h, esp_response_code), the same as the legacy stub's.
var statusMessages = map[uint16]string{
	0x0105: "received message is invalid: bad parameters or length, or a command the ROM does not know",
	0x0106: "failed to act on the received message",
	0x0107: "invalid CRC in message",
	0x0108: "flash write error",
	0x0109: "flash read error",
	0x010A: "flash read length error",
	0x010B: "deflate error",
	0xC000: "bad data length",
	0xC100: "bad data checksum",
	0xC200: "bad block size",
	0xC300: "invalid command",
	0xC400: "SPI flash operation failed",
	0xC500: "SPI flash unlock failed",
	0xC600: "not in flash mode",
	0xC700: "inflate error",
	0xC800: "not enough data",
	0xC900: "too much data",
	0xFF00: "command not implemented",
}

func statusText(s [2]byte) string {
	code := uint16(s[0])<<8 | uint16(s[1])
	if m, ok := statusMessages[code]; ok {
		return fmt.Sprintf("%s, status 0x%04X", m, code)
	}
	return fmt.Sprintf("unknown status 0x%04X", code)
}

// Send writes one request frame.
func (c *Conn) Send(op byte, data []byte, chk uint32) error {
	pkt := make([]byte, 8, 8+len(data))
	pkt[1] = op
	binary.LittleEndian.PutUint16(pkt[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(pkt[4:], chk)
	pkt = append(pkt, data...)
	_, err := c.p.Write(slip.Encode(nil, pkt))
	return err
}

// ReadFrame returns the next SLIP frame, waiting at most timeout for it
// to start. Once a frame is arriving, the deadline moves with each byte
// received: a long frame at a slow baud (4 KiB of flash at 9600 baud takes
// over 4 s) is not cut off while it flows, whatever rate --baud chose, up
// to the time the longest reply needs at that rate.
func (c *Conn) ReadFrame(ctx context.Context, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	limit := deadline.Add(c.wireTime(maxReplyWire))
	chunk := make([]byte, 4096)
	received := false
	for {
		for len(c.buf) > 0 {
			b := c.buf[0]
			c.buf = c.buf[1:]
			switch r, _ := c.dec.Push(b); r {
			case slip.Frame:
				return append([]byte(nil), c.dec.Frame()...), nil
			case slip.Junk:
				if len(c.Junk) < 8192 {
					c.Junk = append(c.Junk, b)
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if received && c.dec.InFrame() {
			// Never past the time the longest reply takes at this rate:
			// a line of garbage (a boot loop at another baud) can look
			// like a frame that never ends.
			deadline = time.Now().Add(max(timeout, DefaultTimeout))
			if deadline.After(limit) {
				deadline = limit
			}
		}
		received = false
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errTimeout
		}
		// short reads so that a cancelled context is noticed quickly
		if err := c.p.SetReadTimeout(min(left, 100*time.Millisecond)); err != nil {
			return nil, err
		}
		n, err := c.p.Read(chunk)
		if err != nil && !errors.Is(err, port.ErrTimeout) {
			return nil, err
		}
		c.buf = append(c.buf, chunk[:n]...)
		received = n > 0
	}
}

var errTimeout = errors.New("no reply")

// maxReplyWire is the most bytes a reply frame can take on the wire: a
// 4 KiB READ_FLASH packet (the largest frame a loader sends), every byte
// SLIP-escaped, and its header.
const maxReplyWire = 2*4096 + 64

// wireTime is how long n bytes take on the line at the port's rate: ten
// bit times each (start, 8 data, stop).
func (c *Conn) wireTime(n int) time.Duration {
	baud := c.p.BaudRate()
	if baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// Flush drops everything received so far.
func (c *Conn) Flush() {
	c.buf = nil
	c.dec.Reset()
	_ = c.p.ResetInputBuffer()
}

// ReadResponse reads frames until a reply to op arrives (replies to other
// commands, such as the extra SYNC answers, are skipped).
func (c *Conn) ReadResponse(ctx context.Context, op byte, timeout time.Duration) (*Response, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errTimeout
		}
		f, err := c.ReadFrame(ctx, left)
		if err != nil {
			return nil, err
		}
		if len(f) < 8 || f[0] != 0x01 {
			continue
		}
		r := &Response{Op: f[1], Value: binary.LittleEndian.Uint32(f[4:])}
		body := f[8:]
		if r.Op != op {
			// A ROM answers a command it does not know by sending its
			// previous reply's header again with "invalid message" (01 05):
			// eight times if that reply was to SYNC (measured on the ESP32
			// ROM). esptool (loader.py, command()) takes another op with
			// that status as "unsupported" and drains the repeats; left in
			// the input they would pass for the next command's answer.
			if len(body) >= 2 && body[0] != 0 && body[1] == 0x05 {
				if err := c.settle(ctx); err != nil {
					return nil, err
				}
				return nil, &UnsupportedError{Op: op, Status: [2]byte{body[0], body[1]}}
			}
			continue // a reply to an earlier command
		}
		sl := c.StatusLen
		if sl == 0 {
			sl = 2
			if len(body) == 4 || len(body) == 36 {
				sl = 4
			}
		} else if op != OpSync && !repliesWithData(op) && len(body) != sl {
			// Only status bytes: 2 from a stub, 4 from an ESP32-family
			// ROM. The other count means the loader changed under us
			// (the chip was reset while the stub ran); read with the
			// wrong length, a ROM's failure (01 05 00 00) would pass for
			// success (00 00).
			return nil, fmt.Errorf("reply to command 0x%02X has %d status bytes, want %d: %w", op, len(body), sl, ErrLoaderChanged)
		}
		if len(body) < sl {
			return nil, fmt.Errorf("reply to command 0x%02X too short (%d bytes)", op, len(body))
		}
		r.Body = body
		r.Data = body[:len(body)-sl]
		copy(r.Status[:], body[len(body)-sl:])
		return r, nil
	}
}

// ErrLoaderChanged is a reply in the other loader's format: the ROM
// answering where the stub ran (the chip was reset), or the other way round.
var ErrLoaderChanged = errors.New("another loader answered than the one this connection uses (was the chip reset?)")

// repliesWithData reports whether replies to op carry data before the
// status bytes (Espressif's serial protocol documentation): the MD5, the
// security info and the ROM's slow flash read. Every other reply is value
// and status only.
func repliesWithData(op byte) bool {
	switch op {
	case OpSPIFlashMD5, OpSecurityInfo, OpReadFlashSlow:
		return true
	}
	return false
}

// Command sends a request and waits for its reply; a failure status
// becomes a *DeviceError.
func (c *Conn) Command(ctx context.Context, op byte, data []byte, chk uint32, timeout time.Duration) (*Response, error) {
	if c.unanswered {
		// the previous command's late reply has the same shape as this
		// one's when the command is retried: let it arrive and drop it
		if err := c.settle(ctx); err != nil {
			return nil, err
		}
		c.unanswered = false
	}
	if err := c.Send(op, data, chk); err != nil {
		return nil, err
	}
	// The request is still crossing the wire when Send returns (the OS
	// buffers it): at a slow baud a 16 KiB block takes seconds, which the
	// command's own time must not pay for.
	timeout += c.wireTime(2*len(data) + 16)
	r, err := c.ReadResponse(ctx, op, timeout)
	if err != nil {
		if errors.Is(err, errTimeout) {
			c.unanswered = true
			return nil, fmt.Errorf("no reply to command 0x%02X within %v", op, timeout)
		}
		return nil, err
	}
	if r.Status[0] != 0 {
		// esp-flasher-stub: C3 00 for an op it does not know, FF 00 for
		// one it does not implement on this chip (command_handler.c)
		if r.Status[0] == 0xC3 || r.Status[0] == 0xFF {
			return r, &UnsupportedError{Op: op, Status: r.Status}
		}
		return r, &DeviceError{Op: op, Status: r.Status}
	}
	return r, nil
}

// Quiet-line wait after an unsupported-command answer: the ROM sends its
// repeats back to back (eight 14-byte frames take 10 ms at 115200 baud), so
// a pause of settleQuiet means they are all in; settleMax bounds the wait
// on a line that never goes quiet. esptool sleeps 0.2 s instead.
const (
	settleQuiet = 100 * time.Millisecond
	settleMax   = time.Second
)

// settle waits until nothing has arrived for settleQuiet (at most
// settleMax), then drops everything received: what is still coming
// belongs to a command already answered.
func (c *Conn) settle(ctx context.Context) error {
	chunk := make([]byte, 1024)
	for deadline := time.Now().Add(settleMax); time.Now().Before(deadline); {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.p.SetReadTimeout(min(settleQuiet, time.Until(deadline))); err != nil {
			return err
		}
		n, err := c.p.Read(chunk)
		if err != nil && !errors.Is(err, port.ErrTimeout) {
			return err
		}
		if n == 0 {
			break
		}
	}
	c.Flush()
	return nil
}

// ReadReg reads a 32-bit register or memory word.
func (c *Conn) ReadReg(ctx context.Context, addr uint32) (uint32, error) {
	r, err := c.Command(ctx, OpReadReg, le(addr), 0, DefaultTimeout)
	if err != nil {
		return 0, err
	}
	return r.Value, nil
}

// WriteReg writes value under mask to a register.
func (c *Conn) WriteReg(ctx context.Context, addr, value, mask uint32) error {
	_, err := c.Command(ctx, OpWriteReg, le(addr, value, mask, 0), 0, DefaultTimeout)
	return err
}

func le(words ...uint32) []byte {
	b := make([]byte, 0, 4*len(words))
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// Checksum is the bootloader's data checksum: 0xEF XOR every byte.
func Checksum(data []byte) uint32 {
	s := byte(0xEF)
	for _, b := range data {
		s ^= b
	}
	return uint32(s)
}
