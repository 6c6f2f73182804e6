package demofw

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mos-tool/mos/sim"
)

// fileStore is the demo firmware's file system: a small flash format of
// our own (not SPIFFS or LittleFS, whose images the demo never ships). It
// lives in a region of whole 4 KiB sectors:
//
//	sector 0, 1   journal sectors; the valid one with the higher generation
//	              is active, the other is erased and rewritten on compaction
//	sector 2..    data sectors; a file owns whole sectors (a 1-byte file
//	              takes 4 KiB), listed in order in its journal record
//
// A journal sector is a 16-byte header (magic "MFS1", generation u32,
// snapshot length u32, CRC-32 of the snapshot u32), a snapshot (one "set"
// record per file, written in one go at compaction) and then records
// appended one per change. A record is length u16, CRC-32 u32 of the
// payload, payload:
//
//	1 set     name-len u8, name, size u32, count u16, sectors u16 x count
//	2 remove  name-len u8, name
//	3 rename  name-len u8, src, name-len u8, dst (replaces dst)
//
// All integers are little-endian. Blank flash has no magic and mounts as
// "not formatted": the firmware formats it (writes generation 1).
//
// Crash safety: a change first writes all its data, then one record; the
// record is the commit. Data never overwrites sectors the committed state
// uses, except appending into the erased tail of a file's last sector,
// past its committed size. A reset at any point leaves either the old or
// the new state of a file: an upload cut off after N chunks shows the N
// committed chunks and its size says so. A torn record fails its CRC and
// ends the replay; the next mount compacts. Rename is one record, so it is
// atomic: a client uploads to a temporary name and renames at the end.
type fileStore struct {
	flash   *sim.Flash
	base    uint32
	sectors int // in the region, journal sectors included
	spend   func(time.Duration) error

	files  map[string]*fsFile
	active int    // journal sector in use, 0 or 1
	gen    uint32 // its generation
	wpos   int    // where its next record goes
}

type fsFile struct {
	name    string
	size    int
	sectors []uint16 // region-relative sector numbers, in file order
}

const (
	fsMagic        = "MFS1"
	fsHeaderLen    = 16
	fsJournalSecs  = 2
	fsRecordHdrLen = 6
	fsMaxName      = 48
	fsMaxFiles     = 48 // keeps a full snapshot well inside one sector

	recSet    = 1
	recRemove = 2
	recRename = 3
)

// File store errors, mapped to RPC errors by the FS methods.
var (
	errFSNoSpace   = errors.New("no space left on the file system")
	errFSNotFound  = errors.New("no such file")
	errFSName      = errors.New("bad file name")
	errFSTooMany   = errors.New("too many files")
	errFSCorrupted = errors.New("file system is corrupted")
)

// mountFS opens the file system in size bytes at base. formatted reports
// that none was there (blank or foreign flash) and a new one was written.
func mountFS(f *sim.Flash, base, size uint32, spend func(time.Duration) error) (s *fileStore, formatted bool, err error) {
	if base%sim.FlashSectorSize != 0 || size%sim.FlashSectorSize != 0 || size < 3*sim.FlashSectorSize || size/sim.FlashSectorSize > 0xFFFF {
		return nil, false, fmt.Errorf("sim: file system region 0x%x+0x%x is not usable", base, size)
	}
	s = &fileStore{flash: f, base: base, sectors: int(size / sim.FlashSectorSize), spend: spend, files: map[string]*fsFile{}}
	best, bestGen := -1, uint32(0)
	for i := range fsJournalSecs {
		if gen, ok := s.journalValid(i); ok && (best < 0 || gen > bestGen) {
			best, bestGen = i, gen
		}
	}
	if best < 0 {
		return s, true, s.format()
	}
	s.active, s.gen = best, bestGen
	clean, err := s.replay()
	if err != nil {
		return nil, false, err
	}
	if !clean {
		// a torn record (reset while writing it): start a clean journal
		return s, false, s.compact()
	}
	return s, false, nil
}

// Size is the capacity for file data in bytes.
func (s *fileStore) Size() int { return (s.sectors - fsJournalSecs) * sim.FlashSectorSize }

// Free is the space left, in whole sectors as files use it.
func (s *fileStore) Free() int { return len(s.freeSectors()) * sim.FlashSectorSize }

// List returns the files sorted by name.
func (s *fileStore) List() []fsFile {
	out := make([]fsFile, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b fsFile) int { return strings.Compare(a.name, b.name) })
	return out
}

// Stat returns a file's size.
func (s *fileStore) Stat(name string) (int, bool) {
	f, ok := s.files[name]
	if !ok {
		return 0, false
	}
	return f.size, true
}

// Read returns up to n bytes from off (n < 0: to the end) and the size.
func (s *fileStore) Read(name string, off, n int) ([]byte, int, error) {
	f, ok := s.files[name]
	if !ok {
		return nil, 0, errFSNotFound
	}
	off = min(max(off, 0), f.size)
	if n < 0 || off+n > f.size {
		n = f.size - off
	}
	out := make([]byte, n)
	for done := 0; done < n; {
		pos := off + done
		k, in := pos/sim.FlashSectorSize, pos%sim.FlashSectorSize
		m := min(n-done, sim.FlashSectorSize-in)
		if err := s.flash.ReadAt(out[done:done+m], s.sectorAddr(f.sectors[k])+uint32(in)); err != nil {
			return nil, 0, err
		}
		done += m
	}
	return out, f.size, nil
}

// Write puts data at off. truncate empties the file first (FS.Put with
// offset 0, or without offset and append). A missing file is created; a
// gap between the end of the file and off reads as zeros. Either the whole
// write is committed or, on an error, nothing of it.
func (s *fileStore) Write(name string, off int, data []byte, truncate bool) error {
	if err := checkFSName(name); err != nil {
		return err
	}
	old := s.files[name]
	if old == nil && len(s.files) >= fsMaxFiles {
		return errFSTooMany
	}
	var oldSize int
	var oldSecs []uint16
	if old != nil && !truncate {
		oldSize, oldSecs = old.size, old.sectors
	}
	newSize := max(oldSize, off+len(data))
	if newSize > s.Size() {
		return errFSNoSpace
	}
	// The bytes that change: from the old end (a gap) or off, to the end
	// of the new data.
	from := min(off, oldSize)
	to := off + len(data)
	newSecs := slices.Clone(oldSecs)
	for len(newSecs) < (newSize+sim.FlashSectorSize-1)/sim.FlashSectorSize {
		newSecs = append(newSecs, 0) // allocated below
	}

	type sectorWrite struct {
		k       int    // file sector index
		fresh   bool   // goes to a newly allocated sector
		content []byte // fresh: the whole sector's new bytes
		at      int    // in place: offset in the sector
		patch   []byte // in place: bytes to program there
	}
	var plan []sectorWrite
	for k := from / sim.FlashSectorSize; k*sim.FlashSectorSize < to; k++ {
		start, end := k*sim.FlashSectorSize, min((k+1)*sim.FlashSectorSize, newSize)
		buf := make([]byte, end-start)
		if k < len(oldSecs) {
			// the committed part of this sector
			n := min(oldSize, end) - start
			if n > 0 {
				if err := s.flash.ReadAt(buf[:n], s.sectorAddr(oldSecs[k])); err != nil {
					return err
				}
			}
		}
		// a gap between the old end and off stays zero, as make left it
		if lo, hi := max(start, off), min(end, to); lo < hi {
			copy(buf[lo-start:], data[lo-off:hi-off])
		}
		sw := sectorWrite{k: k, fresh: true, content: buf}
		if k < len(oldSecs) && from >= oldSize && s.erasedAt(oldSecs[k], from-start, end-from) {
			// appending into the erased tail of the file's last sector:
			// no erase, and the committed bytes stay untouched
			sw = sectorWrite{k: k, at: from - start, patch: buf[from-start:]}
		}
		plan = append(plan, sw)
	}
	if len(plan) == 0 && old != nil && !truncate {
		return nil // nothing changes: no record
	}
	free := s.freeSectors()
	need := 0
	for _, sw := range plan {
		if sw.fresh {
			need++
		}
	}
	if need > len(free) {
		return errFSNoSpace
	}
	for _, sw := range plan {
		if !sw.fresh {
			if err := s.program(s.sectorAddr(newSecs[sw.k])+uint32(sw.at), sw.patch); err != nil {
				return err
			}
			continue
		}
		sec := free[0]
		free = free[1:]
		if err := s.eraseIfNeeded(sec); err != nil {
			return err
		}
		if err := s.program(s.sectorAddr(sec), sw.content); err != nil {
			return err
		}
		newSecs[sw.k] = sec
	}
	f := &fsFile{name: name, size: newSize, sectors: newSecs}
	if err := s.commit(encodeSet(f)); err != nil {
		return err
	}
	s.files[name] = f
	return nil
}

// Remove deletes a file.
func (s *fileStore) Remove(name string) error {
	if _, ok := s.files[name]; !ok {
		return errFSNotFound
	}
	if err := s.commit(encodeNames(recRemove, name)); err != nil {
		return err
	}
	delete(s.files, name)
	return nil
}

// Rename renames src to dst in one record, replacing dst.
func (s *fileStore) Rename(src, dst string) error {
	f, ok := s.files[src]
	if !ok {
		return errFSNotFound
	}
	if err := checkFSName(dst); err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	if err := s.commit(encodeNames(recRename, src, dst)); err != nil {
		return err
	}
	delete(s.files, src)
	f.name = dst
	s.files[dst] = f
	return nil
}

func checkFSName(name string) error {
	if name == "" || len(name) > fsMaxName || strings.ContainsAny(name, "\x00/") {
		return fmt.Errorf("%w %q (1 to %d bytes, no '/')", errFSName, name, fsMaxName)
	}
	return nil
}

func (s *fileStore) sectorAddr(sec uint16) uint32 {
	return s.base + uint32(sec)*sim.FlashSectorSize
}

// freeSectors lists the data sectors no file uses, lowest first: a freed
// sector is reused soon, and then needs an erase, as on a used device.
func (s *fileStore) freeSectors() []uint16 {
	used := make([]bool, s.sectors)
	for _, f := range s.files {
		for _, sec := range f.sectors {
			used[sec] = true
		}
	}
	var free []uint16
	for i := fsJournalSecs; i < s.sectors; i++ {
		if !used[i] {
			free = append(free, uint16(i))
		}
	}
	return free
}

// erasedAt reports whether n bytes at off in sector sec read as erased.
func (s *fileStore) erasedAt(sec uint16, off, n int) bool {
	buf := make([]byte, n)
	if s.flash.ReadAt(buf, s.sectorAddr(sec)+uint32(off)) != nil {
		return false
	}
	return isErased(buf)
}

func isErased(p []byte) bool {
	for _, b := range p {
		if b != 0xFF {
			return false
		}
	}
	return true
}

// eraseIfNeeded erases a sector unless it reads as erased already (a
// driver that knows which sectors are clean saves the 45 ms).
func (s *fileStore) eraseIfNeeded(sec uint16) error {
	if s.erasedAt(sec, 0, sim.FlashSectorSize) {
		return nil
	}
	d, err := s.flash.EraseSector(s.sectorAddr(sec))
	if err != nil {
		return err
	}
	return s.spend(d)
}

// program writes and then waits the flash's busy time, so that a reset
// during the wait stops the operation before its next step.
func (s *fileStore) program(addr uint32, p []byte) error {
	d, err := s.flash.Program(addr, p)
	if err != nil {
		return err
	}
	return s.spend(d)
}
