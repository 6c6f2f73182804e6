package provision

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/port"
)

// Software flow control bytes the device sends about its receive FIFO.
const (
	xon  = 0x11
	xoff = 0x13
)

// maxXOFF is how long an XOFF holds the writer before it is taken as stale
// (the XON lost, or an 0x13 that was really line noise). The device itself
// gives up waiting for the host's XON after 2 s.
const maxXOFF = 2 * time.Second

// chunkSize is how many bytes are written between two drains.
//
// The writer keeps at most two chunks in the host's hands: it writes chunk
// k+1 while chunk k is on the wire, and waits for chunk k to drain before
// writing k+2 (see writer.write). So when the device says XOFF, what can
// still reach it is at most two chunks, plus what it took in itself before
// its XOFF went out. The demo firmware (like mgos on an ESP32) says XOFF
// with 64 of its 256 FIFO bytes free: two chunks of 16 bytes leave half of
// that for the device's own lag (its interrupt takes bytes in batches) and
// the XOFF's trip to the host. And since a chunk lasts 1.4 ms at 115200, a
// drain that returns up to that late (Go timers) leaves no gap on the
// line: the next chunk is already queued.
//
// Faster lines use 32-byte chunks at most, so that two of them fit the
// device's XOFF margin whatever the rate. A drain (like any timer) wakes
// up about a millisecond late on common hosts, which leaves the line idle
// much of the time at 921600 (about half the wire's rate in the
// benchmark); writing whole requests instead kept the line busy but lost
// bytes whenever the device was slow to drain its FIFO. Reliability comes
// first; a port with hardware flow control would allow both.
//
// A port whose Drain waits for everything queued, whenever queued (Linux
// tcdrain), makes this one chunk at a time; then each chunk costs the
// drain's latency as well, which Options.WriteChunk can trade against the
// FIFO margin.
func chunkSize(baud int) int {
	n := 16 * baud / 115200
	return min(max(n, 16), 32)
}

// gate is the XON/XOFF state: writers wait at it while the device has
// said XOFF.
type gate struct {
	mu      sync.Mutex
	stopped bool
	since   time.Time
	changed chan struct{} // closed and replaced on every change

	xoffs, stale int // counts, for Stats
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

func (g *gate) set(stop bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if stop == g.stopped {
		return
	}
	g.stopped = stop
	if stop {
		g.since = time.Now()
		g.xoffs++
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// wait returns once writing may go on: XON came, or the XOFF went stale.
func (g *gate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		if !g.stopped {
			g.mu.Unlock()
			return nil
		}
		left := maxXOFF - time.Since(g.since)
		if left <= 0 {
			g.stopped = false
			g.stale++
			g.mu.Unlock()
			return nil
		}
		ch := g.changed
		g.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// writer sends bytes to the device in drained chunks, honouring XOFF.
type writer struct {
	mu    sync.Mutex // one frame at a time on the line
	p     port.Port
	gate  *gate
	chunk int
	sent  atomic.Int64
}

// write sends b in chunks. Each chunk is written once the device has not
// said XOFF and the chunk before the previous one has drained: a Drain
// runs in the background from each write to the next, so the line stays
// busy while at most two chunks are out of the writer's hands. It returns
// once all of b has drained.
func (w *writer) write(ctx context.Context, b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var drained chan error // the drain of the chunks written so far
	wait := func() error {
		if drained == nil {
			return nil
		}
		select {
		case err := <-drained:
			drained = nil
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for len(b) > 0 {
		if err := w.gate.wait(ctx); err != nil {
			return err
		}
		n := min(len(b), w.chunk)
		if _, err := w.p.Write(b[:n]); err != nil {
			return err
		}
		w.sent.Add(int64(n))
		b = b[n:]
		if err := wait(); err != nil {
			return err
		}
		drained = w.startDrain()
	}
	return wait()
}

// startDrain runs Drain in the background. It returns once the goroutine
// is about to call Drain, so that the drain covers the chunks written so
// far and not (as far as the port samples its queue on entry, as the
// virtual device does) the next one, which would leave the line idle
// between them.
func (w *writer) startDrain() chan error {
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		done <- w.p.Drain()
	}()
	<-started
	return done
}
