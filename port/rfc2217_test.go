package port

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/rfc2217"
)

// fakeAccessServer is an RFC 2217 server on loopback built on
// rfc2217.ServerConn. It logs the handler calls and collects the data the
// client sends.
type fakeAccessServer struct {
	t    *testing.T
	addr string
	conn chan *rfc2217.ServerConn // the accepted connection

	mu       sync.Mutex
	calls    []string
	received []byte
}

func startAccessServer(t *testing.T) *fakeAccessServer {
	t.Helper()
	addr, conns := acceptOne(t)
	s := &fakeAccessServer{t: t, addr: addr, conn: make(chan *rfc2217.ServerConn, 1)}
	go func() {
		c, ok := <-conns
		if !ok {
			return
		}
		sc, err := rfc2217.NewServerConn(c, s, DefaultBaud)
		if err != nil {
			return
		}
		s.conn <- sc
		buf := make([]byte, 4096)
		for {
			n, err := sc.Read(buf)
			s.mu.Lock()
			s.received = append(s.received, buf[:n]...)
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *fakeAccessServer) log(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

func (s *fakeAccessServer) SetBaud(baud int) error  { s.log("baud %d", baud); return nil }
func (s *fakeAccessServer) SetDTR(on bool) error    { s.log("dtr %v", on); return nil }
func (s *fakeAccessServer) SetRTS(on bool) error    { s.log("rts %v", on); return nil }
func (s *fakeAccessServer) Purge(rx, tx bool) error { s.log("purge rx=%v tx=%v", rx, tx); return nil }

// waitFor polls cond until it holds, failing the test after 5s.
func (s *fakeAccessServer) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.t.Fatalf("timed out waiting for %s; calls %q, received %q", what, s.calls, s.received)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitCalls waits until the handler calls after the first skip are want.
func (s *fakeAccessServer) waitCalls(skip int, want ...string) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("calls %q", want), func() bool {
		return len(s.calls) >= skip && reflect.DeepEqual(s.calls[skip:], want)
	})
}

func (s *fakeAccessServer) serverConn() *rfc2217.ServerConn {
	s.t.Helper()
	select {
	case c := <-s.conn:
		s.conn <- c
		return c
	case <-time.After(5 * time.Second):
		s.t.Fatal("no connection")
	}
	return nil
}

func openAccessServer(t *testing.T) (Port, *fakeAccessServer) {
	t.Helper()
	s := startAccessServer(t)
	p, err := Open(context.Background(), "rfc2217://"+s.addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	// The line setup after the negotiation sets the rate.
	s.waitCalls(0, fmt.Sprintf("baud %d", DefaultBaud))
	return p, s
}

func TestRFC2217Open(t *testing.T) {
	p, s := openAccessServer(t)
	if p.Name() != "rfc2217://"+s.addr || p.BaudRate() != DefaultBaud {
		t.Errorf("Name %q BaudRate %d", p.Name(), p.BaudRate())
	}
	if err := p.Drain(); err != nil {
		t.Errorf("Drain = %v", err)
	}
}

func TestRFC2217SetBaudRate(t *testing.T) {
	p, s := openAccessServer(t)
	if err := p.SetBaudRate(921600); err != nil {
		t.Fatal(err)
	}
	if p.BaudRate() != 921600 {
		t.Errorf("BaudRate = %d", p.BaudRate())
	}
	s.waitCalls(1, "baud 921600")
	if err := p.SetBaudRate(-1); err == nil {
		t.Error("SetBaudRate(-1) accepted")
	}
}

func TestRFC2217ControlLineOrder(t *testing.T) {
	p, s := openAccessServer(t)
	// The classic auto-reset into the ROM loader.
	steps := []struct {
		set  func(bool) error
		on   bool
		want string
	}{
		{p.SetDTR, false, "dtr false"},
		{p.SetRTS, true, "rts true"},
		{p.SetDTR, true, "dtr true"},
		{p.SetRTS, false, "rts false"},
		{p.SetDTR, false, "dtr false"},
	}
	var want []string
	for _, st := range steps {
		if err := st.set(st.on); err != nil {
			t.Fatal(err)
		}
		want = append(want, st.want)
	}
	s.waitCalls(1, want...)
	sc := s.serverConn()
	if sc.DTR() || sc.RTS() {
		t.Errorf("server lines DTR %v RTS %v, want both off", sc.DTR(), sc.RTS())
	}
}

func TestRFC2217DataBothWays(t *testing.T) {
	p, s := openAccessServer(t)
	payload := []byte{0xff, 'a', 0xff, 0xff, 0, '\r', 0, '\r', '\n', 0xfa, 0xf0}
	if n, err := p.Write(payload); n != len(payload) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	s.waitFor("the data", func() bool { return bytes.Equal(s.received, payload) })

	if _, err := s.serverConn().Write(payload); err != nil {
		t.Fatal(err)
	}
	if got := readExactly(t, p, len(payload)); !bytes.Equal(got, payload) {
		t.Errorf("read %v, want %v", got, payload)
	}
}

func TestRFC2217ConcurrentReadWrite(t *testing.T) {
	p, s := openAccessServer(t)
	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(i) | 0xf0 // plenty of 0xFF and other telnet bytes
	}
	sc := s.serverConn()
	go sc.Write(payload)
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(payload)
		done <- err
	}()
	if got := readExactly(t, p, len(payload)); !bytes.Equal(got, payload) {
		t.Error("data from the server changed on the way")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.waitFor("the data", func() bool { return len(s.received) == len(payload) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bytes.Equal(s.received, payload) {
		t.Error("data from the client changed on the way")
	}
}

func TestRFC2217ReadTimeout(t *testing.T) {
	p, _ := openAccessServer(t)
	p.SetReadTimeout(50 * time.Millisecond)
	start := time.Now()
	if n, err := p.Read(make([]byte, 4)); n != 0 || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Read = %d, %v; want 0, ErrTimeout", n, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("timed out after %v", d)
	}
}

func TestRFC2217ResetInputBuffer(t *testing.T) {
	p, s := openAccessServer(t)
	sc := s.serverConn()
	if _, err := sc.Write([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	// No need to wait for "stale" to arrive: whatever precedes the
	// server's purge acknowledgement is dropped.
	if err := p.ResetInputBuffer(); err != nil {
		t.Fatal(err)
	}
	s.waitCalls(1, "purge rx=true tx=false")
	sc.Write([]byte("fresh"))
	if got := readExactly(t, p, 5); string(got) != "fresh" {
		t.Errorf("read %q after reset, want fresh", got)
	}
}

func TestRFC2217ServerCloses(t *testing.T) {
	p, s := openAccessServer(t)
	sc := s.serverConn()
	sc.Write([]byte("bye"))
	sc.Close()
	if got := readExactly(t, p, 3); string(got) != "bye" {
		t.Errorf("read %q", got)
	}
	_, err := p.Read(make([]byte, 1))
	expectKind(t, err, KindDisconnected)
}

func TestRFC2217OpenErrors(t *testing.T) {
	_, err := Open(context.Background(), "rfc2217://"+closedAddress(t), 0)
	expectKind(t, err, KindUnreachable)
	for _, addr := range []string{"rfc2217://", "rfc2217://host", "rfc2217://:4000", "rfc2217://[::1", "rfc2217://h:1?x=1"} {
		_, err := Open(context.Background(), addr, 0)
		expectKind(t, err, KindBadAddress)
	}
}

// scriptedServer accepts one connection and runs script on it.
func scriptedServer(t *testing.T, script func(c net.Conn)) string {
	t.Helper()
	addr, conns := acceptOne(t)
	go func() {
		if c, ok := <-conns; ok {
			script(c)
		}
	}()
	return addr
}

func TestRFC2217ServerWithoutTelnet(t *testing.T) {
	// A raw TCP bridge never answers the negotiation: the open gives up
	// when the context ends instead of hanging.
	addr := scriptedServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Open(ctx, "rfc2217://"+addr, 0)
	expectKind(t, err, KindUnreachable)
}

func TestRFC2217ServerRefusesComPort(t *testing.T) {
	addr := scriptedServer(t, func(c net.Conn) {
		c.Write([]byte{rfc2217.IAC, rfc2217.DONT, rfc2217.OptComPort})
		io.Copy(io.Discard, c)
	})
	_, err := Open(context.Background(), "rfc2217://"+addr, 0)
	expectKind(t, err, KindUnreachable)
	if !errors.Is(err, errNoComPort) {
		t.Errorf("error %v, want errNoComPort", err)
	}
}

func TestRFC2217ServerHangsUpDuringNegotiation(t *testing.T) {
	addr := scriptedServer(t, func(c net.Conn) { c.Close() })
	_, err := Open(context.Background(), "rfc2217://"+addr, 0)
	expectKind(t, err, KindDisconnected)
}

func TestRFC2217OddTelnetFromServer(t *testing.T) {
	const IAC, SB, SE = rfc2217.IAC, rfc2217.SB, rfc2217.SE
	var odd []byte
	odd = append(odd, IAC, rfc2217.WILL, rfc2217.OptComPort)      // offers instead of answering
	odd = append(odd, IAC, rfc2217.DO, rfc2217.OptComPort)        // the answer
	odd = append(odd, IAC, rfc2217.DO, rfc2217.OptComPort)        // again
	odd = append(odd, IAC, rfc2217.WILL, 99, IAC, rfc2217.DO, 99) // unknown option
	odd = append(odd, IAC, rfc2217.NOP, IAC, rfc2217.AYT)
	odd = append(odd, 'a', IAC, 'b')                                   // stray IAC: b stays data
	odd = append(odd, IAC, SB, rfc2217.OptComPort, 101, 1, IAC, SE)    // malformed reply
	odd = append(odd, IAC, SB, rfc2217.OptComPort, 107, 0xff, IAC, SE) // modem state notification
	odd = append(odd, IAC, SB, rfc2217.OptComPort, 1, 2)               // SB cut short by ...
	odd = append(odd, IAC, rfc2217.NOP, 'c')                           // ... a command
	odd = append(odd, IAC, SB, 24)                                     // SB running past the limit
	odd = append(odd, bytes.Repeat([]byte{'x', IAC, IAC}, 2*rfc2217.MaxSubnegotiation)...)
	odd = append(odd, IAC, SE, IAC, SE, 'd') // end of it, then a stray SE
	clientSent := make(chan []byte, 1)
	addr := scriptedServer(t, func(c net.Conn) {
		c.Write(odd)
		c.SetReadDeadline(time.Now().Add(time.Second))
		b, _ := io.ReadAll(c)
		clientSent <- b
	})
	p, err := Open(context.Background(), "rfc2217://"+addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readExactly(t, p, 4); string(got) != "abcd" {
		t.Errorf("read %q, want abcd", got)
	}
	p.SetReadTimeout(20 * time.Millisecond)
	if n, err := p.Read(make([]byte, 10)); n != 0 || !errors.Is(err, ErrTimeout) {
		t.Errorf("Read = %d, %v; want nothing more", n, err)
	}
	p.Close()
	sent := <-clientSent
	// The unknown option was refused both ways; the repeated DO got no
	// second WILL.
	for _, refusal := range [][]byte{{IAC, rfc2217.DONT, 99}, {IAC, rfc2217.WONT, 99}} {
		if !bytes.Contains(sent, refusal) {
			t.Errorf("client did not send %v", refusal)
		}
	}
	if bytes.Count(sent, []byte{IAC, rfc2217.WILL, rfc2217.OptComPort}) != 1 {
		t.Errorf("client sent WILL COM-PORT-OPTION more than once: %v", sent)
	}
}

func TestRFC2217Close(t *testing.T) {
	p, _ := openAccessServer(t)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	for name, err := range map[string]error{
		"Close":            p.Close(),
		"SetDTR":           p.SetDTR(true),
		"SetBaudRate":      p.SetBaudRate(9600),
		"ResetInputBuffer": p.ResetInputBuffer(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}
