package sim

import (
	"bytes"
	"crypto/md5"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// flashTimingsForTest are distinct round numbers, so sums are easy to check.
var flashTimingsForTest = FlashTimings{
	PageProgram:     1 * time.Millisecond,
	SectorErase:     10 * time.Millisecond,
	BlockErase:      100 * time.Millisecond,
	ChipErasePerMiB: time.Second,
}

func newFlashForTest(t *testing.T, size int, path string) *Flash {
	t.Helper()
	f, err := NewFlash(size, path)
	if err != nil {
		t.Fatal(err)
	}
	f.Timings = flashTimingsForTest
	t.Cleanup(func() { f.Close() })
	return f
}

func flashRead(t *testing.T, f *Flash, addr uint32, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if err := f.ReadAt(p, addr); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlashSizes(t *testing.T) {
	for _, size := range []int{0, 128 << 10, 3 << 20, 32 << 20, -1} {
		if _, err := NewFlash(size, ""); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
	for size, id := range map[int]uint32{256 << 10: 0x1240EF, 1 << 20: 0x1440EF, 4 << 20: 0x1640EF, 16 << 20: 0x1840EF} {
		f := newFlashForTest(t, size, "")
		if f.Size() != size || f.JEDECID() != id {
			t.Errorf("size %d: Size %d, JEDEC ID 0x%06x, want 0x%06x", size, f.Size(), f.JEDECID(), id)
		}
		if !bytes.Equal(flashRead(t, f, uint32(size)-16, 16), bytes.Repeat([]byte{0xFF}, 16)) {
			t.Errorf("size %d: not blank", size)
		}
	}
}

func TestFlashProgramANDs(t *testing.T) {
	f := newFlashForTest(t, 256<<10, "")
	if _, err := f.Program(0x1000, []byte{0xF0, 0x0F, 0xAA, 0x00}); err != nil {
		t.Fatal(err)
	}
	// Programming again can only clear more bits.
	if _, err := f.Program(0x1000, []byte{0x3C, 0xFF, 0x55, 0xFF}); err != nil {
		t.Fatal(err)
	}
	if got := flashRead(t, f, 0x1000, 5); !bytes.Equal(got, []byte{0x30, 0x0F, 0x00, 0x00, 0xFF}) {
		t.Fatalf("got %x", got)
	}
	// Erasing brings the sector back to 0xFF, and it programs cleanly again.
	if _, err := f.EraseSector(0x1000); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Program(0x1000, []byte{0x12, 0x34}); err != nil {
		t.Fatal(err)
	}
	if got := flashRead(t, f, 0x1000, 3); !bytes.Equal(got, []byte{0x12, 0x34, 0xFF}) {
		t.Fatalf("after erase: %x", got)
	}
}

func TestFlashEraseScope(t *testing.T) {
	f := newFlashForTest(t, 256<<10, "")
	zeros := make([]byte, f.Size())
	if _, err := f.Program(0, zeros); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		erase      func() (time.Duration, error)
		start, end uint32
	}{
		{"sector", func() (time.Duration, error) { return f.EraseSector(0x3000) }, 0x3000, 0x4000},
		{"block", func() (time.Duration, error) { return f.EraseBlock(0x20000) }, 0x20000, 0x30000},
		{"range", func() (time.Duration, error) { return f.EraseRange(0xF000, 0x12000) }, 0xF000, 0x21000},
	} {
		if _, err := f.Program(0, zeros); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.erase(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		mem := flashRead(t, f, 0, f.Size())
		for a, b := range mem {
			want := byte(0)
			if uint32(a) >= tc.start && uint32(a) < tc.end {
				want = 0xFF
			}
			if b != want {
				t.Fatalf("%s: byte 0x%x = %02x, want %02x", tc.name, a, b, want)
			}
		}
	}
	if _, err := f.EraseChip(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(flashRead(t, f, 0, f.Size()), bytes.Repeat([]byte{0xFF}, f.Size())) {
		t.Fatal("chip erase left data")
	}
}

func TestFlashTimingSums(t *testing.T) {
	f := newFlashForTest(t, 4<<20, "")
	const ms = time.Millisecond
	for _, tc := range []struct {
		name string
		op   func() (time.Duration, error)
		want time.Duration
	}{
		{"sector", func() (time.Duration, error) { return f.EraseSector(0x1000) }, 10 * ms},
		{"block", func() (time.Duration, error) { return f.EraseBlock(0x10000) }, 100 * ms},
		{"chip", f.EraseChip, 4 * time.Second},
		{"empty range", func() (time.Duration, error) { return f.EraseRange(0x1000, 0) }, 0},
		{"one block", func() (time.Duration, error) { return f.EraseRange(0x10000, 0x10000) }, 100 * ms},
		// 0x1000..0x10000 in 15 sectors, 0x10000..0x30000 in 2 blocks,
		// 0x30000..0x32000 in 2 sectors.
		{"mixed range", func() (time.Duration, error) { return f.EraseRange(0x1000, 0x31000) }, 17*10*ms + 2*100*ms},
		// Unaligned start: no block fits before 0x20000.
		{"sectors only", func() (time.Duration, error) { return f.EraseRange(0x11000, 0xF000) }, 15 * 10 * ms},
		{"program one byte", func() (time.Duration, error) { return f.Program(0x100, []byte{0}) }, 1 * ms},
		{"program a page", func() (time.Duration, error) { return f.Program(0x200, make([]byte, 256)) }, 1 * ms},
		{"program across a page boundary", func() (time.Duration, error) { return f.Program(0x3FF, []byte{0, 0}) }, 2 * ms},
		{"program 4 KiB unaligned", func() (time.Duration, error) { return f.Program(0x1080, make([]byte, 4096)) }, 17 * ms},
		{"program nothing", func() (time.Duration, error) { return f.Program(0x100, nil) }, 0},
	} {
		got, err := tc.op()
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestFlashDefaultTimings(t *testing.T) {
	d := DefaultFlashTimings()
	if d.PageProgram != 400*time.Microsecond || d.SectorErase != 45*time.Millisecond || d.BlockErase != 150*time.Millisecond {
		t.Fatalf("%+v", d)
	}
	f, err := NewFlash(4<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Timings != d {
		t.Fatal("a new flash does not start with the default timings")
	}
	if got, _ := f.EraseChip(); got != 10*time.Second {
		t.Fatalf("4 MiB chip erase %v, want the datasheet's 10 s", got)
	}
}

func TestFlashErrors(t *testing.T) {
	f := newFlashForTest(t, 256<<10, "")
	end := uint32(f.Size())
	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"read past end", func() error { return f.ReadAt(make([]byte, 2), end-1) }, ErrFlashRange},
		{"read far past end", func() error { return f.ReadAt(make([]byte, 1), 0xFFFFFFFF) }, ErrFlashRange},
		{"program past end", func() error { _, err := f.Program(end-1, []byte{0, 0}); return err }, ErrFlashRange},
		{"program wraps uint32", func() error { _, err := f.Program(0xFFFFFFFF, []byte{0, 0}); return err }, ErrFlashRange},
		{"sector misaligned", func() error { _, err := f.EraseSector(0x800); return err }, ErrFlashAlign},
		{"sector past end", func() error { _, err := f.EraseSector(end); return err }, ErrFlashRange},
		{"block misaligned", func() error { _, err := f.EraseBlock(0x1000); return err }, ErrFlashAlign},
		{"block past end", func() error { _, err := f.EraseBlock(end); return err }, ErrFlashRange},
		{"range misaligned start", func() error { _, err := f.EraseRange(0x100, 0x1000); return err }, ErrFlashAlign},
		{"range misaligned size", func() error { _, err := f.EraseRange(0x1000, 0x100); return err }, ErrFlashAlign},
		{"range past end", func() error { _, err := f.EraseRange(end-0x1000, 0x2000); return err }, ErrFlashRange},
		{"range wraps uint32", func() error { _, err := f.EraseRange(0x1000, 0xFFFFF000); return err }, ErrFlashRange},
		{"md5 past end", func() error { _, err := f.MD5(end-4, 8); return err }, ErrFlashRange},
	} {
		if err := tc.op(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Nothing was changed by the failed calls.
	if !bytes.Equal(flashRead(t, f, 0, f.Size()), bytes.Repeat([]byte{0xFF}, f.Size())) {
		t.Fatal("a failed call changed the contents")
	}
	// Reads and programs at the very end are fine.
	if _, err := f.Program(end-1, []byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := f.ReadAt(nil, end); err != nil {
		t.Fatal(err)
	}

	f.Close()
	if err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrFlashClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := f.EraseChip(); !errors.Is(err, ErrFlashClosed) {
		t.Fatalf("erase after close: %v", err)
	}
}

func TestFlashMD5(t *testing.T) {
	f := newFlashForTest(t, 256<<10, "")
	data := []byte("hello, flash")
	if _, err := f.Program(0x2000, data); err != nil {
		t.Fatal(err)
	}
	got, err := f.MD5(0x2000, uint32(len(data)))
	if err != nil || got != md5.Sum(data) {
		t.Fatalf("%x, %v", got, err)
	}
	if got, _ := f.MD5(0, 0); got != md5.Sum(nil) {
		t.Fatalf("empty: %x", got)
	}
}

func TestFlashPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flash.bin")
	f, err := NewFlash(256<<10, path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 256<<10 {
		t.Fatalf("new file: %v, %v", st, err)
	}
	if _, err := f.Program(0x10, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Program(0x3FFFF, []byte{0x42}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.EraseSector(0x1000); err != nil { // already blank: stays blank
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// Written through: the file matches without reopening.
	raw, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(raw[0x10:0x13], []byte{1, 2, 3}) || raw[0x3FFFF] != 0x42 || raw[0] != 0xFF {
		t.Fatalf("file contents %x…, %v", raw[:0x14], err)
	}

	g := newFlashForTest(t, 256<<10, path)
	if got := flashRead(t, g, 0xF, 5); !bytes.Equal(got, []byte{0xFF, 1, 2, 3, 0xFF}) {
		t.Fatalf("reloaded %x", got)
	}
	if _, err := g.EraseSector(0); err != nil {
		t.Fatal(err)
	}
	g.Close()
	h := newFlashForTest(t, 256<<10, path)
	if got := flashRead(t, h, 0x10, 1); got[0] != 0xFF {
		t.Fatal("erase not persisted")
	}
	if got := flashRead(t, h, 0x3FFFF, 1); got[0] != 0x42 {
		t.Fatal("data outside the erased sector lost")
	}
	h.Close()

	// A file of another size is refused, and left alone.
	if _, err := NewFlash(512<<10, path); err == nil {
		t.Fatal("wrong-size file accepted")
	}
	if st, _ := os.Stat(path); st.Size() != 256<<10 {
		t.Fatalf("file resized to %d", st.Size())
	}

	// An empty file (e.g. from os.CreateTemp) starts blank.
	empty := filepath.Join(t.TempDir(), "empty.bin")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newFlashForTest(t, 256<<10, empty)
	if got := flashRead(t, e, 0, 1); got[0] != 0xFF {
		t.Fatal("empty file not blank")
	}
	if st, _ := os.Stat(empty); st.Size() != 256<<10 {
		t.Fatalf("empty file grown to %d", st.Size())
	}

	if _, err := NewFlash(256<<10, filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Fatal("unwritable path accepted")
	}
}

func TestFlashConcurrent(t *testing.T) {
	f := newFlashForTest(t, 256<<10, filepath.Join(t.TempDir(), "flash.bin"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			addr := uint32(i) * FlashSectorSize
			for range 20 {
				if _, err := f.EraseSector(addr); err != nil {
					t.Error(err)
				}
				if _, err := f.Program(addr, bytes.Repeat([]byte{byte(i)}, 300)); err != nil {
					t.Error(err)
				}
				p := make([]byte, 300)
				if err := f.ReadAt(p, addr); err != nil || !bytes.Equal(p, bytes.Repeat([]byte{byte(i)}, 300)) {
					t.Errorf("sector %d: %v", i, err)
				}
				if _, err := f.MD5(0, uint32(f.Size())); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
