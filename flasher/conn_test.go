package flasher

import (
	"context"
	"errors"
	"math/rand"
	"strings"
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

// Failure statuses are explained as esptool's table does (util.py,
// FatalError.WithResult; ROM reasons from Espressif's serial protocol
// documentation, stub codes from esp-flasher-stub's commands.h); a code in
// neither table is shown as unknown, not given a made-up meaning.
func TestStatusText(t *testing.T) {
	tests := []struct {
		status [2]byte
		want   string
	}{
		{[2]byte{0x01, 0x05}, "received message is invalid"},
		{[2]byte{0x01, 0x07}, "invalid CRC in message, status 0x0107"},
		{[2]byte{0x01, 0x08}, "flash write error"},
		{[2]byte{0x01, 0x0B}, "deflate error"},
		{[2]byte{0xC1, 0x00}, "bad data checksum, status 0xC100"},
		{[2]byte{0xC3, 0x00}, "invalid command"},
		{[2]byte{0xC6, 0x00}, "not in flash mode"},
		{[2]byte{0xFF, 0x00}, "command not implemented"},
		{[2]byte{0x01, 0x01}, "unknown status 0x0101"},
		{[2]byte{0x01, 0x0E}, "unknown status 0x010E"},
		{[2]byte{0xC1, 0xEE}, "unknown status 0xC1EE"},
	}
	for _, tt := range tests {
		if got := statusText(tt.status); !strings.Contains(got, tt.want) {
			t.Errorf("statusText(% x) = %q, want it to contain %q", tt.status, got, tt.want)
		}
	}
}

// How Command classifies a failed reply.
func TestCommandFailureKinds(t *testing.T) {
	tests := []struct {
		name        string
		reply       []byte
		unsupported bool
	}{
		// the ESP32 ROM after SYNC (measured on the ESP32 emulator)
		{"rom: another op with 01 05", []byte{1, 0x08, 4, 0, 7, 7, 0x12, 0x20, 1, 5, 0, 0}, true},
		// a known op with a bad length (measured: SPI_SET_PARAMS without data)
		{"rom: same op with 01 05", []byte{1, 0x14, 4, 0, 7, 7, 0x12, 0x20, 1, 5, 0, 0}, false},
		// esp-flasher-stub, command_handler.c
		{"stub: C3 00", []byte{1, 0x14, 2, 0, 0, 0, 0, 0, 0xC3, 0}, true},
		{"stub: FF 00", []byte{1, 0x14, 2, 0, 0, 0, 0, 0, 0xFF, 0}, true},
		{"stub: C0 00", []byte{1, 0x14, 2, 0, 0, 0, 0, 0, 0xC0, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := false
			p := &scriptPort{next: func() []byte {
				if sent {
					return nil
				}
				sent = true
				return slip.Encode(nil, tt.reply)
			}}
			c := NewConn(p)
			_, err := c.Command(context.Background(), OpSecurityInfo, nil, 0, 300*time.Millisecond)
			var de *DeviceError
			switch {
			case tt.unsupported && !errors.Is(err, ErrUnsupported):
				t.Fatalf("err = %v, want ErrUnsupported", err)
			case !tt.unsupported && (!errors.As(err, &de) || errors.Is(err, ErrUnsupported)):
				t.Fatalf("err = %v, want a *DeviceError", err)
			}
		})
	}
}

// romPort answers like the ESP32 ROM at a given pace: every reply frame
// arrives gap after the previous one, an unknown command is answered by
// repeating the previous reply's header with 01 05 as often as that reply
// went out (measured on the ESP32 emulator), and a purge drops only what
// has arrived.
type romPort struct {
	scriptPort
	gap     time.Duration
	mu      sync.Mutex
	queue   []timedBytes
	lastOp  byte
	lastVal uint32
	repeat  int
}

type timedBytes struct {
	at   time.Time
	data []byte
}

func (p *romPort) reply(op byte, val uint32, status byte, n int) {
	at := time.Now()
	if len(p.queue) > 0 && p.queue[len(p.queue)-1].at.After(at) {
		at = p.queue[len(p.queue)-1].at
	}
	for i := 0; i < n; i++ {
		at = at.Add(p.gap)
		f := []byte{1, op, 4, 0, byte(val), byte(val >> 8), byte(val >> 16), byte(val >> 24), 1, status, 0, 0}
		if status == 0 {
			f[8] = 0
		}
		p.queue = append(p.queue, timedBytes{at, slip.Encode(nil, f)})
	}
	p.lastOp, p.lastVal, p.repeat = op, val, n
}

func (p *romPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch op := b[2]; op { // C0, direction 00, op
	case OpSync:
		p.reply(OpSync, 0x20120707, 0, 8)
	case OpReadReg:
		p.reply(OpReadReg, 0x00F01D83, 0, 1)
	default:
		p.reply(p.lastOp, p.lastVal, 5, p.repeat)
	}
	return len(b), nil
}

func (p *romPort) Read(b []byte) (int, error) {
	deadline := time.Now().Add(p.timeout)
	for {
		p.mu.Lock()
		if len(p.queue) > 0 && !p.queue[0].at.After(time.Now()) {
			n := copy(b, p.queue[0].data)
			p.queue = p.queue[1:]
			p.mu.Unlock()
			return n, nil
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return 0, port.ErrTimeout
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func (p *romPort) ResetInputBuffer() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) > 0 && !p.queue[0].at.After(time.Now()) {
		p.queue = p.queue[1:]
	}
	return nil
}

// The repeats of an unsupported-command answer and of SYNC's replies are
// never taken as the answer to a later command, whatever the pace of the
// line (115200 baud is about 1.2 ms per reply; a remote port adds more).
func TestLateRepliesNotTakenForCurrent(t *testing.T) {
	for _, gap := range []time.Duration{0, 1200 * time.Microsecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		t.Run(gap.String(), func(t *testing.T) {
			t.Parallel()
			p := &romPort{gap: gap, repeat: 1}
			c := NewConn(p)
			ctx := context.Background()
			if _, err := c.sync(ctx); err != nil {
				t.Fatalf("sync: %v", err)
			}
			for i := 0; i < 2; i++ {
				if _, err := c.Command(ctx, OpSecurityInfo, nil, 0, time.Second); !errors.Is(err, ErrUnsupported) {
					t.Fatalf("GET_SECURITY_INFO: %v, want ErrUnsupported", err)
				}
			}
			v, err := c.ReadReg(ctx, 0x40001000)
			if err != nil || v != 0x00F01D83 {
				t.Fatalf("READ_REG after the unsupported answer = %#x, %v", v, err)
			}
			if _, err := c.Command(ctx, 0x99, nil, 0, time.Second); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unknown op after READ_REG: %v, want ErrUnsupported", err)
			}
			if v, err := c.ReadReg(ctx, 0x40001000); err != nil || v != 0x00F01D83 {
				t.Fatalf("second READ_REG = %#x, %v", v, err)
			}
		})
	}
}

// A chip reset while the stub runs brings its ROM back, and the ROM
// answers a data block it was not prepared for with 01 05 00 00 (four
// status bytes on the ESP32; measured on the ESP32 emulator with a reset in
// the middle of a write). Read as a stub reply, the last two bytes would
// say success; it must be an error instead.
func TestReplyFromAnotherLoader(t *testing.T) {
	tests := []struct {
		name      string
		statusLen int
		reply     []byte
	}{
		{"ROM reply to a stub session", 2, []byte{1, 0x11, 4, 0, 7, 7, 0x12, 0x20, 1, 5, 0, 0}},
		{"stub reply to a ROM session", 4, []byte{1, 0x11, 2, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := false
			p := &scriptPort{next: func() []byte {
				if sent {
					return nil
				}
				sent = true
				return slip.Encode(nil, tt.reply)
			}}
			c := NewConn(p)
			c.StatusLen = tt.statusLen
			_, err := c.Command(context.Background(), OpFlashDeflData, make([]byte, 20), 0, 300*time.Millisecond)
			if !errors.Is(err, ErrLoaderChanged) {
				t.Fatalf("err = %v, want ErrLoaderChanged", err)
			}
		})
	}
}

// slowPort answers READ_REG with the register's address as its value,
// each reply after the next of delays.
type slowPort struct {
	romPort
	delays []time.Duration
}

func (p *slowPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var dec slip.Decoder
	var req []byte
	for _, c := range b {
		if r, _ := dec.Push(c); r == slip.Frame {
			req = dec.Frame()
		}
	}
	d := p.delays[0]
	p.delays = p.delays[1:]
	f := append([]byte{1, OpReadReg, 4, 0}, req[8:12]...)
	p.queue = append(p.queue, timedBytes{time.Now().Add(d), slip.Encode(nil, append(f, 0, 0, 0, 0))})
	return len(b), nil
}

// A command that timed out may still be answered; that late reply has the
// op of a retry (or of the same command sent next) and must not be taken
// for its answer.
func TestLateReplyAfterTimeoutNotTaken(t *testing.T) {
	p := &slowPort{delays: []time.Duration{150 * time.Millisecond, time.Millisecond}}
	c := NewConn(p)
	c.StatusLen = 4
	ctx := context.Background()
	if _, err := c.Command(ctx, OpReadReg, le(0x1111), 0, 50*time.Millisecond); err == nil {
		t.Fatal("the first READ_REG should time out")
	}
	r, err := c.Command(ctx, OpReadReg, le(0x2222), 0, time.Second)
	if err != nil || r.Value != 0x2222 {
		t.Fatalf("second READ_REG = %v, %v; want value 0x2222, not the first command's late 0x1111", r, err)
	}
}
