package flasher

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/slip"
)

// scriptPort is a port whose received bytes come from a function: line
// noise, or canned replies mixed with junk.
type scriptPort struct {
	mu      sync.Mutex
	next    func() []byte
	timeout time.Duration
	written [][]byte
}

func (p *scriptPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	chunk := p.next()
	p.mu.Unlock()
	if len(chunk) == 0 {
		time.Sleep(p.timeout)
		return 0, port.ErrTimeout
	}
	return copy(b, chunk), nil
}
func (p *scriptPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.written = append(p.written, append([]byte(nil), b...))
	p.mu.Unlock()
	return len(b), nil
}
func (p *scriptPort) Close() error                         { return nil }
func (p *scriptPort) SetReadTimeout(d time.Duration) error { p.timeout = d; return nil }
func (p *scriptPort) SetBaudRate(int) error                { return nil }
func (p *scriptPort) BaudRate() int                        { return 115200 }
func (p *scriptPort) SetDTR(bool) error                    { return port.ErrNoControlLines }
func (p *scriptPort) SetRTS(bool) error                    { return port.ErrNoControlLines }
func (p *scriptPort) ResetInputBuffer() error              { return nil }
func (p *scriptPort) Drain() error                         { return nil }
func (p *scriptPort) Name() string                         { return "script" }

// Pure line noise (a wrong baud rate, a floating RX pin): Connect gives up
// with a ConnectError after its attempts, without hanging or panicking.
func TestConnectGarbageOnTheLine(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	p := &scriptPort{next: func() []byte {
		b := make([]byte, 64)
		rng.Read(b)
		return b
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Connect(ctx, p, ConnectOptions{Reset: "none", Attempts: 2})
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConnectError", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("giving up took %v", time.Since(start))
	}
}

// A reply surrounded by boot messages and noise, and preceded by a reply
// to another command, is still found.
func TestResponseAmongJunk(t *testing.T) {
	reply := slip.Encode(nil, []byte{1, 0x0A, 4, 0, 0x83, 0x1D, 0xF0, 0x00, 0, 0, 0, 0})
	stale := slip.Encode(nil, []byte{1, 0x08, 4, 0, 7, 7, 0x12, 0x20, 0, 0, 0, 0})
	script := [][]byte{[]byte("rst:0x1 (POWERON_RESET)\r\n\xff\x00"), stale, []byte("noise\xdb"), reply}
	p := &scriptPort{next: func() []byte {
		if len(script) == 0 {
			return nil
		}
		c := script[0]
		script = script[1:]
		return c
	}}
	c := NewConn(p)
	c.StatusLen = 4
	v, err := c.ReadReg(context.Background(), 0x40001000)
	if err != nil || v != 0x00F01D83 {
		t.Fatalf("ReadReg = %#x, %v", v, err)
	}
	if string(c.Junk[:5]) != "rst:0" {
		t.Errorf("junk before the frames not kept for boot-mode detection: %q", c.Junk)
	}
}

// Cancelling the context (Ctrl-C) stops a read that would otherwise wait.
func TestConnectCancel(t *testing.T) {
	p := &scriptPort{next: func() []byte { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := Connect(ctx, p, ConnectOptions{Reset: "none", Attempts: 7})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("cancel took %v", el)
	}
}
