package demofw

import (
	"context"
	"sync"
	"time"

	"github.com/mos-tool/mos/chips"

	"github.com/mos-tool/mos/sim"
)

// The firmware's side of UART0: a receive FIFO that loses bytes when it is
// full, XON/XOFF flow control, and a console that never splits a frame.
//
// The numbers, chosen to behave like mgos's UART layer on an ESP32:
//
//   - rxFIFOSize (256 bytes) is the RX buffer the interrupt handler fills;
//     a byte that arrives while it is full is lost (UARTStats.Lost).
//   - With rpc.uart.fc_type 2 the firmware sends XOFF when the FIFO holds
//     rxHighMark (160) bytes, and XON once it has drained below rxLowMark
//     (64). The 96 bytes to spare (8 ms at 115200) cover a host that has
//     written a few chunks ahead and reads the XOFF a little late, as a
//     USB-serial host does. Flow control bytes go out ahead of queued
//     output, as the UART hardware sends them.
//   - The firmware drains the FIFO at rxByteCost (2 us) a byte, far faster
//     than any baud rate the UART runs at; it stops draining while it works
//     on a frame: rpcFrameCost (1 ms) plus rpcByteCost a byte to parse the
//     JSON and decode base64 (1 us on the 160 MHz ESP32 family, 2 us on
//     the ESP8266: 4-8 ms for a 4 KiB frame), plus the method's own time
//     (file system writes take the flash model's erase and program times).
//     So a host that keeps sending while the firmware erases a sector
//     (45 ms = 518 bytes at 115200) and ignores XOFF loses bytes, as it
//     would with a real board.
//
// In fast mode nothing sleeps, so the busy time is virtual: bytes that
// were already on the line when the firmware picked them up count as
// arriving back to back at the line rate, and those that arrive (in that
// virtual time) while the firmware is busy and the FIFO is full are lost.
// A client that waits for each reply never loses bytes; one that queues a
// long burst behind a slow method loses them deterministically. Since the
// host cannot react to XOFF in virtual time, tests of flow control
// honoured by the host run with real timing.
const (
	rxFIFOSize   = 256
	rxHighMark   = 160
	rxLowMark    = 64
	rxByteCost   = 2 * time.Microsecond
	rpcFrameCost = time.Millisecond

	asciiXON  = 0x11
	asciiXOFF = 0x13

	// hostXOFFLimit is how long the firmware holds its own output after
	// the host sent XOFF and no XON.
	hostXOFFLimit = 2 * time.Second
)

// rpcByteCost is the firmware's time per byte of a frame it handles.
func rpcByteCost(c *chips.Chip) time.Duration {
	if c.IsESP8266() {
		return 2 * time.Microsecond
	}
	return time.Microsecond
}

// uartRX is the receive path: line -> FIFO -> firmware.
type uartRX struct {
	m     *sim.Machine
	ctx   context.Context
	state *Firmware     // the device's statistics
	flow  bool          // XON/XOFF flow control (rpc.uart.fc_type 2)
	tx    *console      // for the host's own XON/XOFF
	speed func() int    // the UART's baud rate now
	fast  bool          // virtual time (Config.Fast)
	clock time.Time     // real mode: the firmware has worked up to here
	mu    sync.Mutex    // fifo, stop and the clocks: shared with the ISR and background work
	fifo  []byte        // received, not yet taken by the firmware
	stop  bool          // XOFF sent, XON not yet
	wake  chan struct{} // real mode: bytes arrived
	vnow  time.Duration // fast mode: the firmware's virtual clock
	wire  []timedByte   // fast mode: read from the line, not yet arrived
	last  time.Duration // fast mode: arrival of the latest byte
	rxbuf []byte
}

type timedByte struct {
	b  byte
	at time.Duration
}

func newUARTRX(m *sim.Machine, ctx context.Context, state *Firmware, flow bool, tx *console) *uartRX {
	u := &uartRX{
		m: m, ctx: ctx, state: state, flow: flow, tx: tx, fast: m.Fast(),
		speed: m.UARTBaud,
		wake:  make(chan struct{}, 1),
		rxbuf: make([]byte, 16<<10),
	}
	return u
}

// isr is the receive interrupt in real time: it moves bytes from the line
// into the FIFO as they arrive, whatever the firmware is doing.
func (u *uartRX) isr() {
	buf := make([]byte, 64)
	for {
		n, err := u.m.Recv(u.ctx, buf, time.Time{})
		if err != nil {
			return
		}
		u.mu.Lock()
		for _, b := range buf[:n] {
			u.arriveLocked(b)
		}
		u.mu.Unlock()
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
}

// arriveLocked is one byte reaching the UART.
func (u *uartRX) arriveLocked(b byte) {
	if u.flow && (b == asciiXON || b == asciiXOFF) {
		u.tx.hostFlow(b == asciiXON)
		return
	}
	u.state.mu.Lock()
	defer u.state.mu.Unlock()
	if len(u.fifo) >= rxFIFOSize {
		u.state.uart.Lost++
		return
	}
	u.fifo = append(u.fifo, b)
	u.state.uart.Received++
	u.state.uart.MaxFill = max(u.state.uart.MaxFill, len(u.fifo))
	if u.flow && !u.stop && len(u.fifo) >= u.xoffMark() {
		u.stop = true
		u.state.uart.XOFFSent++
		u.sendFlowControl(asciiXOFF)
	}
}

// xoffMark is the fill at which XOFF goes out. The virtual line hands
// bytes over in pieces (pieceBytes), so in real time the receiver sees a
// byte up to a piece late; counting the mark a piece early makes XOFF
// leave no later than a real UART's would.
// In fast mode bytes are admitted one by one.
func (u *uartRX) xoffMark() int {
	if u.fast {
		return rxHighMark
	}
	return max(rxHighMark-u.m.RXPiece(), rxLowMark+1)
}

// takeLocked removes the oldest byte from the FIFO.
func (u *uartRX) takeLocked() byte {
	b := u.fifo[0]
	u.fifo = u.fifo[1:]
	if len(u.fifo) == 0 {
		u.fifo = u.fifo[:0:0] // let the backing array go
	}
	if u.flow && u.stop && len(u.fifo) < rxLowMark {
		u.stop = false
		u.state.mu.Lock()
		u.state.uart.XONSent++
		u.state.mu.Unlock()
		u.sendFlowControl(asciiXON)
	}
	return b
}

// sendFlowControl transmits XON or XOFF ahead of the output waiting to
// go out, as the UART hardware does: a host that waited for it behind a
// long reply would overrun the FIFO meanwhile.
func (u *uartRX) sendFlowControl(b byte) {
	if u.ctx.Err() == nil {
		u.m.SendAhead(b)
	}
}

// next waits for the next received byte until deadline (zero: forever);
// errTimeout when the deadline passes first.
func (u *uartRX) next(deadline time.Time) (byte, error) {
	if u.fast {
		return u.nextVirtual(deadline)
	}
	for {
		u.mu.Lock()
		if len(u.fifo) > 0 {
			b := u.takeLocked()
			u.mu.Unlock()
			return b, u.busy(rxByteCost)
		}
		u.mu.Unlock()
		if err := u.wait(deadline); err != nil {
			return 0, err
		}
	}
}

// wait blocks until the ISR signals new bytes, the deadline or a reset.
func (u *uartRX) wait(deadline time.Time) error {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-u.wake:
		return nil
	case <-timeout:
		return errTimeout
	case <-u.ctx.Done():
		return u.ctx.Err()
	}
}

// nextVirtual is next in fast mode: the FIFO is filled in virtual time
// from bytes read off the line.
func (u *uartRX) nextVirtual(deadline time.Time) (byte, error) {
	for {
		u.mu.Lock() // the virtual clock is shared with busy
		u.admit()
		if len(u.fifo) > 0 {
			b := u.takeLocked()
			u.vnow += rxByteCost
			u.mu.Unlock()
			return b, u.ctx.Err()
		}
		if len(u.wire) > 0 {
			u.vnow = u.wire[0].at // idle until the next byte arrives
			u.mu.Unlock()
			continue
		}
		u.mu.Unlock()
		n, err := u.m.Recv(u.ctx, u.rxbuf, deadline)
		if err != nil {
			return 0, err
		}
		bt := sim.WireTime(1, max(u.speed(), 1))
		u.mu.Lock()
		for _, b := range u.rxbuf[:n] {
			at := max(u.vnow, u.last+bt)
			u.last = at
			u.wire = append(u.wire, timedByte{b, at})
		}
		u.mu.Unlock()
	}
}

// admit moves the bytes that have arrived by the virtual now into the FIFO.
func (u *uartRX) admit() {
	i := 0
	for ; i < len(u.wire) && u.wire[i].at <= u.vnow; i++ {
		u.arriveLocked(u.wire[i].b)
	}
	u.wire = u.wire[i:]
	if len(u.wire) == 0 {
		u.wire = u.wire[:0:0]
	}
}

// busy is the firmware working for d without reading the UART. It returns
// the context's error when the chip is reset meanwhile. Background work
// (a Wi-Fi event saving the configuration) spends the same CPU time as the
// main loop, hence the lock.
func (u *uartRX) busy(d time.Duration) error {
	u.mu.Lock()
	if u.fast {
		u.vnow += d
		u.mu.Unlock()
		return u.ctx.Err()
	}
	// The firmware's own clock runs ahead of the wall clock by the work it
	// has done; time it spent waiting for bytes pays for work later, so it
	// sleeps only when it is more than a millisecond ahead (shorter sleeps
	// would only add timer slack).
	now := time.Now()
	if u.clock.Before(now) {
		u.clock = now
	}
	u.clock = u.clock.Add(d)
	ahead := u.clock.Sub(now)
	u.mu.Unlock()
	if ahead < time.Millisecond {
		return u.ctx.Err()
	}
	return sleepCtx(u.ctx, ahead)
}
