package flasher

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
)

func openSim(t *testing.T, url string) port.Port {
	t.Helper()
	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestConnectDetectsEveryChip(t *testing.T) {
	for _, c := range chips.All() {
		t.Run(c.Key, func(t *testing.T) {
			t.Parallel()
			p := openSim(t, "sim://"+c.Key+"?fast=1&flash=8M")
			l, err := Connect(context.Background(), p, ConnectOptions{})
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if l.Chip != c {
				t.Fatalf("detected %s, want %s", l.Chip.Name, c.Name)
			}
			if l.Stub {
				t.Errorf("a freshly reset chip reported as running a stub")
			}
			info, err := l.ReadInfo(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.FlashSize != 8<<20 {
				t.Errorf("flash size %d, want 8 MiB (id %s)", info.FlashSize, info.FlashID)
			}
			dev := port.SimDevice(p)
			want := net.HardwareAddr(dev.MAC()).String()
			if info.MAC != want {
				t.Errorf("MAC %s, want %s", info.MAC, want)
			}
		})
	}
}

func TestConnectUSBJTAGBoard(t *testing.T) {
	p := openSim(t, "sim://esp32c3?fast=1&board=usb-jtag")
	l, err := Connect(context.Background(), p, ConnectOptions{Reset: "usb-jtag"})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if l.Chip.Key != "esp32c3" {
		t.Fatalf("detected %s", l.Chip.Name)
	}
}

// A board with a large EN capacitor needs the longer reset delay: auto
// must get there by itself.
func TestConnectSlowENNeedsLongerDelay(t *testing.T) {
	p := openSim(t, "sim://esp32?fast=1&board=slow-en")
	if _, err := Connect(context.Background(), p, ConnectOptions{Reset: "D0|R1|W100|D1|R0|W50|D0", Attempts: 1}); err == nil {
		t.Fatal("the short delay should not reach download mode on a slow-EN board")
	}
	l, err := Connect(context.Background(), p, ConnectOptions{})
	if err != nil {
		t.Fatalf("auto reset should retry with a longer delay: %v", err)
	}
	if !strings.Contains(l.Reset, "W550") {
		t.Errorf("connected with %q, want the 550 ms sequence", l.Reset)
	}
}

// A board without auto-reset, running its (blank-flash) boot loop: the
// error must say the chip was seen booting, exit "no answer", and tell
// how to enter download mode by hand.
func TestConnectNoAutoResetGivesManualHint(t *testing.T) {
	p := openSim(t, "sim://esp32?fast=1&board=no-autoreset")
	// The power-on banner may come before the port is open (as when a board
	// is plugged in); pressing EN makes the chip print it again.
	port.SimDevice(p).PressReset(false)
	_, err := Connect(context.Background(), p, ConnectOptions{Attempts: 2})
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConnectError", err)
	}
	if ce.ExitCode() != 6 {
		t.Errorf("exit code %d, want 6", ce.ExitCode())
	}
	if !strings.Contains(ce.Hint(), "hold the BOOT") || !strings.Contains(ce.Hint(), "EN") {
		t.Errorf("hint does not explain manual download mode: %q", ce.Hint())
	}
	if ce.BootMode != "0x13" || ce.Download {
		t.Errorf("boot mode %q download %v, want 0x13 (SPI boot) seen", ce.BootMode, ce.Download)
	}
	if !strings.Contains(err.Error(), "not download mode") {
		t.Errorf("message %q should say the chip is not in download mode", err)
	}
}

// After the automatic attempts fail, Connect keeps listening while the
// user presses the buttons.
func TestConnectManualEntry(t *testing.T) {
	p := openSim(t, "sim://esp32?fast=1&board=no-autoreset")
	dev := port.SimDevice(p)
	var msgs []string
	go func() {
		time.Sleep(1500 * time.Millisecond)
		dev.PressReset(true)
	}()
	l, err := Connect(context.Background(), p, ConnectOptions{Attempts: 1, ManualWait: 10 * time.Second,
		Status: func(m string) { msgs = append(msgs, m) }})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if l.Chip.Key != "esp32" {
		t.Fatalf("detected %s", l.Chip.Name)
	}
	if !strings.Contains(strings.Join(msgs, "\n"), "hold BOOT") {
		t.Errorf("no manual instructions among status messages %q", msgs)
	}
}

// A raw TCP port carries no control lines: the chip is not reset, and
// the error says so.
func TestConnectWithoutControlLines(t *testing.T) {
	c, _ := chips.ByKey("esp32")
	dev, err := sim.New(sim.Config{Chip: c, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go dev.ServeRaw(ctx, ln, 115200)
	p, err := port.Open(ctx, "socket://"+ln.Addr().String(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = Connect(ctx, p, ConnectOptions{Attempts: 1})
	var ce *ConnectError
	if !errors.As(err, &ce) || !ce.NotReset {
		t.Fatalf("err = %v, want a ConnectError saying the chip was not reset", err)
	}
	// Put in download mode by hand, the same port works.
	dev.PressReset(true)
	time.Sleep(50 * time.Millisecond)
	if _, err := Connect(ctx, p, ConnectOptions{Reset: "none", Attempts: 2}); err != nil {
		t.Fatalf("Connect after manual download entry: %v", err)
	}
}

func TestParseResetSequence(t *testing.T) {
	tests := []struct {
		in, out string
		bad     bool
	}{
		{in: "D0|R1|W100|D1|R0|W50|D0", out: "D0|R1|W100|D1|R0|W50|D0"},
		{in: "d1 | r0 | W0.5s", out: "D1|R0|W500"},
		{in: "R1|W12.5", out: "R1|W12"},
		{in: "D2", bad: true},
		{in: "X1", bad: true},
		{in: "W", bad: true},
		{in: "W-1", bad: true},
		{in: "W20s", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		seq, err := ParseResetSequence(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: no error", tt.in)
			}
			continue
		}
		if err != nil || seq.String() != tt.out {
			t.Errorf("%q: got %q, %v; want %q", tt.in, seq.String(), err, tt.out)
		}
	}
}

func TestFlashSizeFromID(t *testing.T) {
	tests := map[uint32]int{
		0x1640EF: 4 << 20,
		0x1840EF: 16 << 20,
		0x1440C8: 1 << 20,
		0x3925C2: 32 << 20,
		0x20BA20: 64 << 20,
		0x00481F: 8 << 20, // Adesto: ID[12:8] 4 = 512 KiB ... 9 = 16 MiB
		0xFFFFFF: 0,
	}
	for id, want := range tests {
		if got := FlashSizeFromID(id); got != want {
			t.Errorf("FlashSizeFromID(0x%06X) = %d, want %d", id, got, want)
		}
	}
}

// Revision and crystal come from the eFuse words and UART divider the
// virtual device models (an ESP32-D0WD v3.0, an ESP32-C3 v0.4).
func TestChipRevisionAndCrystal(t *testing.T) {
	tests := []struct {
		chip, rev string
		xtal      int
		security  bool
	}{
		{"esp32", "v3.0", 40, false},
		{"esp32c3", "v0.4", 40, true},
		{"esp8266", "", 26, false},
	}
	for _, tt := range tests {
		p := openSim(t, "sim://"+tt.chip+"?fast=1")
		l, err := Connect(context.Background(), p, ConnectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		info, err := l.ReadInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.Revision != tt.rev || info.CrystalMHz != tt.xtal || (info.Security != nil) != tt.security {
			t.Errorf("%s: revision %q crystal %d security %v; want %q %d %v", tt.chip, info.Revision, info.CrystalMHz, info.Security, tt.rev, tt.xtal, tt.security)
		}
	}
}

// The ESP32 ROM does not know GET_SECURITY_INFO: it answers by repeating
// its previous reply's header with status 01 05, eight times right after
// SYNC (measured on the ESP32 emulator running the real v3 mask ROM). At
// real wire speed the repeats trickle in after the first; none of them may
// be taken as the answer to the READ_REG that follows.
func TestConnectIgnoresLateUnsupportedRepeats(t *testing.T) {
	for _, url := range []string{"sim://esp32", "sim://esp8266", "sim://esp32?fast=1"} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			p := openSim(t, url)
			for i := 0; i < 3; i++ {
				l, err := Connect(context.Background(), p, ConnectOptions{})
				if err != nil {
					t.Fatalf("connect %d: %v", i, err)
				}
				if _, err := l.ReadInfo(context.Background()); err != nil {
					t.Fatalf("connect %d: chip info: %v", i, err)
				}
			}
		})
	}
}
