package bootbaud_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/console/bootbaud"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
)

type fakePort struct{ baud int }

func (f *fakePort) SetBaudRate(b int) error { f.baud = b; return nil }
func (f *fakePort) BaudRate() int           { return f.baud }

func TestNewSameRate(t *testing.T) {
	if f := bootbaud.New(&fakePort{115200}, 115200, bootbaud.ROMBaud("esp32")); f != nil {
		t.Errorf("ESP32 ROM and app at 115200: want no Follower")
	}
	var f *bootbaud.Follower // a nil Follower does nothing
	if c, err := f.Observe([]byte{0xff, 0xfe, 0x80, 0x00, 0x81}); c != nil || err != nil || f.Reset() != nil || f.InROM() {
		t.Errorf("nil Follower acted: %v %v", c, err)
	}
	if got := bootbaud.ROMBaud("esp8266"); got != 74880 {
		t.Errorf("ESP8266 ROM baud %d, want 74880", got)
	}
}

// TestFollower feeds chunks and checks the port's rate after each.
func TestFollower(t *testing.T) {
	junk := "\x80\xf8\x00\xe0\x9c"
	for _, tc := range []struct {
		name   string
		reset  bool
		chunks []string
		bauds  []int // port rate after each chunk
		lost   []bool
	}{
		{
			name: "reset by the console: ROM and SDK text, back when the app's garbage comes", reset: true,
			chunks: []string{"\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n", "load 0x40100000, len 27648, room 16 \r\ntail 0\r\nchksum 0x2d\r\n", "csum 0x2d\r\n", "SDK ver: 2.2.1 compiled @ Jun  7 2018\r\n", junk, "esp_main.c:160          Mongoose OS 2.20.0\r\n"},
			bauds:  []int{74880, 74880, 74880, 74880, 115200, 115200},
			lost:   []bool{false, false, false, false, true, false},
		},
		{
			name:   "reset by itself: garbage at the app's rate, ROM text, back",
			chunks: []string{"mgos_init.c:33          Init done\r\n", junk, "load 0x40100000, len 27648, room 16 \r\n", "csum 0xc1\r\n", junk, "Init done\r\n"},
			bauds:  []int{115200, 74880, 74880, 74880, 115200, 115200},
			lost:   []bool{false, true, false, false, true, false},
		},
		{
			name:   "a few odd bytes in a log are not a reset",
			chunks: []string{"temp \xb0C: 21\r\n", "\x1b[0;32mI (27) boot: ok\x1b[0m\r\n", "\xff\xfe\r\n"},
			bauds:  []int{115200, 115200, 115200},
		},
		{
			name:   "garbage split across reads",
			chunks: []string{"ok\r\n\x80\x81", "\x82\x83"},
			bauds:  []int{115200, 74880},
			lost:   []bool{false, true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePort{115200}
			f := bootbaud.New(p, 115200, 74880)
			if tc.reset {
				if err := f.Reset(); err != nil || p.baud != 74880 {
					t.Fatalf("Reset: %v, port at %d", err, p.baud)
				}
			}
			for i, c := range tc.chunks {
				ch, err := f.Observe([]byte(c))
				if err != nil {
					t.Fatal(err)
				}
				if p.baud != tc.bauds[i] {
					t.Fatalf("after chunk %d %q: port at %d, want %d", i, c, p.baud, tc.bauds[i])
				}
				if (ch != nil) != (i == 0 && tc.reset && p.baud != 74880 || i > 0 && tc.bauds[i] != tc.bauds[i-1] || i == 0 && !tc.reset && p.baud != 115200) {
					t.Errorf("chunk %d: change %+v, port %d", i, ch, p.baud)
				}
				if ch != nil && ch.Baud != p.baud {
					t.Errorf("chunk %d: change says %d, port at %d", i, ch.Baud, p.baud)
				}
				if tc.lost != nil && (ch != nil && ch.Lost) != tc.lost[i] {
					t.Errorf("chunk %d: change %+v, want Lost=%v", i, ch, tc.lost[i])
				}
			}
		})
	}
}

// reader collects what a console would show: everything read, with the
// Follower watching.
type reader struct {
	mu      sync.Mutex
	text    strings.Builder
	changes []bootbaud.Change
}

func (r *reader) run(ctx context.Context, p port.Port, f *bootbaud.Follower) {
	buf := make([]byte, 64) // small reads: a console reads what has arrived
	p.SetReadTimeout(20 * time.Millisecond)
	for ctx.Err() == nil {
		n, err := p.Read(buf)
		if n > 0 {
			ch, ferr := f.Observe(buf[:n])
			r.mu.Lock()
			r.text.Write(buf[:n])
			if ch != nil {
				r.changes = append(r.changes, *ch)
				fmt.Fprintf(&r.text, "\n[%s]\n", ch.Reason)
			}
			r.mu.Unlock()
			if ferr != nil {
				return
			}
		}
		if err != nil && err != port.ErrTimeout {
			return
		}
	}
}

func (r *reader) wait(t *testing.T, after int, s string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		out := r.text.String()[after:]
		r.mu.Unlock()
		if strings.Contains(out, s) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no %q within %v in:\n%q", s, d, r.text.String()[after:])
	return ""
}

func (r *reader) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.text.Len()
}

// TestVirtualESP8266 runs the Follower against the virtual ESP8266 with
// real wire timing: its ROM prints at 74880, the demo firmware at 115200.
func TestVirtualESP8266(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := port.Open(ctx, fmt.Sprintf("sim://esp8266?id=%s", t.Name()), 115200)
	if err != nil {
		t.Fatal(err)
	}
	dev := port.SimDevice(p)
	defer dev.Close()
	defer p.Close()
	if err := dev.ProgramBundle("../../firmware-images/esp8266-demo.zip"); err != nil {
		t.Fatal(err)
	}
	f := bootbaud.New(p, 115200, bootbaud.ROMBaud("esp8266"))
	r := &reader{}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.run(rctx, p, f) }()
	defer func() { stop(); <-done }()

	// 1. the console resets the board: the whole boot text is legible
	if err := f.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := flasher.HardReset().Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	out := r.wait(t, 0, "Init done", 10*time.Second)
	// the app's first line is read partly at the ROM's rate (lost)
	for _, s := range []string{"ets Jan  8 2013,rst cause:2, boot mode:(3,6)", "load 0x40100000, len ", "csum 0x", "Mongoose OS 2.20.0", "Reset cause: 6 (external reset)"} {
		if !strings.Contains(out, s) {
			t.Errorf("console reset: no %q in:\n%q", s, out)
		}
	}
	if i, j := strings.Index(out, "csum 0x"), strings.Index(out, "Mongoose OS"); i < 0 || j < i {
		t.Errorf("the app's text must come after the ROM's:\n%q", out)
	}
	if p.BaudRate() != 115200 || f.InROM() {
		t.Errorf("port at %d after boot, want 115200", p.BaudRate())
	}

	// 2. the board restarts by itself (the firmware reboots): the banner
	// is lost, the ROM's load lines are legible, then the app
	mark := r.len()
	if _, err := p.Write([]byte(`{"id":7,"method":"Sys.Reboot","params":{"delay_ms":50}}` + "\n")); err != nil {
		t.Fatal(err)
	}
	out = r.wait(t, mark, "Init done", 10*time.Second)
	for _, s := range []string{"[ROM boot messages at 74880 baud]", "load 0x40100000, len ", "csum 0x", "Reset cause: 4 (soft restart)"} {
		if !strings.Contains(out, s) {
			t.Errorf("self reset: no %q in:\n%q", s, out)
		}
	}
	if p.BaudRate() != 115200 {
		t.Errorf("port at %d after the reboot, want 115200", p.BaudRate())
	}
}
