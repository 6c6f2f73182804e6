package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/port"
)

// Options configure a Client. The zero value works.
type Options struct {
	// CallTimeout is how long one attempt of a request waits for its
	// reply (default 10 s).
	CallTimeout time.Duration
	// Attempts is how many times a request that is safe to repeat is sent
	// before giving up (default 3; see Retried).
	Attempts int
	// HandshakeTimeout bounds the wait for the device to answer at all,
	// on Connect and after a reboot (default 5 s, mos's own patience
	// before it asked whether it had the right port).
	HandshakeTimeout time.Duration
	// Username and Password answer the device's digest authentication
	// challenge (rpc.auth_file); without them a 401 is an error.
	Username, Password string
	// WriteChunk is the number of bytes written between two drains
	// (default: chunkSize of the port's baud rate).
	WriteChunk int
	// Log receives the device's console output, one line at a time, from
	// the Client's reader goroutine. It must not block.
	Log func(line string)
	// Debug receives notes on the link (retries, corrupted frames, stale
	// XOFF). It must not block.
	Debug func(msg string)
}

func (o *Options) setDefaults(p port.Port) {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 5 * time.Second
	}
	if o.WriteChunk <= 0 {
		o.WriteChunk = chunkSize(p.BaudRate())
	}
}

// Stats counts what happened on the link since Connect.
type Stats struct {
	BytesSent    int64 // bytes written to the port, framing included
	BytesRead    int64 // bytes read from the port, log and flow control included
	Requests     int   // frames sent, retries included
	Retries      int   // requests sent again
	CorruptReads int   // frames from the device dropped for a bad CRC
	XOFFs        int   // times the device said XOFF
	StaleXOFFs   int   // XOFFs given up on after maxXOFF without an XON
	Boots        int   // boot messages seen in the log (a restart shows one or two)
}

// Client is an RPC connection to the firmware over a port. It is safe for
// concurrent use. It reads the port from its own goroutine until Close;
// the port stays the caller's to close.
type Client struct {
	p    port.Port
	opts Options
	w    *writer
	gate *gate

	eot      signal // a handshake echo arrived
	boot     signal // the device restarted
	rejected signal // the firmware logged that it dropped a frame

	mu       sync.Mutex
	pending  map[uint64]chan reply
	logSubs  map[chan string]struct{}
	recent   []string // the last console lines, for NoAnswerError
	readErr  error    // the reader stopped on this
	stats    Stats
	auth     *challenge // the last digest challenge, reused until refused
	stopping bool

	dead chan struct{} // closed when the reader stops
	read atomic.Int64  // bytes read, for Stats
}

// reply is what the reader hands to a waiting request: a response, or
// news that one with its id arrived corrupted.
type reply struct {
	resp    *response
	corrupt bool
}

type response struct {
	ID     json.RawMessage `json:"id"`
	Src    string          `json:"src"`
	Dst    string          `json:"dst"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Connect starts reading p and waits for the firmware to answer the RPC
// handshake (at most Options.HandshakeTimeout). It does not touch the
// modem lines: opening the port without resetting the board is the
// caller's business.
func Connect(ctx context.Context, p port.Port, opts Options) (*Client, error) {
	// The reader polls so that Close can stop it without closing the port.
	if err := p.SetReadTimeout(readPoll); err != nil {
		return nil, err
	}
	c := start(p, opts)
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

const readPoll = 50 * time.Millisecond

// start builds a Client and starts its reader, without a handshake.
func start(p port.Port, opts Options) *Client {
	opts.setDefaults(p)
	g := newGate()
	c := &Client{
		p:       p,
		opts:    opts,
		gate:    g,
		w:       &writer{p: p, gate: g, chunk: opts.WriteChunk},
		pending: map[uint64]chan reply{},
		logSubs: map[chan string]struct{}{},
		dead:    make(chan struct{}),
	}
	go c.readLoop()
	return c
}

// Close stops the reader. Requests still waiting fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	<-c.dead
	return nil
}

// Stats returns the link counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	s := c.stats
	c.mu.Unlock()
	c.gate.mu.Lock()
	s.XOFFs, s.StaleXOFFs = c.gate.xoffs, c.gate.stale
	c.gate.mu.Unlock()
	s.BytesSent, s.BytesRead = c.w.sent.Load(), c.read.Load()
	return s
}

func (c *Client) debugf(format string, args ...any) {
	if c.opts.Debug != nil {
		c.opts.Debug(fmt.Sprintf(format, args...))
	}
}

func (c *Client) readLoop() {
	defer close(c.dead)
	sc := newScanner(c.handleFrame, c.handleLine)
	buf := make([]byte, 4096)
	data := make([]byte, 0, len(buf))
	for {
		n, err := c.p.Read(buf)
		c.read.Add(int64(n))
		data = data[:0]
		for _, b := range buf[:n] {
			switch b {
			case xoff:
				c.gate.set(true)
			case xon:
				c.gate.set(false)
			default:
				data = append(data, b)
			}
		}
		sc.feed(data)
		c.mu.Lock()
		stop := c.stopping
		if err != nil && !errors.Is(err, port.ErrTimeout) && !stop {
			c.readErr = err
			stop = true
		}
		c.mu.Unlock()
		if stop {
			return
		}
	}
}

// handleFrame takes a frame body from the scanner; false means it was not
// an RPC frame after all.
func (c *Client) handleFrame(body []byte) bool {
	if len(body) == 1 && body[0] == eot {
		c.eot.fire()
		return true
	}
	js, err := splitFrame(body)
	if errors.Is(err, errNotJSON) {
		return false
	}
	var r response
	isReply := json.Unmarshal(js, &r) == nil && r.ID != nil && (r.Result != nil || r.Error != nil)
	if err == nil && !isReply {
		return false // JSON, but not a reply: a log line that looks like one
	}
	id, idOK := parseID(r.ID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.stats.CorruptReads++
		c.debugf("dropped a corrupted frame: %v", err)
		// The id may have survived: let its request retry now rather than
		// wait out its timeout.
		if ch, ok := c.pending[id]; ok && idOK {
			deliver(ch, reply{corrupt: true})
		}
		return true
	}
	if ch, ok := c.pending[id]; ok && idOK {
		deliver(ch, reply{resp: &r})
	} else {
		c.debugf("dropped a reply nobody waits for (id %s)", r.ID)
	}
	return true
}

func deliver(ch chan reply, r reply) {
	select {
	case ch <- r:
	default: // the request has what it needs already
	}
}

// parseID reads a reply's id: a bare number, or a quoted one.
func parseID(raw json.RawMessage) (uint64, bool) {
	s := strings.Trim(string(raw), `"`)
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil
}

func (c *Client) handleLine(b []byte) {
	line := string(b)
	if isFrameRejected(line) {
		c.rejected.fire()
	}
	if isBootLine(line) {
		c.mu.Lock()
		c.stats.Boots++
		c.mu.Unlock()
		// A device that restarted has an empty FIFO and forgot its XOFF.
		c.gate.set(false)
		c.boot.fire()
	}
	c.mu.Lock()
	c.recent = append(c.recent, line)
	if len(c.recent) > 3 {
		c.recent = c.recent[1:]
	}
	for ch := range c.logSubs {
		select {
		case ch <- line:
		default: // a subscriber too slow loses lines rather than the reader stalling
		}
	}
	c.mu.Unlock()
	if c.opts.Log != nil {
		c.opts.Log(line)
	}
}

// isBootLine recognises the first lines a chip prints after a reset: the
// ROM's reset reason (ESP32 family, ESP8266 when read at its 74880 baud),
// the ESP8266's rBoot banner, and Mongoose OS's own banner, which is the
// first readable line of an ESP8266 without rBoot (its ROM line is
// garbage at 115200).
func isBootLine(line string) bool {
	return strings.HasPrefix(line, "rst:0x") ||
		strings.Contains(line, "ets Jan  8 2013,rst cause:") ||
		strings.HasPrefix(line, "rBoot v") ||
		strings.HasPrefix(line, "ESP-ROM:") ||
		mgosBanner.MatchString(line)
}

// isFrameRejected recognises the firmware saying it dropped a frame it
// received damaged (bytes lost in an overrun, line noise): the request in
// it was not carried out, and waiting for its reply is pointless.
func isFrameRejected(line string) bool {
	return strings.Contains(line, "Corrupted frame") ||
		strings.Contains(line, "Invalid frame") ||
		strings.Contains(line, "Incoming frame is too big")
}

// mgosBanner is "mgos_freertos.c:100     Mongoose OS 2.20.0 (...)".
var mgosBanner = regexp.MustCompile(`^[a-z0-9_]+\.c:\d+ +Mongoose OS \d`)

// subscribeLog returns a channel receiving console lines from now on, and
// a function to stop.
func (c *Client) subscribeLog() (<-chan string, func()) {
	ch := make(chan string, 1024)
	c.mu.Lock()
	c.logSubs[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.logSubs, ch)
		c.mu.Unlock()
	}
}

// broken reports why the reader stopped, if it did.
func (c *Client) broken() error {
	select {
	case <-c.dead:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr != nil {
		return c.readErr
	}
	return errClientClosed
}

var errClientClosed = errors.New("provision: client is closed")

// signal is a broadcast event: C returns a channel closed by the next fire.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
	}
	s.ch = make(chan struct{})
}
