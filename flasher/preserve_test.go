package flasher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mos-tool/mos/sim"
)

// fillFlash puts a pattern on the whole flash, so that any byte erased or
// written where it should not be shows.
func fillFlash(t *testing.T, dev *sim.Device) []byte {
	t.Helper()
	f := dev.Flash()
	old := image(f.Size(), 99)
	if _, err := f.Program(0, old); err != nil {
		t.Fatal(err)
	}
	return old
}

// flashBytes reads the device's flash directly.
func flashBytes(t *testing.T, dev *sim.Device) []byte {
	t.Helper()
	got := make([]byte, dev.Flash().Size())
	if err := dev.Flash().ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	return got
}

// wantFlash is old with data at addr.
func wantFlash(old []byte, addr uint32, data []byte) []byte {
	w := append([]byte(nil), old...)
	copy(w[addr:], data)
	return w
}

// firstDiff describes where two flash images differ.
func firstDiff(got, want []byte) string {
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at 0x%X: 0x%02X, want 0x%02X", i, got[i], want[i])
		}
	}
	return "equal"
}

// A region that does not start or end on a sector boundary changes only
// its own bytes: every other byte of its first and last sector (and of
// the whole flash) is what it was. With the stub, and with the ROM loader
// of a chip that can read flash.
func TestUnalignedWriteKeepsTheRestOfItsSectors(t *testing.T) {
	cases := []struct {
		name string
		addr uint32
		size int
	}{
		{"first and last sector", 0x21004, 0x2000},
		{"inside one sector", 0x30100, 0x200},
		{"four bytes", 0x1004, 4},
		{"aligned start, unaligned end", 0x40000, 10000},
		{"unaligned start, aligned end", 0x50800, 0x1800},
	}
	loaders := []struct {
		chip   string
		noStub bool
		force  bool
	}{
		{"esp32", false, false},
		{"esp32", false, true},
		{"esp32", true, false},
		{"esp8266", false, false},
		{"esp32c3", false, false},
	}
	for _, ld := range loaders {
		name := ld.chip + "/stub"
		if ld.noStub {
			name = ld.chip + "/rom"
		}
		if ld.force {
			name += "/force"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, dev := simSession(t, ld.chip, 921600, ld.noStub)
			old := fillFlash(t, dev)
			for i, c := range cases {
				data := image(c.size, int64(i+1))
				var warned []string
				rep, err := l.WriteRegions(context.Background(), []Region{{Name: "part", Addr: c.addr, Data: data}},
					WriteOptions{Force: ld.force, Warn: func(m string) { warned = append(warned, m) }})
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				want := wantFlash(old, c.addr, data)
				if got := flashBytes(t, dev); !bytes.Equal(got, want) {
					t.Fatalf("%s: flash is not the old contents with the region in it: %s", c.name, firstDiff(got, want))
				}
				head := int(c.addr % 0x1000)
				tail := (0x1000 - (head+c.size)%0x1000) % 0x1000
				if rep[0].State != StateVerified || rep[0].BytesKept != head+tail || rep[0].BytesErased != 0 || len(warned) != 0 {
					t.Fatalf("%s: report %+v, warnings %q", c.name, rep[0], warned)
				}
				old = want
			}
			if ld.force {
				return
			}
			// the same again: found on flash, nothing read or written
			for i, c := range cases {
				rep, err := l.WriteRegions(context.Background(), []Region{{Name: "part", Addr: c.addr, Data: image(c.size, int64(i+1))}}, WriteOptions{})
				if err != nil || rep[0].State != StateUnchanged || rep[0].BytesSent != 0 || rep[0].BytesKept != 0 {
					t.Fatalf("%s again: %+v %v", c.name, rep, err)
				}
			}
		})
	}
}

// Two regions sharing a sector: each keeps the other.
func TestRegionsSharingASector(t *testing.T) {
	l, dev := simSession(t, "esp32", 921600, false)
	old := fillFlash(t, dev)
	a, b := image(0x300, 1), image(0x1200, 2)
	if _, err := l.WriteRegions(context.Background(), []Region{{Name: "a", Addr: 0x9100, Data: a}, {Name: "b", Addr: 0x9800, Data: b}}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := wantFlash(wantFlash(old, 0x9100, a), 0x9800, b)
	if got := flashBytes(t, dev); !bytes.Equal(got, want) {
		t.Fatalf("flash: %s", firstDiff(got, want))
	}
}

// --no-preserve: the bytes around the region are erased, and the loss is
// stated, with the addresses, before the write.
func TestNoPreserveStatesTheLoss(t *testing.T) {
	l, dev := simSession(t, "esp32", 921600, false)
	old := fillFlash(t, dev)
	data := []byte("four")
	var warned []string
	var flashAtWarning []byte
	rep, err := l.WriteRegions(context.Background(), []Region{{Name: "four.bin", Addr: 0x1004, Data: data}},
		WriteOptions{NoPreserve: true, Warn: func(m string) {
			warned = append(warned, m)
			flashAtWarning = flashBytes(t, dev)
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := "four.bin at 0x1004 does not fill its 4 KiB sectors; --no-preserve: the 4 bytes at 0x1000-0x1003 before it and the 4088 bytes at 0x1008-0x1FFF after it will be erased"
	if len(warned) != 1 || warned[0] != want {
		t.Fatalf("warnings %q, want %q", warned, want)
	}
	if !bytes.Equal(flashAtWarning, old) {
		t.Fatal("the loss was stated after the flash had changed")
	}
	if rep[0].BytesErased != 4092 || rep[0].BytesKept != 0 || rep[0].State != StateVerified {
		t.Fatalf("report %+v", rep[0])
	}
	exp := append([]byte(nil), old...)
	copy(exp[0x1000:0x2000], bytes.Repeat([]byte{0xFF}, 0x1000))
	copy(exp[0x1004:], data)
	if got := flashBytes(t, dev); !bytes.Equal(got, exp) {
		t.Fatalf("flash is not: erased sector with the four bytes, the rest unchanged: %s", firstDiff(got, exp))
	}
}

// The ESP8266 ROM cannot read flash: an unaligned region is refused before
// anything is written, unless the loss is accepted.
func TestESP8266ROMRefusesUnalignedWithoutNoPreserve(t *testing.T) {
	l, dev := simSession(t, "esp8266", 115200, true)
	old := fillFlash(t, dev)
	regions := []Region{
		{Name: "aligned", Addr: 0x10000, Data: image(0x2000, 1)},
		{Name: "four.bin", Addr: 0x21004, Data: []byte("four")},
	}
	rep, err := l.WriteRegions(context.Background(), regions, WriteOptions{})
	var pe *PreserveError
	if !errors.As(err, &pe) || pe.Region != "four.bin" || pe.ExitCode() != 2 || !strings.Contains(pe.Hint(), "--no-preserve") {
		t.Fatalf("err = %v, want a *PreserveError for four.bin", err)
	}
	if rep[0].State != StatePending || !bytes.Equal(flashBytes(t, dev), old) {
		t.Fatalf("something was written before the refusal: %+v", rep)
	}
	var warned []string
	rep, err = l.WriteRegions(context.Background(), regions, WriteOptions{NoPreserve: true, Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "0x21000-0x21003") || rep[1].State != StateUnverified || rep[1].BytesErased != 4092 {
		t.Fatalf("warnings %q, report %+v", warned, rep)
	}
	got := make([]byte, 4)
	dev.Flash().ReadAt(got, 0x21004)
	if string(got) != "four" {
		t.Fatalf("flash at 0x21004 = %q", got)
	}
}

// A part of a build (OwnsSectors) fills the rest of its last sector with
// its own slack, as esptool writes such parts: the ESP8266 ROM, which
// cannot read, writes it without asking for --no-preserve, and no loss is
// reported.
func TestOwnedSectorsNeedNoPreserve(t *testing.T) {
	l, dev := simSession(t, "esp8266", 115200, true)
	fillFlash(t, dev)
	var warned []string
	rep, err := l.WriteRegions(context.Background(),
		[]Region{{Name: "app", Addr: 0x10000, Data: image(0x1804, 3), OwnsSectors: true}},
		WriteOptions{Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warned) != 0 || rep[0].BytesErased != 0 || rep[0].BytesKept != 0 {
		t.Fatalf("warnings %q, report %+v", warned, rep)
	}
	got := make([]byte, 0x2000)
	dev.Flash().ReadAt(got, 0x10000)
	if !bytes.Equal(got[:0x1804], image(0x1804, 3)) || !bytes.Equal(got[0x1804:], bytes.Repeat([]byte{0xFF}, 0x2000-0x1804)) {
		t.Fatal("the part, then erased slack to its sector's end, was not what the flash holds")
	}
}
