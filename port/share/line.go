package share

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mos-tool/mos/port"
)

// line decides who uses the port: the holder (any number of calls at
// once, as a Port allows one reader and one writer) or one borrower.
type line struct {
	mu      sync.Mutex
	users   int           // holder calls in progress
	pending bool          // a borrower waits for them to return
	lent    bool          // a borrower has the line
	changed chan struct{} // closed and replaced at every change
	closed  bool          // the holder closed the port
}

func newLine() *line { return &line{changed: make(chan struct{})} }

func (ln *line) broadcastLocked() {
	close(ln.changed)
	ln.changed = make(chan struct{})
}

// take gives the line to a borrower once the holder's calls in progress
// have returned; new holder calls wait or fail meanwhile.
func (ln *line) take(ctx context.Context) error {
	ln.mu.Lock()
	ln.pending = true
	for ln.users > 0 {
		ch := ln.changed
		ln.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			ln.mu.Lock()
			ln.pending = false
			ln.broadcastLocked()
			ln.mu.Unlock()
			return ctx.Err()
		}
		ln.mu.Lock()
	}
	ln.pending, ln.lent = false, true
	ln.broadcastLocked()
	ln.mu.Unlock()
	return nil
}

// give returns the line to the holder.
func (ln *line) give() {
	ln.mu.Lock()
	ln.lent = false
	ln.broadcastLocked()
	ln.mu.Unlock()
}

// enter starts a holder call. With wait, it waits until deadline (zero:
// for ever) for the line to come back; without, a lent line is ErrLent.
func (ln *line) enter(l *Lender, wait bool, deadline time.Time) error {
	var expired <-chan time.Time
	if wait && !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	ln.mu.Lock()
	for {
		switch {
		case ln.closed:
			ln.mu.Unlock()
			return port.ErrClosed
		case !ln.lent && !ln.pending:
			ln.users++
			ln.mu.Unlock()
			return nil
		case ln.lent && !wait:
			ln.mu.Unlock()
			return l.lentError()
		}
		ch := ln.changed
		ln.mu.Unlock()
		select {
		case <-ch:
		case <-expired:
			return port.ErrTimeout
		}
		ln.mu.Lock()
	}
}

func (ln *line) leave() {
	ln.mu.Lock()
	ln.users--
	ln.broadcastLocked()
	ln.mu.Unlock()
}

func (l *Lender) lentError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current != nil {
		return fmt.Errorf("%s: %w (%s has it)", l.name, ErrLent, *l.current)
	}
	return fmt.Errorf("%s: %w", l.name, ErrLent)
}

// linePort is the holder's view of the port while it is offered.
type linePort struct {
	l *Lender

	mu      sync.Mutex
	timeout time.Duration // the holder's read timeout
}

// Read waits for data as the port would, but reads the port in slices of
// pollInterval so that a borrower gets the line within one slice; while
// the line is lent it returns nothing but ErrTimeout.
func (p *linePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	timeout := p.timeout
	p.mu.Unlock()
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	ln := p.l.line
	for {
		if err := ln.enter(p.l, true, deadline); err != nil {
			return 0, err
		}
		slice := pollInterval
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				ln.leave()
				return 0, port.ErrTimeout
			}
			slice = min(slice, left)
		}
		n, err := 0, p.l.p.SetReadTimeout(slice)
		if err == nil {
			n, err = p.l.p.Read(b)
		}
		ln.leave()
		if n > 0 || (err != nil && !errors.Is(err, port.ErrTimeout)) {
			return n, err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return 0, port.ErrTimeout
		}
	}
}

// do runs a holder call that needs the line now.
func (p *linePort) do(f func() error) error {
	if err := p.l.line.enter(p.l, false, time.Time{}); err != nil {
		return err
	}
	defer p.l.line.leave()
	return f()
}

func (p *linePort) Write(b []byte) (n int, err error) {
	err = p.do(func() error {
		n, err = p.l.p.Write(b)
		return err
	})
	return n, err
}

func (p *linePort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
	return nil
}

func (p *linePort) SetBaudRate(baud int) error {
	return p.do(func() error { return p.l.p.SetBaudRate(baud) })
}

func (p *linePort) BaudRate() int        { return p.l.p.BaudRate() }
func (p *linePort) SetDTR(on bool) error { return p.do(func() error { return p.l.p.SetDTR(on) }) }
func (p *linePort) SetRTS(on bool) error { return p.do(func() error { return p.l.p.SetRTS(on) }) }
func (p *linePort) ResetInputBuffer() error {
	return p.do(func() error { return p.l.p.ResetInputBuffer() })
}
func (p *linePort) Drain() error { return p.do(func() error { return p.l.p.Drain() }) }
func (p *linePort) Name() string { return p.l.p.Name() }

// Close stops lending, then closes the port.
func (p *linePort) Close() error {
	p.l.Close()
	ln := p.l.line
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		return port.ErrClosed
	}
	ln.closed = true
	ln.broadcastLocked()
	ln.mu.Unlock()
	return p.l.p.Close()
}
