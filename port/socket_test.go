package port

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// expectKind fails t unless err is a *Error of the given kind.
func expectKind(t *testing.T, err error, kind ErrorKind) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != kind {
		t.Fatalf("error %v (%T), want a *port.Error of kind %d", err, err, kind)
	}
}

// readExactly reads n bytes from p, failing t on an error or after 5s.
func readExactly(t *testing.T, p Port, n int) []byte {
	t.Helper()
	if err := p.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, n)
	for off := 0; off < n; {
		k, err := p.Read(got[off:])
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", off, n, err)
		}
		off += k
	}
	return got
}

// closedAddress returns a loopback address nobody listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// acceptOne listens on loopback and returns the address and a channel that
// yields the first connection.
func acceptOne(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			close(conns)
			return
		}
		t.Cleanup(func() { c.Close() })
		conns <- c
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), conns
}

// openRawSocket opens socket://ADDR against a fresh listener and returns
// both ends.
func openRawSocket(t *testing.T) (Port, net.Conn) {
	t.Helper()
	addr, conns := acceptOne(t)
	p, err := Open(context.Background(), "socket://"+addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, <-conns
}

func TestSocketDataBothWays(t *testing.T) {
	p, remote := openRawSocket(t)
	payload := []byte{0xff, 0, 0xfd, '\r', 0, 0xff, 0xff} // telnet bytes pass unchanged
	if n, err := p.Write(payload); n != len(payload) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(remote, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("remote read %v, %v; want %v unchanged", got, err, payload)
	}
	if _, err := remote.Write(payload); err != nil {
		t.Fatal(err)
	}
	if got := readExactly(t, p, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("read %v, want %v", got, payload)
	}
}

func TestSocketControls(t *testing.T) {
	p, _ := openRawSocket(t)
	if p.BaudRate() != DefaultBaud {
		t.Errorf("BaudRate = %d, want %d", p.BaudRate(), DefaultBaud)
	}
	if err := p.SetBaudRate(921600); err != nil || p.BaudRate() != 921600 {
		t.Errorf("SetBaudRate: %v, rate now %d", err, p.BaudRate())
	}
	if err := p.SetBaudRate(0); err == nil {
		t.Error("SetBaudRate(0) accepted")
	}
	if err := p.SetDTR(true); !errors.Is(err, ErrNoControlLines) {
		t.Errorf("SetDTR = %v, want ErrNoControlLines", err)
	}
	if err := p.SetRTS(false); !errors.Is(err, ErrNoControlLines) {
		t.Errorf("SetRTS = %v, want ErrNoControlLines", err)
	}
	if err := p.Drain(); err != nil {
		t.Errorf("Drain = %v", err)
	}
}

func TestSocketReadTimeout(t *testing.T) {
	p, remote := openRawSocket(t)
	p.SetReadTimeout(50 * time.Millisecond)
	start := time.Now()
	n, err := p.Read(make([]byte, 10))
	if n != 0 || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Read = %d, %v; want 0, ErrTimeout", n, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("timed out after %v", d)
	}
	// A byte arriving within the timeout ends the wait.
	p.SetReadTimeout(0)
	go func() {
		time.Sleep(20 * time.Millisecond)
		remote.Write([]byte("z"))
	}()
	if got := readExactly(t, p, 1); string(got) != "z" {
		t.Errorf("read %q", got)
	}
}

func TestSocketResetInputBuffer(t *testing.T) {
	p, remote := openRawSocket(t)
	remote.Write([]byte("stale"))
	waitBuffered(t, p.(*socketPort).tcpStream, 5)
	if err := p.ResetInputBuffer(); err != nil {
		t.Fatal(err)
	}
	remote.Write([]byte("fresh"))
	if got := readExactly(t, p, 5); string(got) != "fresh" {
		t.Errorf("read %q after reset, want fresh", got)
	}
}

// waitBuffered waits until s holds n unread bytes.
func waitBuffered(t *testing.T, s *tcpStream, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		have := len(s.buf) - s.off
		s.mu.Unlock()
		if have >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes buffered, want %d", have, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSocketBoundedBuffer(t *testing.T) {
	p, remote := openRawSocket(t)
	payload := make([]byte, 3*maxBuffered)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	go remote.Write(payload)
	waitBuffered(t, p.(*socketPort).tcpStream, maxBuffered)
	time.Sleep(20 * time.Millisecond) // let the reader overrun if it would
	s := p.(*socketPort).tcpStream
	s.mu.Lock()
	have := len(s.buf) - s.off
	s.mu.Unlock()
	if have > maxBuffered+tcpReadChunk {
		t.Errorf("%d bytes buffered, limit %d", have, maxBuffered+tcpReadChunk)
	}
	if got := readExactly(t, p, len(payload)); !bytes.Equal(got, payload) {
		t.Error("data changed on the way")
	}
}

func TestSocketDisconnect(t *testing.T) {
	p, remote := openRawSocket(t)
	remote.Write([]byte("last"))
	remote.Close()
	if got := readExactly(t, p, 4); string(got) != "last" {
		t.Errorf("read %q, want the data sent before closing", got)
	}
	_, err := p.Read(make([]byte, 1))
	expectKind(t, err, KindDisconnected)
}

func TestSocketOpenErrors(t *testing.T) {
	_, err := Open(context.Background(), "socket://"+closedAddress(t), 0)
	expectKind(t, err, KindUnreachable)
	for _, addr := range []string{"socket://", "socket://localhost", "socket://:4000", "socket://localhost:", "tcp://h:1/x"} {
		_, err := Open(context.Background(), addr, 0)
		expectKind(t, err, KindBadAddress)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Open(ctx, "tcp://"+closedAddress(t), 0)
	expectKind(t, err, KindUnreachable)
}

func TestSocketClose(t *testing.T) {
	p, _ := openRawSocket(t)
	readErr := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Read after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if err := p.SetDTR(true); !errors.Is(err, ErrClosed) {
		t.Errorf("SetDTR after Close = %v", err)
	}
}
