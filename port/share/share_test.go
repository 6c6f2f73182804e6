package share_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/port/share"
	"github.com/mos-tool/mos/provision"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

const demoBundle = "../../firmware-images/esp32-demo.zip"

var devices atomic.Int64

// privateRuntimeDir gives each test its own sharing directory, so tests
// (and a developer's running console) never see each other's endpoints.
func privateRuntimeDir(t *testing.T) {
	t.Helper()
	dir, err := os.MkdirTemp("", "mos-share-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("XDG_RUNTIME_DIR", dir)
}

// demoURL makes a virtual ESP32 running the demo firmware, shared in this
// process under a fresh id, and returns its address.
func demoURL(t *testing.T) string {
	t.Helper()
	url := fmt.Sprintf("sim://esp32?id=share-%d&fast=1", devices.Add(1))
	hp, err := sim.Open(url, demofw.New)
	if err != nil {
		t.Fatal(err)
	}
	dev := hp.Device()
	t.Cleanup(func() { dev.Close() })
	if err := dev.ProgramBundle(demoBundle); err != nil {
		t.Fatal(err)
	}
	hp.Close()
	dev.PressReset(false)
	return url
}

// recorder notes the hooks' calls in order.
type recorder struct {
	mu      sync.Mutex
	events  []string
	sums    []share.Summary
	fromDev int
	refused []string
	ret     chan struct{}
}

func newRecorder() *recorder { return &recorder{ret: make(chan struct{}, 16)} }

func (r *recorder) hooks() share.Hooks {
	return share.Hooks{
		Name: "test console",
		OnBorrow: func(b share.Borrower) {
			r.mu.Lock()
			r.events = append(r.events, "borrow "+b.Who)
			r.mu.Unlock()
		},
		OnDeviceData: func(b []byte) {
			r.mu.Lock()
			r.fromDev += len(b)
			r.mu.Unlock()
		},
		OnReturn: func(s share.Summary) {
			r.mu.Lock()
			r.events = append(r.events, "return "+s.Borrower.Who)
			r.sums = append(r.sums, s)
			r.mu.Unlock()
			r.ret <- struct{}{}
		},
		OnRefuse: func(b share.Borrower, reason string) {
			r.mu.Lock()
			r.refused = append(r.refused, b.Who+": "+reason)
			r.mu.Unlock()
		},
	}
}

func (r *recorder) waitReturn(t *testing.T) {
	t.Helper()
	select {
	case <-r.ret:
	case <-time.After(5 * time.Second):
		t.Fatal("OnReturn was not called")
	}
}

// offer opens url directly, as the console does, and lends it.
func offer(t *testing.T, url string, h share.Hooks) (*share.Lender, port.Port) {
	t.Helper()
	p, err := port.OpenDirect(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	l, err := share.Offer(context.Background(), p, h)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Port().Close() })
	return l, l.Port()
}

func borrowerCtx(who string, notes *[]string) context.Context {
	return port.WithBorrower(context.Background(), port.Borrower{
		Who:    who,
		Notify: func(msg string) { *notes = append(*notes, msg) },
	})
}

// getInfo asks the demo firmware for Sys.GetInfo over p.
func getInfo(t *testing.T, p port.Port) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := provision.Connect(ctx, p, provision.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var info map[string]any
	if err := c.Call(ctx, "Sys.GetInfo", nil, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// A command borrows the console's port: it talks to the device, the
// console's reads and writes are held off meanwhile, and the hooks come in
// order with an account of the traffic.
func TestBorrowSimDevice(t *testing.T) {
	privateRuntimeDir(t)
	url := demoURL(t)
	rec := newRecorder()
	_, held := offer(t, url, rec.hooks())

	var notes []string
	p, err := port.Open(borrowerCtx("mos call", &notes), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	if !port.Borrowed(p) || p.Name() != url {
		t.Fatalf("borrowed %v, name %q", port.Borrowed(p), p.Name())
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "test console") || !strings.Contains(notes[0], url) {
		t.Fatalf("notices %q", notes)
	}
	if info := getInfo(t, p); info["app"] != "mos-demo" {
		t.Fatalf("Sys.GetInfo through the console: %v", info)
	}

	// While lent, the console reads nothing and cannot write.
	held.SetReadTimeout(50 * time.Millisecond)
	if n, err := held.Read(make([]byte, 64)); n != 0 || !errors.Is(err, port.ErrTimeout) {
		t.Fatalf("console read while lent: %d, %v", n, err)
	}
	if _, err := held.Write([]byte("x")); !errors.Is(err, share.ErrLent) || !strings.Contains(err.Error(), "mos call") {
		t.Fatalf("console write while lent: %v", err)
	}
	if err := held.SetDTR(true); !errors.Is(err, share.ErrLent) {
		t.Fatalf("console DTR while lent: %v", err)
	}

	if err := p.SetBaudRate(460800); err != nil {
		t.Fatal(err)
	}
	// A classic reset into the bootloader, then a hard reset: counted.
	for _, step := range []func() error{
		func() error { return p.SetDTR(false) }, func() error { return p.SetRTS(true) },
		func() error { return p.SetDTR(true) }, func() error { return p.SetRTS(false) },
		func() error { return p.SetDTR(false) },
		func() error { return p.SetRTS(true) }, func() error { return p.SetRTS(false) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	rec.waitReturn(t)

	rec.mu.Lock()
	events, s, fromDev := rec.events, rec.sums[0], rec.fromDev
	rec.mu.Unlock()
	if strings.Join(events, ", ") != "borrow mos call, return mos call" {
		t.Fatalf("hooks %q", events)
	}
	if s.Borrower.PID != os.Getpid() || s.Sent == 0 || s.Received == 0 || int64(fromDev) != s.Received ||
		s.Resets != 2 || s.BootloaderResets != 1 || fmt.Sprint(s.Bauds) != "[115200 460800]" || s.Err != nil {
		t.Fatalf("summary %+v (device data seen %d)", s, fromDev)
	}
	if !strings.Contains(s.String(), "mos call (pid ") || !strings.Contains(s.String(), "2 reset(s) (1 into the bootloader)") {
		t.Fatalf("summary text %q", s.String())
	}

	// The line is back at the console's rate and works for it again.
	if held.BaudRate() != 115200 {
		t.Fatalf("baud after return %d", held.BaudRate())
	}
	if _, err := held.Write([]byte("\n")); err != nil {
		t.Fatalf("console write after return: %v", err)
	}
}

// The console may be blocked in a read with no timeout when a command
// arrives: the command still gets the line at once, and the console's
// read goes on afterwards and sees what the device says next.
func TestBorrowWhileConsoleReads(t *testing.T) {
	privateRuntimeDir(t)
	url := demoURL(t)
	rec := newRecorder()
	_, held := offer(t, url, rec.hooks())
	held.SetReadTimeout(0)
	// Let the boot log go by.
	drain(held)

	got := make(chan string, 1)
	go func() {
		held.SetReadTimeout(0)
		var all []byte
		buf := make([]byte, 256)
		for !strings.Contains(string(all), "\n") {
			n, err := held.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
		}
		got <- string(all)
	}()
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	// Had it waited for the console's read, which has no timeout, it
	// would never have got the line.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("borrowing took %v", d)
	}
	getInfo(t, p)
	select {
	case s := <-got:
		t.Fatalf("the console's read returned while the line was lent: %q", s)
	default:
	}
	p.Close()
	rec.waitReturn(t)
	// Make the device say something: a reboot prints its boot log.
	sim.Shared(idOf(url)).PressReset(false)
	select {
	case s := <-got:
		if strings.HasPrefix(s, "error") || len(s) == 0 {
			t.Fatalf("console read after return: %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the console's read saw nothing after the line came back")
	}
}

// idOf is the id= option of a sim:// address.
func idOf(url string) string {
	_, rest, _ := strings.Cut(url, "id=")
	id, _, _ := strings.Cut(rest, "&")
	return id
}

// drain reads what the port has until it is quiet for 300 ms.
func drain(p port.Port) {
	p.SetReadTimeout(300 * time.Millisecond)
	buf := make([]byte, 4096)
	for {
		if _, err := p.Read(buf); err != nil {
			return
		}
	}
}

// One borrower at a time: a second command is refused after a short wait,
// told who has the line; once it is free the next one gets it.
func TestSecondBorrowerRefused(t *testing.T) {
	privateRuntimeDir(t)
	url := demoURL(t)
	rec := newRecorder()
	offer(t, url, rec.hooks())

	first, err := port.Open(borrowerCtx("mos flash", new([]string)), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = port.Open(borrowerCtx("mos put", new([]string)), url, 115200)
	var pe *port.Error
	if !errors.As(err, &pe) || pe.Kind != port.KindBusy || !strings.Contains(err.Error(), "lent it to mos flash (pid") {
		t.Fatalf("second borrower: %v", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("refused after %v, want about a second", d)
	}
	rec.mu.Lock()
	refused := rec.refused
	rec.mu.Unlock()
	if len(refused) != 1 || !strings.HasPrefix(refused[0], "mos put: ") {
		t.Fatalf("OnRefuse %q", refused)
	}

	// A command that comes while the first is finishing waits for it.
	go func() {
		time.Sleep(200 * time.Millisecond)
		first.Close()
	}()
	second, err := port.Open(borrowerCtx("mos put", new([]string)), url, 115200)
	if err != nil {
		t.Fatalf("borrower after the first left: %v", err)
	}
	getInfo(t, second)
	second.Close()
	rec.waitReturn(t)
	rec.waitReturn(t)
}

// A socket file left by a console that was killed is not an endpoint: the
// command opens the port itself and the file is removed.
func TestStaleEndpointIgnored(t *testing.T) {
	privateRuntimeDir(t)
	url := demoURL(t)
	path := endpointOf(t, url)

	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket is not there: %v", err)
	}

	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if port.Borrowed(p) {
		t.Fatal("went through a dead endpoint")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale socket not removed: %v", err)
	}
	if info := getInfo(t, p); info["app"] != "mos-demo" {
		t.Fatalf("direct open: %v", info)
	}
}

// endpointOf finds the socket a lender of url listens on.
func endpointOf(t *testing.T, url string) string {
	t.Helper()
	l, err := share.Offer(context.Background(), fakePort{name: url}, share.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	path := l.Endpoint()
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the socket: %v", err)
	}
	return path
}

// fakePort only has a name, for locating endpoints.
type fakePort struct {
	port.Port
	name string
}

func (f fakePort) Name() string { return f.name }

// A console offering a port keeps a second one from offering it too.
func TestOfferTwiceRefused(t *testing.T) {
	privateRuntimeDir(t)
	l, err := share.Offer(context.Background(), fakePort{name: "/dev/ttyFAKE0"}, share.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Stat(l.Endpoint()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("endpoint mode: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Dir(l.Endpoint())); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("endpoint directory mode: %v %v", fi, err)
	}
	_, err = share.Offer(context.Background(), fakePort{name: "serial:///dev/ttyFAKE0"}, share.Hooks{})
	if err == nil || !strings.Contains(err.Error(), "offers it already") {
		t.Fatalf("second offer: %v", err)
	}
}

// The console stopping in the middle of a command cuts the command off
// with a clear error, never a hang.
func TestLenderStopsMidCommand(t *testing.T) {
	privateRuntimeDir(t)
	url := demoURL(t)
	rec := newRecorder()
	l, _ := offer(t, url, rec.hooks())
	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	drain(p)
	p.SetReadTimeout(0) // a command waiting for ever
	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 16))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	l.Close()
	checkCutOff(t, errc)
	rec.waitReturn(t)
	rec.mu.Lock()
	s := rec.sums[0]
	rec.mu.Unlock()
	if s.Err == nil || !strings.Contains(s.Err.Error(), "stopped lending") {
		t.Fatalf("summary error %v", s.Err)
	}
	if _, err := p.Write([]byte("x")); err == nil {
		t.Fatal("write after the console stopped succeeded")
	}
}

func checkCutOff(t *testing.T, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		var pe *port.Error
		if !errors.As(err, &pe) || pe.Kind != port.KindDisconnected || !strings.Contains(err.Error(), "console that lent the port stopped") {
			t.Fatalf("read error %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the borrower's read hangs after the console went away")
	}
}

// lenderEnv makes the test binary a console in another process that lends
// the port named in it (see TestMain).
const lenderEnv = "MOS_SHARE_TEST_LENDER"

func TestMain(m *testing.M) {
	if url := os.Getenv(lenderEnv); url != "" {
		os.Exit(runLender(url))
	}
	os.Exit(m.Run())
}

// runLender opens url, offers it and says "ready"; it runs until killed.
func runLender(url string) int {
	p, err := port.OpenDirect(context.Background(), url, 115200)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	l, err := share.Offer(context.Background(), p, share.Hooks{Name: "lender process"})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer l.Close()
	fmt.Println("ready")
	select {}
}

// startLender runs a console in another process lending url.
func startLender(t *testing.T, url string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lenderEnv+"="+url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("lender process: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return cmd
}

// A console in another process: a command there goes through it, and
// when that process is killed mid-command the command fails at once; the
// socket it leaves behind is cleaned up by the next command.
func TestLenderProcessKilled(t *testing.T) {
	privateRuntimeDir(t)
	// A device of the other process's own (sim:// without id= is made by
	// each opener), booted into its ROM loader so it says nothing by itself.
	url := "sim://esp32?fast=1&download=1"
	lender := startLender(t, url)

	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !port.Borrowed(p) {
		t.Fatal("not borrowed from the other process")
	}
	// The ROM loader answers SYNC: proof the bytes reach the other
	// process's device (esptool's loader.py sync(): command 0x08).
	sync := []byte{0xc0, 0x00, 0x08, 0x24, 0x00, 0, 0, 0, 0, 0x07, 0x07, 0x12, 0x20}
	sync = append(sync, []byte(strings.Repeat("\x55", 32))...)
	sync = append(sync, 0xc0)
	drain(p) // the ROM's banner
	p.SetReadTimeout(2 * time.Second)
	if _, err := p.Write(sync); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := p.Read(buf)
	if err != nil || n == 0 || buf[0] != 0xc0 {
		t.Fatalf("no SYNC reply through the other process: %x %v", buf[:n], err)
	}
	drain(p)

	p.SetReadTimeout(0)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 16))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	lender.Process.Kill()
	lender.Wait()
	checkCutOff(t, errc)

	// The killed process left its socket; the next command finds it
	// dead, removes it and opens the port itself.
	path := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "mos")
	if socks, _ := filepath.Glob(filepath.Join(path, "*.sock")); len(socks) != 1 {
		t.Fatalf("sockets left by the killed process: %q", socks)
	}
	q, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if port.Borrowed(q) {
		t.Fatal("borrowed from a killed process")
	}
	if socks, _ := filepath.Glob(filepath.Join(path, "*.sock")); len(socks) != 0 {
		t.Fatalf("stale sockets kept: %q", socks)
	}
}
