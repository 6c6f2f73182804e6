package port

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/port/internal/endpoint"
	"github.com/mos-tool/mos/rfc2217"
)

// fakeLender listens on the endpoint of name and answers each greeting
// with answer (nothing when empty), keeping the connection open.
func fakeLender(t *testing.T, name, answer string) <-chan endpoint.Hello {
	t.Helper()
	dir, err := os.MkdirTemp("", "mos-borrow")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("XDG_RUNTIME_DIR", dir)
	path, err := endpoint.Path(name, true)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hellos := make(chan endpoint.Hello, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
			h, err := endpoint.ReadHello(bufio.NewReader(conn))
			if err == nil {
				hellos <- h
			}
			if answer != "" {
				conn.Write([]byte(answer))
			}
		}
	}()
	return hellos
}

func TestBorrowAnswers(t *testing.T) {
	const name = "sim://esp32?fast=1"
	for _, tt := range []struct {
		name     string
		answer   string
		borrowed bool   // went through the endpoint
		errHas   string // "" when the port opens
		maxTime  time.Duration
	}{
		// Another port's endpoint under the same hash: open directly.
		{"other port", endpoint.Reply(endpoint.ReplyOther, "/dev/ttyUSB9"), false, "", 3 * time.Second},
		{"busy", endpoint.Reply(endpoint.ReplyBusy, "lent to mos flash (pid 7)"), true, "port is busy (another program has it open): lent to mos flash (pid 7)", 3 * time.Second},
		{"unknown reply", "WHAT\tever\n", true, `answered "WHAT ever"`, 3 * time.Second},
		// A console that accepts but never answers (stopped with ^Z) is
		// not waited for longer than the hello timeout.
		{"no answer", "", true, "did not answer", endpoint.HelloTimeout + time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hellos := fakeLender(t, name, tt.answer)
			ctx := WithBorrower(context.Background(), Borrower{Who: "mos test"})
			start := time.Now()
			p, err := Open(ctx, name, 115200)
			if d := time.Since(start); d > tt.maxTime {
				t.Fatalf("took %v", d)
			}
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				if Borrowed(p) != tt.borrowed {
					t.Fatalf("borrowed %v", Borrowed(p))
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want %q", err, tt.errHas)
			}
			select {
			case h := <-hellos:
				if h.Who != "mos test" || h.PID != os.Getpid() || h.Port != name {
					t.Fatalf("greeting %+v", h)
				}
			case <-time.After(time.Second):
				t.Fatal("no greeting")
			}
		})
	}
}

// A console that takes a command and then stops reading (suspended) makes
// the command's writes fail after writeStall, not hang.
func TestBorrowWriteToStalledConsole(t *testing.T) {
	const name = "sim://esp32?fast=1"
	dir, err := os.MkdirTemp("", "mos-borrow")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	t.Setenv("XDG_RUNTIME_DIR", dir)
	path, err := endpoint.Path(name, true)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := endpoint.ReadHello(br); err != nil {
			return
		}
		conn.Write([]byte(endpoint.Reply(endpoint.ReplyOK, "a stalled console")))
		// Accept RFC 2217 as a server would, then read nothing more.
		sc, err := rfc2217.NewServerConn(&bufferedServer{conn, br}, nopHandler{}, 115200)
		if err != nil {
			return
		}
		sc.Read(make([]byte, 1))
		<-done
	}()

	old := writeStall
	writeStall = 300 * time.Millisecond
	defer func() { writeStall = old }()
	p, err := Open(context.Background(), name, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	chunk := make([]byte, 64<<10)
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if _, err = p.Write(chunk); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "console that lent the port stopped") {
		t.Fatalf("writes to a stalled console: %v after %v", err, time.Since(start))
	}
}

type bufferedServer struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedServer) Read(b []byte) (int, error) { return c.r.Read(b) }

type nopHandler struct{}

func (nopHandler) SetBaud(int) error       { return nil }
func (nopHandler) SetDTR(bool) error       { return nil }
func (nopHandler) SetRTS(bool) error       { return nil }
func (nopHandler) Purge(rx, tx bool) error { return nil }
