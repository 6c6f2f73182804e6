package demofw

import (
	"context"
	"sync"
	"time"

	"github.com/mos-tool/mos/sim"
)

// console is the firmware's output on UART0: log lines and RPC frames
// share it, each written whole, so a log line never lands inside a frame.
type console struct {
	m   *sim.Machine
	ctx context.Context

	mu sync.Mutex // one line or frame at a time

	flowMu  sync.Mutex
	held    time.Time     // the host's XOFF holds output until then
	resumed chan struct{} // closed by the host's XON
}

func newConsole(m *sim.Machine, ctx context.Context) *console {
	return &console{m: m, ctx: ctx}
}

// write sends p whole, after the host's XOFF (if any) has been lifted or
// has timed out.
func (k *console) write(p []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.waitHostXON()
	if err := k.ctx.Err(); err != nil {
		return err // the chip is being reset: nothing more goes out
	}
	return k.m.Send(p)
}

// hostFlow records the host's XOFF (on=false) or XON.
func (k *console) hostFlow(on bool) {
	k.flowMu.Lock()
	defer k.flowMu.Unlock()
	if on {
		if k.resumed != nil {
			close(k.resumed)
			k.resumed = nil
		}
		k.held = time.Time{}
		return
	}
	limit := hostXOFFLimit
	if k.m.Fast() {
		limit /= fastScale
	}
	k.held = time.Now().Add(limit)
	if k.resumed == nil {
		k.resumed = make(chan struct{})
	}
}

func (k *console) waitHostXON() {
	k.flowMu.Lock()
	until, resumed := k.held, k.resumed
	k.flowMu.Unlock()
	if until.IsZero() || resumed == nil {
		return
	}
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-resumed:
	case <-t.C:
	case <-k.ctx.Done():
	}
}
