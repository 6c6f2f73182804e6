// Package slip frames packets the way the ESP serial bootloader does (RFC 1055
// SLIP): each frame is delimited by 0xC0; inside it 0xC0 travels as 0xDB 0xDC
// and 0xDB as 0xDB 0xDD.
package slip

import (
	"errors"
	"fmt"
)

const (
	End    = 0xC0
	Esc    = 0xDB
	EscEnd = 0xDC
	EscEsc = 0xDD
)

// ErrBadEscape reports 0xDB followed by something other than 0xDC or 0xDD.
var ErrBadEscape = errors.New("slip: invalid escape sequence")

// ErrTooLong reports a frame longer than the decoder's limit.
var ErrTooLong = errors.New("slip: frame too long")

// Encode appends the framed form of payload to dst and returns it.
func Encode(dst, payload []byte) []byte {
	dst = append(dst, End)
	for _, b := range payload {
		switch b {
		case End:
			dst = append(dst, Esc, EscEnd)
		case Esc:
			dst = append(dst, Esc, EscEsc)
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, End)
}

// Decoder turns a byte stream into frames. Bytes outside frames (boot
// messages, line noise) are handed back as junk so that callers can show
// or scan them; a malformed frame is reported and skipped, and decoding
// resumes at the next delimiter.
type Decoder struct {
	// MaxFrame bounds a decoded frame; zero means 64 KiB.
	MaxFrame int

	inFrame bool
	esc     bool
	broken  bool // current frame is being discarded after an error
	buf     []byte
}

// Result of pushing one byte into a Decoder.
type Result int

const (
	// Nothing: the byte was consumed into a frame in progress.
	Nothing Result = iota
	// Frame: a frame is complete; Frame() returns it.
	Frame
	// Junk: the byte was outside any frame.
	Junk
	// Error: the frame in progress was malformed and is dropped; Err() says why.
	Error
)

func (d *Decoder) limit() int {
	if d.MaxFrame > 0 {
		return d.MaxFrame
	}
	return 64 << 10
}

// Push feeds one byte. When it returns Frame the frame is available from
// Frame until the next Push. When it returns Error, err tells what was wrong.
func (d *Decoder) Push(b byte) (Result, error) {
	if !d.inFrame {
		if b == End {
			d.inFrame, d.esc, d.broken = true, false, false
			d.buf = d.buf[:0]
			return Nothing, nil
		}
		return Junk, nil
	}
	if b == End {
		if d.broken {
			// the end of a frame already reported bad; the next byte starts fresh
			d.inFrame, d.broken = false, false
			return Nothing, nil
		}
		if d.esc {
			d.inFrame, d.esc = true, false
			d.buf = d.buf[:0]
			return Error, fmt.Errorf("%w: 0xDB before end of frame", ErrBadEscape)
		}
		if len(d.buf) == 0 {
			// back-to-back delimiters: an empty frame is the start of the next
			return Nothing, nil
		}
		d.inFrame = false
		return Frame, nil
	}
	if d.broken {
		return Nothing, nil
	}
	if d.esc {
		d.esc = false
		switch b {
		case EscEnd:
			b = End
		case EscEsc:
			b = Esc
		default:
			d.broken = true
			return Error, fmt.Errorf("%w: 0xDB 0x%02X", ErrBadEscape, b)
		}
	} else if b == Esc {
		d.esc = true
		return Nothing, nil
	}
	if len(d.buf) >= d.limit() {
		d.broken = true
		return Error, fmt.Errorf("%w: more than %d bytes", ErrTooLong, d.limit())
	}
	d.buf = append(d.buf, b)
	return Nothing, nil
}

// Frame returns the last completed frame. The slice is reused by the next
// Push; copy it to keep it.
func (d *Decoder) Frame() []byte { return d.buf }

// InFrame reports whether a frame is in progress.
func (d *Decoder) InFrame() bool { return d.inFrame }

// Reset forgets any frame in progress.
func (d *Decoder) Reset() {
	d.inFrame, d.esc, d.broken = false, false, false
	d.buf = d.buf[:0]
}
