package share

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/rfc2217"
)

// errStopped ends a session when the lender is closed under it.
var errStopped = errors.New("the console stopped lending the port")

// session gives the line to b: it waits for the holder's reads to stop,
// relays between the borrower's RFC 2217 connection and the port, then
// leaves the port as the holder had it.
func (l *Lender) session(conn net.Conn, b Borrower) {
	if err := l.line.take(l.ctx); err != nil {
		return
	}
	defer l.line.give()
	sum := Summary{Borrower: b, Start: time.Now()}
	if l.hooks.OnBorrow != nil {
		l.hooks.OnBorrow(b)
	}
	startBaud := l.p.BaudRate()
	h := &relayHandler{p: l.p}
	sum.Err = l.relay(conn, h, startBaud)
	if sum.Err == nil && l.ctx.Err() != nil {
		sum.Err = errStopped
	}
	// The lines released (RTS first: on the auto-reset circuit the way
	// through, DTR on and RTS off, only pulls IO0, which nobody samples
	// while the chip runs) and the holder's rate back.
	if err := errors.Join(port.IgnoreNoLines(l.p.SetRTS(false)), port.IgnoreNoLines(l.p.SetDTR(false))); err != nil && sum.Err == nil {
		sum.Err = err
	}
	if l.p.BaudRate() != startBaud {
		if err := l.p.SetBaudRate(startBaud); err != nil && sum.Err == nil {
			sum.Err = err
		}
	}
	h.mu.Lock()
	sum.Bauds, sum.Resets, sum.BootloaderResets = h.bauds, h.resets, h.bootResets
	h.mu.Unlock()
	sum.Sent, sum.Received = h.sent.Load(), h.received.Load()
	sum.Duration = time.Since(sum.Start)
	if l.hooks.OnReturn != nil {
		l.hooks.OnReturn(sum)
	}
}

// relay pumps bytes both ways until the borrower leaves, the port fails or
// the lender stops. It returns the port's failure, or nil.
func (l *Lender) relay(conn net.Conn, h *relayHandler, baud int) error {
	if err := l.p.SetReadTimeout(pollInterval); err != nil {
		return err
	}
	sc, err := rfc2217.NewServerConn(&tolerantConn{Conn: conn}, h, baud)
	if err != nil {
		return nil // the borrower went before it started
	}
	var (
		wg      sync.WaitGroup
		once    sync.Once
		portErr error
		ended   = make(chan struct{})
	)
	end := func(err error) {
		once.Do(func() {
			portErr = err
			close(ended)
			sc.Close()
		})
	}
	stop := context.AfterFunc(l.ctx, func() { end(nil) })
	defer stop()
	wg.Add(2)
	go func() { // borrower -> port
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			n, err := sc.Read(buf)
			if n > 0 {
				if _, werr := l.p.Write(buf[:n]); werr != nil {
					end(werr)
					return
				}
				h.sent.Add(int64(n))
			}
			if err != nil {
				end(nil)
				return
			}
		}
	}()
	go func() { // port -> borrower
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			h.readMu.Lock()
			n, err := l.p.Read(buf)
			var werr error
			if n > 0 {
				if l.hooks.OnDeviceData != nil {
					l.hooks.OnDeviceData(buf[:n])
				}
				_, werr = sc.Write(buf[:n])
				h.received.Add(int64(n))
			}
			h.readMu.Unlock()
			select {
			case <-ended:
				return
			default:
			}
			switch {
			case werr != nil:
				end(nil)
				return
			case err != nil && !errors.Is(err, port.ErrTimeout):
				end(err)
				return
			}
		}
	}()
	wg.Wait()
	return portErr
}

// relayHandler applies the borrower's RFC 2217 commands to the port, in
// their order with the data, and notes what they did.
type relayHandler struct {
	p port.Port

	// readMu is held by the relay around each port read and its delivery,
	// so a purge cannot let bytes read before it reach the borrower after
	// its acknowledgement.
	readMu sync.Mutex

	sent, received atomic.Int64

	mu                 sync.Mutex
	bauds              []int
	dtr, rts           bool
	resets, bootResets int
}

// SetBaud waits for the bytes already written to leave at the old rate, as
// a command changing the rate of its own port would find them gone.
func (h *relayHandler) SetBaud(baud int) error {
	h.p.Drain()
	if err := h.p.SetBaudRate(baud); err != nil {
		return err
	}
	h.mu.Lock()
	h.bauds = append(h.bauds, baud)
	h.mu.Unlock()
	return nil
}

func (h *relayHandler) SetDTR(on bool) error {
	h.p.Drain()
	if err := h.p.SetDTR(on); err != nil {
		return err
	}
	h.mu.Lock()
	h.dtr = on
	h.mu.Unlock()
	return nil
}

// SetRTS counts an EN pulse when RTS is released after being asserted:
// on the auto-reset circuit RTS drives EN, DTR drives IO0 (esptool's
// reset.py ClassicReset), so DTR asserted at that moment means download
// mode.
func (h *relayHandler) SetRTS(on bool) error {
	h.p.Drain()
	if err := h.p.SetRTS(on); err != nil {
		return err
	}
	h.mu.Lock()
	if h.rts && !on {
		h.resets++
		if h.dtr {
			h.bootResets++
		}
	}
	h.rts = on
	h.mu.Unlock()
	return nil
}

func (h *relayHandler) Purge(rx, tx bool) error {
	if !rx {
		return nil // bytes handed to the port are on their way
	}
	h.readMu.Lock()
	defer h.readMu.Unlock()
	return h.p.ResetInputBuffer()
}

// tolerantConn keeps a borrower's last commands from being lost: a
// command typically ends with a reset and closes its port at once, before
// the replies to those control changes can reach it. Once a write fails,
// writes are dropped as if sent, so the rest of what the borrower sent
// before it closed is still read and applied; the end of its stream then
// ends the session.
type tolerantConn struct {
	net.Conn
	failed atomic.Bool
}

func (c *tolerantConn) Write(b []byte) (int, error) {
	if c.failed.Load() {
		return len(b), nil
	}
	if _, err := c.Conn.Write(b); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return 0, err // our own Close: the session is over
		}
		c.failed.Store(true)
	}
	return len(b), nil
}
