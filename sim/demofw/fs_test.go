package demofw

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mos-tool/mos/sim"
)

var errCut = errors.New("reset")

// fsFixture is a file store in a 64 KiB region (2 journal + 14 data
// sectors) of a 256 KiB flash.
func fsFixture(t *testing.T) *sim.Flash {
	t.Helper()
	f, err := sim.NewFlash(256<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mountOrFail(t *testing.T, f *sim.Flash, spend func(time.Duration) error) *fileStore {
	t.Helper()
	s, _, err := mountFS(f, 0x10000, 64<<10, spend)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func noWait(time.Duration) error { return nil }

// cloneFlash copies a flash chip's contents into a new one.
func cloneFlash(t *testing.T, f *sim.Flash) *sim.Flash {
	t.Helper()
	mem := make([]byte, f.Size())
	f.ReadAt(mem, 0)
	g := fsFixture(t)
	g.Program(0, mem)
	return g
}

// files reads every file's content.
func files(t *testing.T, s *fileStore) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range s.List() {
		b, _, err := s.Read(e.name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		out[e.name] = string(b)
	}
	return out
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestFSCrashAtEveryStep cuts each operation off after every one of its
// flash steps (the chip reset while it waits for the flash) and checks
// that the mounted file system then holds either the state before or the
// state after the operation, nothing in between.
func TestFSCrashAtEveryStep(t *testing.T) {
	chunk := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	ops := []struct {
		name string
		do   func(s *fileStore) error
	}{
		{"append in the tail", func(s *fileStore) error { return s.Write("a", 3000, chunk(1000, 'x'), false) }},
		{"append across sectors", func(s *fileStore) error { return s.Write("a", 3000, chunk(6000, 'y'), false) }},
		{"overwrite", func(s *fileStore) error { return s.Write("a", 100, chunk(5000, 'z'), false) }},
		{"truncate", func(s *fileStore) error { return s.Write("a", 0, chunk(10, 't'), true) }},
		{"new file", func(s *fileStore) error { return s.Write("n", 0, chunk(9000, 'n'), true) }},
		{"rename over", func(s *fileStore) error { return s.Rename("a", "b") }},
		{"remove", func(s *fileStore) error { return s.Remove("b") }},
	}
	for _, compacting := range []bool{false, true} {
		for _, op := range ops {
			name := op.name
			if compacting {
				name += " compacting"
			}
			t.Run(name, func(t *testing.T) { crashEveryStep(t, op.do, compacting) })
		}
	}
}

// crashEveryStep runs do on a prepared store, once to the end and once cut
// off after each of its flash steps. compacting makes the journal count as
// full, so that do compacts it before its record.
func crashEveryStep(t *testing.T, do func(s *fileStore) error, compacting bool) {
	op := func(s *fileStore) error {
		if compacting {
			s.wpos = sim.FlashSectorSize
		}
		return do(s)
	}
	base := fsFixture(t)
	s := mountOrFail(t, base, noWait)
	for _, w := range []struct {
		name string
		n    int
	}{{"a", 3000}, {"b", 50}} {
		if err := s.Write(w.name, 0, bytes.Repeat([]byte(w.name), w.n), true); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 { // some history in the journal
		if err := s.Write("c", 0, []byte(fmt.Sprint(i)), true); err != nil {
			t.Fatal(err)
		}
	}
	before := files(t, s)
	g := cloneFlash(t, base)
	if err := op(mountOrFail(t, g, noWait)); err != nil {
		t.Fatal(err)
	}
	after := files(t, mountOrFail(t, g, noWait))

	for cut := 0; ; cut++ {
		g := cloneFlash(t, base)
		steps := 0
		s := mountOrFail(t, g, func(time.Duration) error {
			if steps++; steps > cut {
				return errCut
			}
			return nil
		})
		err := op(s)
		got := files(t, mountOrFail(t, g, noWait))
		if !sameFiles(got, before) && !sameFiles(got, after) {
			t.Fatalf("cut after %d steps: neither before nor after", cut)
		}
		if err == nil {
			if !sameFiles(got, after) {
				t.Fatalf("completed, but the state is not the new one")
			}
			return
		}
		// the store goes on working after the crash
		if err := mountOrFail(t, g, noWait).Write("d", 0, []byte("ok"), true); err != nil {
			t.Fatalf("after a cut at %d: %v", cut, err)
		}
	}
}

func TestFSBlankAndForeignFlashFormat(t *testing.T) {
	f := fsFixture(t)
	s, formatted, err := mountFS(f, 0x10000, 64<<10, noWait)
	if err != nil || !formatted || s.Size() != 14*4096 || s.Free() != s.Size() {
		t.Fatalf("blank: formatted %v, size %d, free %d, %v", formatted, s.Size(), s.Free(), err)
	}
	if _, formatted, _ := mountFS(f, 0x10000, 64<<10, noWait); formatted {
		t.Errorf("formatted again on the second boot")
	}
	g := fsFixture(t)
	g.Program(0x10000, bytes.Repeat([]byte{0x5A}, 64<<10))
	s, formatted, err = mountFS(g, 0x10000, 64<<10, noWait)
	if err != nil || !formatted {
		t.Fatalf("foreign data: formatted %v, %v", formatted, err)
	}
	if err := s.Write("x", 0, bytes.Repeat([]byte{1}, 5000), true); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := s.Read("x", 0, -1); !bytes.Equal(b, bytes.Repeat([]byte{1}, 5000)) {
		t.Errorf("a write over foreign data reads back wrong")
	}
}

func TestFSWriteSpendsFlashTime(t *testing.T) {
	f := fsFixture(t)
	var spent time.Duration
	s := mountOrFail(t, f, func(d time.Duration) error { spent += d; return nil })
	spent = 0
	s.Write("a", 0, make([]byte, 4096), true)
	// blank sector: 16 pages, then a one-page record
	if want := 17 * f.Timings.PageProgram; spent != want {
		t.Errorf("first write spent %v, want %v", spent, want)
	}
	s.Remove("a")
	spent = 0
	s.Write("b", 0, make([]byte, 100), true)
	// the freed sector is reused: it needs an erase now
	if want := f.Timings.SectorErase + 2*f.Timings.PageProgram; spent != want {
		t.Errorf("write into a used sector spent %v, want %v", spent, want)
	}
}
