package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
)

// served is a virtual device behind a Server on a loopback listener.
type served struct {
	addr string
	dev  *sim.Device
	logs *logRecorder
	stop func() error // Ctrl-C: returns what ServeRFC2217 returned
}

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) add(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, msg)
}

func (r *logRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func serveSim(t *testing.T, simAddr string, o Options) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := port.Open(ctx, simAddr, port.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	o.Log = logs.add
	s, err := New(p, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeRFC2217(ctx, ln) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(5 * time.Second):
				serveErr = fmt.Errorf("ServeRFC2217 did not return after cancel")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
		p.Close()
	})
	return &served{addr: ln.Addr().String(), dev: port.SimDevice(p), logs: logs, stop: stop}
}

// slowLines is a client that waits for each line change's answer, one
// round trip over a network (pyserial's RFC 2217 client without
// ign_set_control does this). The changes then reach the server rtt apart.
type slowLines struct {
	port.Port
	rtt time.Duration
}

func (p slowLines) SetDTR(on bool) error { err := p.Port.SetDTR(on); time.Sleep(p.rtt); return err }
func (p slowLines) SetRTS(on bool) error { err := p.Port.SetRTS(on); time.Sleep(p.rtt); return err }

// TestResetThroughServer: mos's client resets the virtual board into its
// loader through both kinds of server, and through the ESP-aware one even
// when each line change arrives a round trip late, which the plain one
// cannot carry (the chip leaves reset with IO0 released and boots from
// flash: esptool's "Wrong boot mode").
func TestResetThroughServer(t *testing.T) {
	tests := []struct {
		name   string
		board  string
		plain  bool
		rtt    time.Duration
		wantOK bool
	}{
		{"esp", "devkit", false, 0, true},
		{"plain", "devkit", true, 0, true},
		{"esp, 40ms round trips", "devkit", false, 40 * time.Millisecond, true},
		{"plain, 40ms round trips", "devkit", true, 40 * time.Millisecond, false},
		// EN rises in 250 ms: only mos's second attempt, whose IO0 is held
		// 550 ms, gets the loader; the server must hold IO0 that long too.
		{"esp, slow EN", "slow-en", false, 0, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serveSim(t, fmt.Sprintf("sim://esp32?fast=1&board=%s&id=serve-reset-%d", tt.board, i), Options{Plain: tt.plain})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var p port.Port
			p, err := port.Open(ctx, "rfc2217://"+srv.addr, port.DefaultBaud)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if tt.rtt > 0 {
				p = slowLines{p, tt.rtt}
			}
			l, err := flasher.Connect(ctx, p, flasher.ConnectOptions{Reset: "classic", Attempts: 2})
			if !tt.wantOK {
				if err == nil {
					t.Fatal("connected: the plain server carried a reset it cannot time")
				}
				if st := srv.dev.State(); st == "download" || st == "stub" {
					t.Fatalf("device in %q after a failed connect", st)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect through the server: %v (device state %q)", err, srv.dev.State())
			}
			info, err := l.ReadInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Chip != "ESP32" {
				t.Errorf("chip %q, want ESP32", info.Chip)
			}
			if err := flasher.HardReset().Run(ctx, p); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for srv.dev.State() == "download" || srv.dev.State() == "reset" {
				if time.Now().After(deadline) {
					t.Fatalf("device still in %q after the hard reset", srv.dev.State())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestOneClientAtATime: a second client is refused with a message naming
// the port and the client holding it, and both are logged; once the first
// leaves, the next is served.
func TestOneClientAtATime(t *testing.T) {
	srv := serveSim(t, "sim://esp8266?fast=1&id=serve-busy", Options{})
	ctx := context.Background()
	first, err := port.Open(ctx, "rfc2217://"+srv.addr, port.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	firstAddr := strings.Fields(waitLog(t, srv.logs, "connected"))[1] // "client ADDR connected"

	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.Contains(msg, "in use") || !strings.Contains(msg, firstAddr) {
		t.Errorf("refused client read %q, want it to say the port is in use by %s", msg, firstAddr)
	}
	// mos's client reports the refusal as a busy port, with the message.
	_, err = port.Open(ctx, "rfc2217://"+srv.addr, port.DefaultBaud)
	var pe *port.Error
	if !errors.As(err, &pe) || pe.Kind != port.KindBusy || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second mos client: %v, want a busy port error with the server's message", err)
	}
	if l := waitLog(t, srv.logs, "refused"); !strings.Contains(l, firstAddr) {
		t.Errorf("log %q does not name the client holding the port", l)
	}

	first.Close()
	waitLog(t, srv.logs, "disconnected")
	second, err := port.Open(ctx, "rfc2217://"+srv.addr, port.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := flasher.Connect(ctx, second, flasher.ConnectOptions{Reset: "classic"}); err != nil {
		t.Fatalf("the next client after the first left: %v", err)
	}
}

// waitLog waits for a log line containing s and returns it.
func waitLog(t *testing.T, r *logRecorder, s string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(r.text(), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line with %q in:\n%s", s, r.text())
	return ""
}

// TestStopLeavesPortReleased: stopping with a client connected in the
// middle of a baud change and with the lines asserted ends serving
// without an error and leaves the port at its starting rate with both
// lines released.
func TestStopLeavesPortReleased(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprint("plain=", plain), func(t *testing.T) {
			p := newLinePort()
			s, err := New(p, Options{Plain: plain})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.ServeRFC2217(ctx, ln) }()
			c, err := port.Open(ctx, "rfc2217://"+ln.Addr().String(), port.DefaultBaud)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetBaudRate(921600)
			c.SetRTS(true)
			c.SetDTR(true)
			time.Sleep(50 * time.Millisecond)
			p.reset()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("ServeRFC2217 after cancel: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ServeRFC2217 did not return after cancel")
			}
			ops, _ := p.log()
			n := len(ops)
			if n < 4 || ops[n-4] != "D0" || ops[n-3] != "R0" || ops[n-2] != "B115200" || ops[n-1] != "P" {
				t.Errorf("port after stop: %v, want it to end D0 R0 B115200 P", ops)
			}
		})
	}
}

// TestUpstreamRFC2217: the served port can itself be an RFC 2217 server
// (a plain one, here the device's own), as when a lab machine already
// runs ser2net: the resets are played on it, through it, and mos's
// client reads the chip.
func TestUpstreamRFC2217(t *testing.T) {
	c, err := chips.ByKey("esp32c3")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := sim.New(sim.Config{Chip: c, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	lnUp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upCtx, stopUp := context.WithCancel(context.Background())
	upDone := make(chan error, 1)
	go func() { upDone <- dev.ServeRFC2217(upCtx, lnUp) }()
	// Registered before serveSim's cleanup, so it runs after it.
	t.Cleanup(func() { stopUp(); <-upDone; dev.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := serveSim(t, "rfc2217://"+lnUp.Addr().String(), Options{})
	p, err := port.Open(ctx, "rfc2217://"+srv.addr, port.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l, err := flasher.Connect(ctx, p, flasher.ConnectOptions{Reset: "classic"})
	if err != nil {
		t.Fatalf("connect through two servers: %v (device state %q)", err, dev.State())
	}
	if info, err := l.ReadInfo(ctx); err != nil || info.Chip != "ESP32-C3" {
		t.Fatalf("chip info: %+v %v", info, err)
	}
}
