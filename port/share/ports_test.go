package share_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/serve"
)

// A real serial device (a pseudo-terminal): the console holds it with its
// lock, a command opening it by another name (a symlink, as under
// /dev/serial/by-id) goes through the console, and its bytes and baud
// changes reach the line.
func TestBorrowSerialDevice(t *testing.T) {
	privateRuntimeDir(t)
	master, slave, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminals: %v", err)
		}
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	path := slave.Name()
	slave.Close()
	defer master.Close()
	link := filepath.Join(t.TempDir(), "usb-Silicon_Labs_CP2102-if00-port0")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}

	rec := newRecorder()
	_, held := offer(t, path, rec.hooks())
	// Without the console's endpoint the device is busy, as before.
	if _, err := port.OpenDirect(context.Background(), link, 115200); !isKind(err, port.KindBusy) {
		t.Fatalf("direct open of the held device: %v", err)
	}

	p, err := port.Open(context.Background(), "serial://"+link, 115200)
	if err != nil {
		t.Fatal(err)
	}
	if !port.Borrowed(p) || p.Name() != "serial://"+link {
		t.Fatalf("borrowed %v, name %q", port.Borrowed(p), p.Name())
	}
	if err := p.SetBaudRate(921600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("ping\xff\n")); err != nil {
		t.Fatal(err)
	}
	master.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, 6)
	if _, err := io.ReadFull(master, got); err != nil || string(got) != "ping\xff\n" {
		t.Fatalf("the line got %q, %v", got, err)
	}
	if held.BaudRate() != 921600 {
		t.Fatalf("the device's rate while lent: %d", held.BaudRate())
	}
	if _, err := master.Write([]byte("pong\n")); err != nil {
		t.Fatal(err)
	}
	p.SetReadTimeout(2 * time.Second)
	var back []byte
	buf := make([]byte, 16)
	for !strings.Contains(string(back), "\n") {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatalf("read through the console: %q %v", back, err)
		}
		back = append(back, buf[:n]...)
	}
	if string(back) != "pong\n" {
		t.Fatalf("read %q", back)
	}
	p.Close()
	rec.waitReturn(t)
	if held.BaudRate() != 115200 {
		t.Fatalf("rate after return: %d", held.BaudRate())
	}
	// The console reads the line again.
	master.Write([]byte("log line\n"))
	held.SetReadTimeout(2 * time.Second)
	if n, err := held.Read(buf); err != nil || !strings.HasPrefix("log line\n", string(buf[:n])) {
		t.Fatalf("console read after return: %q %v", buf[:n], err)
	}
}

func isKind(err error, kind port.ErrorKind) bool {
	var pe *port.Error
	return errors.As(err, &pe) && pe.Kind == kind
}

// A console holding an rfc2217:// port (a board on a `mos serve`, which
// takes one client at a time) lends it too.
func TestBorrowRFC2217Port(t *testing.T) {
	privateRuntimeDir(t)
	url := demoURL(t)
	dp, err := port.OpenDirect(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	srv, err := serve.New(dp, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.ServeRFC2217(ctx, ln); close(done) }()
	defer func() { cancel(); <-done }()

	addr := "rfc2217://" + ln.Addr().String()
	rec := newRecorder()
	l, _ := offer(t, addr, rec.hooks())
	p, err := port.Open(context.Background(), addr, 115200)
	if err != nil {
		t.Fatal(err)
	}
	if !port.Borrowed(p) {
		t.Fatal("not borrowed")
	}
	if info := getInfo(t, p); info["app"] != "mos-demo" {
		t.Fatalf("Sys.GetInfo through the console and the server: %v", info)
	}
	p.Close()
	rec.waitReturn(t)
	l.Port().Close()
}
