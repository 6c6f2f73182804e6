package port

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// maxBuffered bounds the received bytes a TCP port holds for Read. When it
// is reached the background reader stops reading, so TCP flow control
// slows the sender down instead of memory growing.
const maxBuffered = 1 << 20

// tcpReadChunk is the size of one read from the connection.
const tcpReadChunk = 16 << 10

// openSocket opens a raw TCP port (socket://host:port): the bytes are the
// serial data, there are no control lines and the baud rate is whatever the
// other end runs at.
func openSocket(ctx context.Context, name, hostport string, baud int) (Port, error) {
	conn, err := dialTCP(ctx, name, hostport)
	if err != nil {
		return nil, err
	}
	p := &socketPort{tcpStream: newTCPStream(name, conn, baud)}
	go p.readLoop(p.deliver)
	return p, nil
}

// socketPort is a raw TCP port.
type socketPort struct {
	*tcpStream
}

func (p *socketPort) Write(b []byte) (int, error) {
	if err := p.writeRaw("write", b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// SetBaudRate only records the rate: there is nobody to tell.
func (p *socketPort) SetBaudRate(baud int) error {
	if err := p.checkOpen(); err != nil {
		return err
	}
	if baud <= 0 {
		return fmt.Errorf("set baud rate on %s: invalid rate %d", p.name, baud)
	}
	p.setBaud(baud)
	return nil
}

func (p *socketPort) SetDTR(on bool) error { return p.noControlLines() }
func (p *socketPort) SetRTS(on bool) error { return p.noControlLines() }

func (p *socketPort) noControlLines() error {
	if err := p.checkOpen(); err != nil {
		return err
	}
	return ErrNoControlLines
}

func (p *socketPort) ResetInputBuffer() error {
	if err := p.checkOpen(); err != nil {
		return err
	}
	p.dropBuffered()
	return nil
}

// dialTCP checks hostport and connects to it.
func dialTCP(ctx context.Context, name, hostport string) (net.Conn, error) {
	host, portNum, err := net.SplitHostPort(hostport)
	if err == nil && (host == "" || portNum == "" || strings.ContainsAny(hostport, "/?#")) {
		err = errors.New("want HOST:PORT")
	}
	if err != nil {
		return nil, &Error{Kind: KindBadAddress, Port: name, Op: "open", Err: err}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, &Error{Kind: KindUnreachable, Port: name, Op: "open", Err: err}
	}
	return conn, nil
}

// tcpStream is what raw TCP and RFC 2217 ports share: the connection, a
// background reader filling a bounded buffer, Read with a timeout, and
// serialised writes.
type tcpStream struct {
	name string
	conn net.Conn

	mu          sync.Mutex
	buf         []byte // received and not yet read: buf[off:]
	off         int
	readErr     error // why the background reader stopped
	readTimeout time.Duration
	baud        int
	closed      bool

	dataReady  chan struct{} // wakes Read after data or an error arrived
	spaceReady chan struct{} // wakes the background reader after Read made room
	done       chan struct{} // closed by Close
	readerDone chan struct{} // closed when the background reader stops

	writeMu sync.Mutex // one write on the connection at a time
}

func newTCPStream(name string, conn net.Conn, baud int) *tcpStream {
	return &tcpStream{
		name:       name,
		conn:       conn,
		baud:       baud,
		dataReady:  make(chan struct{}, 1),
		spaceReady: make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
}

// wake signals ch without blocking; one pending signal is enough.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// readLoop reads the connection until it fails, passing each chunk to
// handle, which returns false to stop.
func (s *tcpStream) readLoop(handle func([]byte) bool) {
	defer close(s.readerDone)
	chunk := make([]byte, tcpReadChunk)
	for {
		n, err := s.conn.Read(chunk)
		if n > 0 && !handle(chunk[:n]) {
			return
		}
		if err != nil {
			s.mu.Lock()
			s.readErr = &Error{Kind: KindDisconnected, Port: s.name, Op: "read", Err: err}
			s.mu.Unlock()
			wake(s.dataReady)
			return
		}
	}
}

// deliver queues data for Read, waiting while the buffer is full. It
// returns false once the port is closed.
func (s *tcpStream) deliver(data []byte) bool {
	s.mu.Lock()
	for len(s.buf)-s.off >= maxBuffered && !s.closed {
		s.mu.Unlock()
		select {
		case <-s.spaceReady:
		case <-s.done:
		}
		s.mu.Lock()
	}
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if s.off > 0 && len(s.buf)+len(data) > cap(s.buf) {
		// Move the unread bytes to the front rather than grow.
		s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
		s.off = 0
	}
	s.buf = append(s.buf, data...)
	s.mu.Unlock()
	wake(s.dataReady)
	return true
}

// Read returns buffered data, waiting up to the read timeout for some to
// arrive. Data received before the connection failed is returned before the
// error.
func (s *tcpStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	timeout := s.readTimeout
	s.mu.Unlock()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return 0, ErrClosed
		case len(p) == 0:
			s.mu.Unlock()
			return 0, nil
		case s.off < len(s.buf):
			n := copy(p, s.buf[s.off:])
			s.off += n
			if s.off == len(s.buf) {
				s.buf, s.off = s.buf[:0], 0
			}
			s.mu.Unlock()
			wake(s.spaceReady)
			return n, nil
		case s.readErr != nil:
			err := s.readErr
			s.mu.Unlock()
			return 0, err
		}
		s.mu.Unlock()
		select {
		case <-s.dataReady:
		case <-expired:
			return 0, ErrTimeout
		case <-s.done:
			return 0, ErrClosed
		}
	}
}

// dropBuffered discards data received and not yet read.
func (s *tcpStream) dropBuffered() {
	s.mu.Lock()
	s.buf, s.off = s.buf[:0], 0
	s.mu.Unlock()
	wake(s.spaceReady)
}

// writeRaw writes b to the connection as it is.
func (s *tcpStream) writeRaw(op string, b []byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.conn.Write(b); err != nil {
		if s.checkOpen() != nil {
			return ErrClosed // our own Close broke the write
		}
		return &Error{Kind: KindDisconnected, Port: s.name, Op: op, Err: err}
	}
	return nil
}

func (s *tcpStream) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

func (s *tcpStream) SetReadTimeout(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.readTimeout = d
	return nil
}

func (s *tcpStream) setBaud(baud int) {
	s.mu.Lock()
	s.baud = baud
	s.mu.Unlock()
}

func (s *tcpStream) BaudRate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baud
}

// Drain has nothing to wait for: writes go straight to the kernel, which
// sends them on its own.
func (s *tcpStream) Drain() error { return s.checkOpen() }

func (s *tcpStream) Name() string { return s.name }

// Close closes the connection, which also stops the background reader. A
// second Close returns ErrClosed.
func (s *tcpStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	if err := s.conn.Close(); err != nil {
		return &Error{Kind: KindOther, Port: s.name, Op: "close", Err: err}
	}
	return nil
}
