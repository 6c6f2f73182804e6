// Package serve shares one serial port (a USB-UART bridge, another RFC 2217
// server, or the virtual device) with clients over TCP, one client at a
// time: as an RFC 2217 access server, and optionally as a raw byte stream.
//
// An RFC 2217 client changes DTR and RTS one command at a time, and over a
// network each change lands one round trip after the previous one, which is
// longer than the EN pin's RC delay on an ESP board's auto-reset circuit:
// the chip leaves reset with IO0 already released and boots its firmware
// instead of the ROM loader (esptool's documentation, "Remote Serial Ports",
// explains this and points to its esp_rfc2217_server). So by default the
// server recognises the start of the reset sequences esptool, esptool-js
// and mos send and plays them on the port itself with the right timing
// (see espLines); Options.Plain passes every change through as ser2net
// does.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/rfc2217"
)

// DefaultResetDelay is how long IO0 stays low after EN is released in the
// download-mode reset: esptool's DEFAULT_RESET_DELAY (esptool/reset.py).
const DefaultResetDelay = 50 * time.Millisecond

// leaveGrace is how long a new client waits for the previous one's
// session to wind down (its reader notices the disconnect within
// pollInterval, then the port is released): a tool that reconnects at once,
// as mos does between commands, is not refused.
const leaveGrace = time.Second

// pollInterval bounds how long the port reader waits before it looks
// whether its client has gone.
const pollInterval = 50 * time.Millisecond

// Options configure a Server.
type Options struct {
	// Plain passes each DTR/RTS change through as it arrives, like a
	// plain ser2net: faithful, but too slow for the auto-reset circuit
	// over a network.
	Plain bool
	// ResetDelay is how long IO0 is held low after EN is released in a
	// download-mode reset (0: DefaultResetDelay). Old ESP32 revision 0
	// boards want 500 ms more (esp_rfc2217_server's --r0 option).
	ResetDelay time.Duration
	// Log receives what a user running the server should see: clients
	// connecting, leaving and refused. Nil discards.
	Log func(msg string)
	// Debug receives details: each reset played on the port. Nil discards.
	Debug func(msg string)
}

// Server serves one port to one client at a time, across all the
// listeners given to ServeRFC2217 and ServeRaw.
type Server struct {
	p    port.Port
	opts Options
	baud int // the rate each client starts at, restored after it leaves

	mu     sync.Mutex
	client string        // address of the connected client; "" when free
	left   chan struct{} // closed when that client's session has ended
	done   chan struct{}
	err    error // the port failed: the server stops
}

// New returns a server for p, which must be open at the rate clients
// should find it at. It releases both lines (the board runs) and gives p a
// short read timeout, so that a session notices its client leaving. The
// server does not close p.
func New(p port.Port, o Options) (*Server, error) {
	if o.ResetDelay <= 0 {
		o.ResetDelay = DefaultResetDelay
	}
	if err := p.SetReadTimeout(pollInterval); err != nil {
		return nil, err
	}
	if err := errors.Join(port.IgnoreNoLines(p.SetDTR(false)), port.IgnoreNoLines(p.SetRTS(false))); err != nil {
		return nil, err
	}
	return &Server{p: p, opts: o, baud: p.BaudRate(), done: make(chan struct{})}, nil
}

func (s *Server) log(format string, a ...any) {
	if s.opts.Log != nil {
		s.opts.Log(fmt.Sprintf(format, a...))
	}
}

func (s *Server) debug(format string, a ...any) {
	if s.opts.Debug != nil {
		s.opts.Debug(fmt.Sprintf(format, a...))
	}
}

// ServeRFC2217 accepts RFC 2217 clients on ln until ctx ends, ln fails or
// the port fails. Baud rate changes, purges and the control lines are
// carried (the lines as Options say).
func (s *Server) ServeRFC2217(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, func(conn net.Conn, lines lineHandler) (io.ReadWriter, error) {
		return rfc2217.NewServerConn(conn, lines, s.p.BaudRate())
	})
}

// ServeRaw accepts clients on ln that get the port as a plain byte stream
// at baud: no control lines and no baud changes, like a raw socket
// serial server. A device that changes its own rate becomes garbage to
// such a client, as on a real raw port.
func (s *Server) ServeRaw(ctx context.Context, ln net.Listener, baud int) error {
	return s.serve(ctx, ln, func(conn net.Conn, _ lineHandler) (io.ReadWriter, error) {
		if err := s.p.SetBaudRate(baud); err != nil {
			return nil, err
		}
		return conn, nil
	})
}

// lineHandler is what an RFC 2217 session's commands are applied through.
type lineHandler interface {
	rfc2217.Handler
	// finish waits for resets in progress; the session is over.
	finish()
}

func (s *Server) serve(ctx context.Context, ln net.Listener, wrap func(net.Conn, lineHandler) (io.ReadWriter, error)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() { // another listener's session found the port broken
		select {
		case <-s.done:
			ln.Close()
		case <-ctx.Done():
		}
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if err := s.portErr(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := conn.RemoteAddr().String()
			left, busy := s.claim(ctx, addr)
			if busy != "" {
				s.refuse(conn, addr, busy)
				return
			}
			defer close(left)
			s.session(ctx, conn, addr, wrap)
		}()
	}
}

// claim makes addr the client, once the previous client (if any) has
// left within leaveGrace. It returns the channel to close when the session
// ends, or the current client's address when the port stays busy.
func (s *Server) claim(ctx context.Context, addr string) (left chan struct{}, busy string) {
	timer := time.NewTimer(leaveGrace)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.client == "" {
			s.client, s.left = addr, make(chan struct{})
			left := s.left
			s.mu.Unlock()
			return left, ""
		}
		busy, prev := s.client, s.left
		s.mu.Unlock()
		select {
		case <-prev:
		case <-timer.C:
			return nil, busy
		case <-ctx.Done():
			return nil, busy
		}
	}
}

// refuse tells a client that the port is busy and closes its connection.
func (s *Server) refuse(conn net.Conn, addr, busy string) {
	s.log("refused %s: the port is in use by %s", addr, busy)
	defer conn.Close()
	// Plain text, before any negotiation: a telnet or raw client shows it
	// as it is, and mos's client reports it.
	conn.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(conn, "%s is in use by another client (%s); try again when it has disconnected\r\n", s.p.Name(), busy)
	// Closing with the client's negotiation unread would reset the
	// connection and lose the message: end our side, then read until the
	// client closes (or the deadline).
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
		io.Copy(io.Discard, conn)
	}
}

func (s *Server) portErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// failPort records that the port broke; every listener stops.
func (s *Server) failPort(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf("serving %s: %w", s.p.Name(), err)
		close(s.done)
	}
}

// session pumps bytes between one client and the port until either ends,
// then leaves the port as the next client should find it.
func (s *Server) session(ctx context.Context, conn net.Conn, addr string, wrap func(net.Conn, lineHandler) (io.ReadWriter, error)) {
	s.log("client %s connected", addr)
	defer func() {
		s.mu.Lock()
		s.client = ""
		s.mu.Unlock()
		s.log("client %s disconnected", addr)
	}()
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var lines lineHandler
	if s.opts.Plain {
		lines = plainLines{s.p}
	} else {
		lines = newESPLines(s)
	}
	defer s.release(lines)
	rw, err := wrap(conn, lines)
	if err != nil {
		s.log("client %s: %v", addr, err)
		return
	}

	var over sync.WaitGroup
	ended := make(chan struct{})
	var endOnce sync.Once
	end := func() { endOnce.Do(func() { close(ended); conn.Close() }) }
	over.Add(2)
	go func() { // client -> port
		defer over.Done()
		defer end()
		buf := make([]byte, 4096)
		for {
			n, err := rw.Read(buf)
			if n > 0 {
				if _, werr := s.p.Write(buf[:n]); werr != nil {
					s.failPort(werr)
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // port -> client
		defer over.Done()
		defer end()
		buf := make([]byte, 4096)
		for {
			n, err := s.p.Read(buf)
			if n > 0 {
				if _, werr := rw.Write(buf[:n]); werr != nil {
					return
				}
			}
			select {
			case <-ended:
				return
			default:
			}
			if err != nil && !errors.Is(err, port.ErrTimeout) {
				s.failPort(err)
				return
			}
		}
	}()
	over.Wait()
}

// release leaves the port as a client finds it: resets in progress
// finished, both lines released (the board runs), the starting rate, and
// nothing stale in the receive buffer.
func (s *Server) release(lines lineHandler) {
	lines.finish()
	for _, err := range []error{
		port.IgnoreNoLines(s.p.SetDTR(false)),
		port.IgnoreNoLines(s.p.SetRTS(false)),
		s.p.SetBaudRate(s.baud),
		s.p.ResetInputBuffer(),
	} {
		if err != nil {
			s.log("resetting %s after the client left: %v", s.p.Name(), err)
			return
		}
	}
}

// plainLines applies every change as it comes.
type plainLines struct{ p port.Port }

func (l plainLines) SetBaud(baud int) error { return l.p.SetBaudRate(baud) }
func (l plainLines) SetDTR(on bool) error   { return l.p.SetDTR(on) }
func (l plainLines) SetRTS(on bool) error   { return l.p.SetRTS(on) }
func (l plainLines) Purge(rx, tx bool) error {
	if rx {
		return l.p.ResetInputBuffer()
	}
	return nil // bytes already handed to the port are on their way
}
func (l plainLines) finish() {}
