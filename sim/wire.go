package sim

import (
	"context"
	"io"
	"sync"
	"time"
)

// A line is one direction of the virtual UART: bytes written at the
// sender's baud rate become readable one by one as they would arrive on a
// real wire (8N1: ten bit times per byte), and a receiver listening at
// another rate reads garbage, as a real UART does.
type line struct {
	fast bool // deliver at once (unit tests); the baud check still applies

	mu        sync.Mutex
	pieces    []piece
	busyUntil time.Time     // when the transmitter finishes the last queued byte
	notify    chan struct{} // closed and replaced whenever pieces change
	closed    bool
	dropping  bool // receiver is not listening (device held in reset): discard
	limit     int  // bytes kept for the receiver before new ones are lost
	queued    int
	noise     *noiser // a noisy cable (see Noise); nil: clean
}

type piece struct {
	data []byte
	baud int       // rate the sender used
	at   time.Time // when the last byte of this piece has arrived
}

// uartTolerance is how far two baud rates may differ before the receiver
// samples the wrong bits. Real UARTs cope with a few percent.
const uartTolerance = 0.03

// pieceTime bounds how much wire time one piece covers, so that readers see
// bytes trickle in rather than in large bursts (a receiver reacting to
// flow control must see bytes about when a UART would hand them over);
// minPiece keeps slow rates from costing a wake-up per byte.
const (
	pieceTime = 100 * time.Microsecond
	minPiece  = 8
)

// pieceBytes is how many bytes one piece carries at baud.
func pieceBytes(baud int) int {
	return max(int(pieceTime/byteTime(max(baud, 1))), minPiece)
}

func newLine(fast bool, limit int) *line {
	return &line{fast: fast, limit: limit, notify: make(chan struct{})}
}

// byteTime is the time one 8N1 byte occupies the wire at baud.
func byteTime(baud int) time.Duration {
	return time.Duration(int64(10*time.Second) / int64(baud))
}

// WireTime is how long n bytes take on the wire at baud (8N1).
func WireTime(n, baud int) time.Duration {
	return time.Duration(int64(n) * int64(10*time.Second) / int64(baud))
}

func (l *line) wake() {
	close(l.notify)
	l.notify = make(chan struct{})
}

// send queues p as sent at baud. It returns when the bytes are on their way;
// backlog bounds how much untransmitted data may queue before send blocks
// (a UART driver's transmit buffer), zero for no bound.
func (l *line) send(ctx context.Context, p []byte, baud int, backlog time.Duration) error {
	if len(p) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return io.ErrClosedPipe
	}
	now := time.Now()
	if !l.fast && backlog > 0 {
		for l.busyUntil.Sub(now) > backlog {
			wait := l.busyUntil.Sub(now) - backlog
			l.mu.Unlock()
			err := sleepCtx(ctx, wait)
			l.mu.Lock()
			if err != nil {
				return err
			}
			if l.closed {
				return io.ErrClosedPipe
			}
			now = time.Now()
		}
	}
	if l.dropping {
		return nil
	}
	p = l.noise.apply(p, baud)
	start := now
	if l.busyUntil.After(start) {
		start = l.busyUntil
	}
	per := pieceBytes(baud)
	for len(p) > 0 {
		n := min(per, len(p))
		if l.limit > 0 && l.queued+n > l.limit {
			// receive buffer overrun: the rest is lost, like a full tty buffer
			break
		}
		start = start.Add(WireTime(n, baud))
		at := start
		if l.fast {
			at = time.Time{}
		}
		l.pieces = append(l.pieces, piece{data: append([]byte(nil), p[:n]...), baud: baud, at: at})
		l.queued += n
		p = p[n:]
	}
	if !l.fast {
		l.busyUntil = start
	}
	l.wake()
	return nil
}

// recv reads what has arrived, waiting until deadline (zero: forever) for
// the first byte. rxBaud reports the receiver's rate at the moment of
// reading; bytes sent at a different rate come out garbled. It returns
// errTimeout when nothing arrived in time.
func (l *line) recv(ctx context.Context, p []byte, rxBaud func() int, deadline time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closed {
			return 0, io.EOF
		}
		now := time.Now()
		n := 0
		for n < len(p) && len(l.pieces) > 0 {
			pc := &l.pieces[0]
			if !pc.at.IsZero() && pc.at.After(now) {
				break
			}
			if rb := rxBaud(); !baudMatches(pc.baud, rb) {
				l.queued -= len(pc.data)
				pc.data = garble(pc.data, pc.baud, rb)
				pc.baud = rb
				l.queued += len(pc.data)
			}
			c := copy(p[n:], pc.data)
			n += c
			l.queued -= c
			pc.data = pc.data[c:]
			if len(pc.data) == 0 {
				l.pieces = l.pieces[1:]
			}
		}
		if n > 0 {
			return n, nil
		}
		var wait time.Duration = -1
		if len(l.pieces) > 0 {
			wait = l.pieces[0].at.Sub(now)
		}
		if !deadline.IsZero() {
			left := deadline.Sub(now)
			if left <= 0 {
				return 0, errTimeout
			}
			if wait < 0 || left < wait {
				wait = left
			}
		}
		ch := l.notify
		l.mu.Unlock()
		var timer <-chan time.Time
		var t *time.Timer
		if wait >= 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ch:
		case <-timer:
		case <-ctx.Done():
			l.mu.Lock()
			if t != nil {
				t.Stop()
			}
			return 0, ctx.Err()
		}
		if t != nil {
			t.Stop()
		}
		l.mu.Lock()
	}
}

// discard drops everything queued (a receiver reset or a host purge).
func (l *line) discard() {
	l.mu.Lock()
	l.pieces = nil
	l.queued = 0
	l.wake()
	l.mu.Unlock()
}

// purgeArrived drops what has reached the receiver but not been read, as a
// host's input purge (tcflush) does: bytes still on the wire arrive after it.
func (l *line) purgeArrived() {
	l.mu.Lock()
	now := time.Now()
	for len(l.pieces) > 0 && (l.pieces[0].at.IsZero() || !l.pieces[0].at.After(now)) {
		l.queued -= len(l.pieces[0].data)
		l.pieces = l.pieces[1:]
	}
	l.wake()
	l.mu.Unlock()
}

// setDropping makes the line lose what is sent while the receiver is not
// listening.
func (l *line) setDropping(on bool) {
	l.mu.Lock()
	l.dropping = on
	if on {
		l.pieces = nil
		l.queued = 0
	}
	l.wake()
	l.mu.Unlock()
}

// idleAt reports when the transmitter will have sent everything queued.
func (l *line) idleAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busyUntil
}

func (l *line) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.wake()
	}
	l.mu.Unlock()
}

func baudMatches(tx, rx int) bool {
	if tx == rx {
		return true
	}
	d := float64(tx-rx) / float64(tx)
	return d <= uartTolerance && d >= -uartTolerance
}

// garble turns bytes sent at tx baud into what a receiver at rx baud
// samples: a different number of bytes (each receiver frame spans tx/rx of
// a sender frame) with bits taken from the wrong places. The exact bytes a
// real UART produces depend on the bit patterns; what matters is that they
// are deterministic, the wrong count, and not the data.
func garble(data []byte, tx, rx int) []byte {
	n := int((int64(len(data))*int64(rx) + int64(tx)/2) / int64(tx))
	out := make([]byte, n)
	for i := range out {
		src := data[(i*len(data))/max(n, 1)]
		// mix in position so runs of one value do not come through intact
		b := src ^ byte(i*0x9D+0x5B)
		b = b<<3 | b>>5
		out[i] = b
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
