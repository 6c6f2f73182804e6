package flasher

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"net"
	"testing"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
)

// image makes test data: half pseudo-random, half repetitive, like code.
func image(n int, seed int64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewSource(seed))
	rng.Read(b[:n/2])
	for i := n / 2; i < n; i++ {
		b[i] = byte(i / 64)
	}
	return b
}

func openSession(t *testing.T, p port.Port, baud int, noStub bool) *Loader {
	t.Helper()
	l, err := Open(context.Background(), p, SessionOptions{Baud: baud, NoStub: noStub})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := l.AttachFlash(context.Background(), 4<<20); err != nil {
		t.Fatalf("AttachFlash: %v", err)
	}
	return l
}

// simSession opens a virtual chip (fast mode) and a session on it at baud;
// the port is closed when the test ends.
func simSession(t *testing.T, chip string, baud int, noStub bool) (*Loader, *sim.Device) {
	t.Helper()
	p, err := port.Open(context.Background(), "sim://"+chip+"?fast=1", 115200)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return openSession(t, p, baud, noStub), port.SimDevice(p)
}

func checkFlash(t *testing.T, dev *sim.Device, addr uint32, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if err := dev.Flash().ReadAt(got, addr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("flash at 0x%X does not hold the data", addr)
	}
}

// Every chip, with and without the stub (where the ROM can write), at the
// ROM rate and a fast one: write, verify, read back equal bytes.
func TestWriteEveryChip(t *testing.T) {
	for _, c := range chips.All() {
		for _, tc := range []struct {
			name   string
			noStub bool
			baud   int
		}{{"stub-921600", false, 921600}, {"stub-115200", false, 115200}, {"rom-115200", true, 115200}, {"rom-460800", true, 460800}} {
			if tc.noStub && c.IsESP8266() && tc.baud != 115200 {
				continue // the ESP8266 ROM cannot change its rate
			}
			t.Run(c.Key+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				l, dev := simSession(t, c.Key, tc.baud, tc.noStub)
				data := image(40000, int64(len(c.Key)))
				regions := []Region{{Name: "app", Addr: 0x10000, Data: data}, {Name: "small", Addr: 0x8000, Data: []byte("partition table")}}
				// the ESP8266 ROM cannot read flash to keep the rest of the
				// last sector: it must be told that it may erase it
				rep, err := l.WriteRegions(context.Background(), regions, WriteOptions{NoPreserve: tc.noStub && c.IsESP8266()})
				if err != nil {
					t.Fatalf("WriteRegions: %v", err)
				}
				wantState := StateVerified
				if tc.noStub && c.IsESP8266() {
					wantState = StateUnverified
				}
				for _, r := range rep {
					if r.State != wantState {
						t.Errorf("%s: state %s, want %s", r.Name, r.State, wantState)
					}
				}
				checkFlash(t, dev, 0x10000, data)
				if tc.noStub && c.IsESP8266() {
					return // the ESP8266 ROM cannot read flash either
				}
				back, err := l.ReadFlash(context.Background(), 0x10000, len(data), nil)
				if err != nil || !bytes.Equal(back, data) {
					t.Fatalf("read back: equal=%v err=%v", bytes.Equal(back, data), err)
				}
			})
		}
	}
}

// Re-flashing the same data writes nothing; a 4 KiB change rewrites one
// sector; --force writes all.
func TestSkipUnchanged(t *testing.T) {
	l, dev := simSession(t, "esp32", 921600, false)
	ctx := context.Background()
	data := image(300000, 7)
	reg := []Region{{Name: "app", Addr: 0x10000, Data: data}}
	if _, err := l.WriteRegions(ctx, reg, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := l.WriteRegions(ctx, reg, WriteOptions{})
	if err != nil || rep[0].State != StateUnchanged || rep[0].BytesSent != 0 {
		t.Fatalf("second write: %+v %v", rep, err)
	}
	changed := append([]byte(nil), data...)
	for i := 0x21000; i < 0x22000; i++ {
		changed[i] ^= 0x5A
	}
	rep, err = l.WriteRegions(ctx, []Region{{Name: "app", Addr: 0x10000, Data: changed}}, WriteOptions{})
	if err != nil || rep[0].State != StateVerified || rep[0].BytesWritten != 0x1000 {
		t.Fatalf("after a 4 KiB change: %+v %v", rep, err)
	}
	checkFlash(t, dev, 0x10000, changed)
	rep, err = l.WriteRegions(ctx, []Region{{Name: "app", Addr: 0x10000, Data: changed}}, WriteOptions{Force: true})
	// the last sector is written whole: the region and the bytes after it
	if err != nil || rep[0].BytesWritten != len(changed)+rep[0].BytesKept || rep[0].BytesKept != 0x1000-len(changed)%0x1000 {
		t.Fatalf("forced: %+v %v", rep, err)
	}
}

// A link that cannot run at the asked rate (a bridge limited to 921600)
// falls back to a lower one and still flashes.
func TestBaudFallback(t *testing.T) {
	p, err := port.Open(context.Background(), "sim://esp32?fast=1&maxbaud=921600", 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var warnings []string
	l, err := Open(context.Background(), p, SessionOptions{Baud: 2000000, Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if p.BaudRate() != 921600 || len(warnings) == 0 {
		t.Fatalf("baud %d, warnings %q: want a fallback to 921600", p.BaudRate(), warnings)
	}
	if _, err := l.WriteRegions(context.Background(), []Region{{Name: "x", Addr: 0, Data: image(10000, 1)}}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A reset in the middle of a write: the report says which regions are
// verified, and running again completes the job.
func TestInterruptedWriteResumes(t *testing.T) {
	url := "sim://esp32c3?fast=1&id=interrupted"
	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	dev := port.SimDevice(p)
	defer dev.Close()
	l := openSession(t, p, 921600, false)
	regions := []Region{
		{Name: "bootloader", Addr: 0x0, Data: image(20000, 1)},
		{Name: "app", Addr: 0x10000, Data: image(400000, 2)},
	}
	progressed := false
	_, err = l.WriteRegions(context.Background(), regions, WriteOptions{Progress: func(stage, part string, done, total int64) {
		if part == "app" && stage == "writing" && done > 100000 && !progressed {
			progressed = true
			dev.PressReset(false) // the board resets mid-write
		}
	}})
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want *WriteError", err)
	}
	if we.Report[0].State != StateVerified || we.Report[1].State != StateFailed {
		t.Fatalf("report %+v", we.Report)
	}
	p.Close()

	p, err = port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l = openSession(t, p, 921600, false)
	rep, err := l.WriteRegions(context.Background(), regions, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep[0].State != StateUnchanged || rep[1].State != StateVerified || rep[1].SectorsSkipped == 0 {
		t.Fatalf("second run: %+v", rep)
	}
	checkFlash(t, dev, 0x10000, regions[1].Data)
}

// Through `mos sim serve`'s RFC 2217 server: every chip, with and without
// the stub, at the ROM rate and a fast one; read back equal bytes.
func TestWriteOverRFC2217(t *testing.T) {
	for _, c := range chips.All() {
		for _, tc := range []struct {
			name   string
			noStub bool
			baud   int
		}{{"stub-921600", false, 921600}, {"stub-115200", false, 115200}, {"rom-115200", true, 115200}, {"rom-921600", true, 921600}} {
			if tc.noStub && c.IsESP8266() && tc.baud != 115200 {
				continue // the ESP8266 ROM cannot change its rate
			}
			t.Run(c.Key+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				dev, err := sim.New(sim.Config{Chip: c, Fast: true})
				if err != nil {
					t.Fatal(err)
				}
				defer dev.Close()
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go dev.ServeRFC2217(ctx, ln)
				p, err := port.Open(ctx, "rfc2217://"+ln.Addr().String(), 115200)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				l := openSession(t, p, tc.baud, tc.noStub)
				data := image(30000, 3)
				if _, err := l.WriteRegions(ctx, []Region{{Name: "app", Addr: 0x20000, Data: data}}, WriteOptions{NoPreserve: tc.noStub && c.IsESP8266()}); err != nil {
					t.Fatal(err)
				}
				checkFlash(t, dev, 0x20000, data)
				if tc.noStub && c.IsESP8266() {
					return // the ESP8266 ROM cannot read flash
				}
				back, err := l.ReadFlash(ctx, 0x20000, len(data), nil)
				if err != nil || !bytes.Equal(back, data) {
					t.Fatalf("read back: equal=%v err=%v", bytes.Equal(back, data), err)
				}
			})
		}
	}
}
