package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
)

// memPort is an in-memory port.Port whose other end is a fakeDevice. It
// records how the host wrote: chunk sizes, drains, and when.
type memPort struct {
	mu      sync.Mutex
	in      []byte        // device -> host, not yet read
	arrived chan struct{} // closed and replaced when in grows
	timeout time.Duration
	closed  bool
	baud    int

	toDev  chan []byte
	writes []write
	drains int
}

type write struct {
	n            int
	at           time.Time
	drainsBefore int // Drain calls finished before this write
	drains       int // index of the first Drain that covers this write
}

func newMemPort() *memPort {
	return &memPort{arrived: make(chan struct{}), baud: 115200, toDev: make(chan []byte, 1024)}
}

func (p *memPort) Read(b []byte) (int, error) {
	deadline := time.Now().Add(p.timeout)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return 0, port.ErrClosed
		}
		if len(p.in) > 0 {
			n := copy(b, p.in)
			p.in = p.in[n:]
			p.mu.Unlock()
			return n, nil
		}
		ch := p.arrived
		p.mu.Unlock()
		left := time.Until(deadline)
		if p.timeout <= 0 {
			left = time.Hour
		}
		if left <= 0 {
			return 0, port.ErrTimeout
		}
		select {
		case <-ch:
		case <-time.After(left):
		}
	}
}

// deviceSend is the device's UART transmitter.
func (p *memPort) deviceSend(b []byte) {
	p.mu.Lock()
	p.in = append(p.in, b...)
	close(p.arrived)
	p.arrived = make(chan struct{})
	p.mu.Unlock()
}

func (p *memPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, port.ErrClosed
	}
	p.writes = append(p.writes, write{n: len(b), at: time.Now(), drainsBefore: p.drains, drains: p.drains + 1})
	p.mu.Unlock()
	p.toDev <- append([]byte(nil), b...)
	return len(b), nil
}

func (p *memPort) Drain() error {
	p.mu.Lock()
	p.drains++
	p.mu.Unlock()
	return nil
}

func (p *memPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.toDev)
	}
	return nil
}

func (p *memPort) SetReadTimeout(d time.Duration) error { p.timeout = d; return nil }
func (p *memPort) SetBaudRate(baud int) error           { p.baud = baud; return nil }
func (p *memPort) BaudRate() int                        { return p.baud }
func (p *memPort) SetDTR(bool) error                    { return port.ErrNoControlLines }
func (p *memPort) SetRTS(bool) error                    { return port.ErrNoControlLines }
func (p *memPort) ResetInputBuffer() error              { return nil }
func (p *memPort) Name() string                         { return "mem://fake" }

func (p *memPort) writeLog() []write {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]write(nil), p.writes...)
}

// fakeRequest is a request as the fake device parsed it.
type fakeRequest struct {
	ID     json.RawMessage `json:"id"`
	Src    string          `json:"src"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Auth   *struct {
		Realm    string          `json:"realm"`
		Username string          `json:"username"`
		Nonce    json.RawMessage `json:"nonce"`
		CNonce   uint64          `json:"cnonce"`
		Response string          `json:"response"`
	} `json:"auth"`
	frame []byte // as received, JSON and CRC
}

// rpcErr is an error reply of the fake device.
type rpcErr struct {
	Code    int    `json:"code"`
	Message string `json:"message,omitempty"`
}

// fakeDevice is firmware with the Mongoose OS rpc-uart framing: it cuts
// frames as the real one does, checks CRCs, echoes the handshake, and
// answers through handle. Knobs make it misbehave.
type fakeDevice struct {
	t    *testing.T
	port *memPort

	mu        sync.Mutex
	handle    func(r *fakeRequest) (any, *rpcErr)
	requests  []*fakeRequest
	sawCRC    bool // the host sent a good CRC: replies carry one from now on
	sawQuotes bool // the host used """: replies use it from now on
	// knobs, set before use
	silent        bool           // no RPC at all (other firmware)
	ignore        map[string]int // method -> how many requests to leave unanswered
	corrupt       map[string]int // method -> how many replies to send with a bad CRC
	reject        map[string]int // method -> how many requests to drop as damaged, saying so in the log
	logBefore     string         // console text sent right before every reply
	junk          string         // console text sent in the middle of a reply frame's line
	onRequest     func(r *fakeRequest)
	rxBuf         []byte
	badHostFrames int // frames from the host whose CRC did not match
}

func newFakeDevice(t *testing.T, handle func(r *fakeRequest) (any, *rpcErr)) *fakeDevice {
	d := &fakeDevice{t: t, port: newMemPort(), handle: handle, ignore: map[string]int{}, corrupt: map[string]int{}, reject: map[string]int{}}
	go d.run()
	t.Cleanup(func() { d.port.Close() })
	return d
}

func (d *fakeDevice) run() {
	for b := range d.port.toDev {
		d.receive(b)
	}
}

// receive cuts frames as the firmware does: at """ if the buffer holds one,
// else at a newline.
func (d *fakeDevice) receive(b []byte) {
	d.mu.Lock()
	d.rxBuf = append(d.rxBuf, b...)
	d.mu.Unlock()
	for {
		d.mu.Lock()
		buf := d.rxBuf
		var seg []byte
		if i := bytes.Index(buf, []byte(delim)); i >= 0 {
			seg, d.rxBuf = buf[:i], buf[i+len(delim):]
			d.sawQuotes = true
		} else if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			seg, d.rxBuf = buf[:i], buf[i+1:]
		} else {
			d.mu.Unlock()
			return
		}
		d.rxBuf = append([]byte(nil), d.rxBuf...)
		d.mu.Unlock()
		d.segment(seg)
	}
}

func (d *fakeDevice) segment(seg []byte) {
	if d.silent {
		return
	}
	if len(seg) == 1 && seg[0] == eot {
		d.port.deviceSend([]byte("\n\"\"\"\x04\"\"\"\n"))
		return
	}
	if i := bytes.IndexByte(seg, '{'); i >= 0 {
		seg = seg[i:]
	} else {
		if len(bytes.TrimSpace(seg)) == 0 {
			d.port.deviceSend([]byte("\n"))
		}
		return
	}
	js, err := splitFrame(seg)
	if err != nil {
		d.mu.Lock()
		d.badHostFrames++
		d.mu.Unlock()
		d.port.deviceSend([]byte("mgos_rpc_channel_ua:97  Corrupted frame\n"))
		return
	}
	var r fakeRequest
	if err := json.Unmarshal(js, &r); err != nil {
		d.t.Errorf("fake device: bad request JSON %s: %v", js, err)
		return
	}
	r.frame = append([]byte(nil), seg...)
	d.mu.Lock()
	if len(js) < len(seg) {
		d.sawCRC = true
	}
	d.requests = append(d.requests, &r)
	if d.reject[r.Method] > 0 {
		d.reject[r.Method]--
		d.mu.Unlock()
		d.log("mgos_rpc_channel_uart.c:192 0x3ffb4c10 Corrupted frame (0badcafe != 12345678)")
		return
	}
	skip := d.ignore[r.Method] > 0
	if skip {
		d.ignore[r.Method]--
	}
	corrupt := !skip && d.corrupt[r.Method] > 0
	if corrupt {
		d.corrupt[r.Method]--
	}
	hook := d.onRequest
	d.mu.Unlock()
	if hook != nil {
		hook(&r)
	}
	if skip || r.ID == nil || d.silent {
		return
	}
	result, rerr := d.handle(&r)
	d.reply(&r, result, rerr, corrupt)
}

// reply sends a response in the device's exact envelope order.
func (d *fakeDevice) reply(r *fakeRequest, result any, rerr *rpcErr, corrupt bool) {
	var body bytes.Buffer
	fmt.Fprintf(&body, `{"id":%s,"src":"esp32_A1B2C3","dst":%q`, r.ID, r.Src)
	if rerr != nil {
		e, _ := json.Marshal(rerr)
		fmt.Fprintf(&body, `,"error":%s}`, e)
	} else {
		res, err := json.Marshal(result)
		if err != nil {
			d.t.Errorf("fake device: %v", err)
		}
		fmt.Fprintf(&body, `,"result":%s}`, res)
	}
	js := body.Bytes()
	d.mu.Lock()
	crc, quotes := d.sawCRC, d.sawQuotes
	d.mu.Unlock()
	var out bytes.Buffer
	out.WriteString(d.logBefore)
	out.WriteByte('\n')
	if quotes {
		out.WriteString(delim)
	}
	out.Write(js)
	if crc {
		sum := crc32.ChecksumIEEE(js)
		if corrupt {
			sum ^= 1
		}
		fmt.Fprintf(&out, "%08x", sum)
	}
	if quotes {
		out.WriteString(delim)
	}
	out.WriteByte('\n')
	d.port.deviceSend(out.Bytes())
}

func (d *fakeDevice) log(lines ...string) {
	for _, l := range lines {
		d.port.deviceSend([]byte(l + "\r\n"))
	}
}

func (d *fakeDevice) methods() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m []string
	for _, r := range d.requests {
		m = append(m, r.Method)
	}
	return m
}

func (d *fakeDevice) lastRequest(method string) *fakeRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.requests) - 1; i >= 0; i-- {
		if d.requests[i].Method == method {
			return d.requests[i]
		}
	}
	return nil
}

// fastOpts keeps tests quick: short timeouts, no pauses.
func fastOpts() Options {
	return Options{CallTimeout: 300 * time.Millisecond, HandshakeTimeout: 500 * time.Millisecond}
}

func connectFake(t *testing.T, d *fakeDevice, o Options) *Client {
	t.Helper()
	c, err := Connect(t.Context(), d.port, o)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// methodTable answers from a map of method -> handler, 404 otherwise.
func methodTable(m map[string]func(r *fakeRequest) (any, *rpcErr)) func(r *fakeRequest) (any, *rpcErr) {
	return func(r *fakeRequest) (any, *rpcErr) {
		if h, ok := m[r.Method]; ok {
			return h(r)
		}
		return nil, &rpcErr{Code: 404, Message: "No handler for " + r.Method}
	}
}
