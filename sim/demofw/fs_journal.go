package demofw

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/mos-tool/mos/sim"
)

// The journal of the demo file system: records, snapshots, compaction
// and replay (the format is described with fileStore).

// commit appends one record to the journal, compacting first when it is
// full.
func (s *fileStore) commit(payload []byte) error {
	rec := encodeRecord(payload)
	if s.wpos+len(rec) > sim.FlashSectorSize {
		if err := s.compact(); err != nil {
			return err
		}
		if s.wpos+len(rec) > sim.FlashSectorSize {
			return errFSNoSpace // cannot happen within fsMaxFiles and fsMaxName
		}
	}
	if err := s.program(s.sectorAddr(uint16(s.active))+uint32(s.wpos), rec); err != nil {
		return err
	}
	s.wpos += len(rec)
	return nil
}

// compact writes the current state as a snapshot into the other journal
// sector with the next generation. Until its header and snapshot are on
// flash, the old journal stays the valid one.
func (s *fileStore) compact() error {
	var snap []byte
	for _, f := range s.List() {
		snap = append(snap, encodeRecord(encodeSet(&f))...)
	}
	if fsHeaderLen+len(snap) > sim.FlashSectorSize {
		return errFSNoSpace
	}
	other := 1 - s.active
	if err := s.eraseIfNeeded(uint16(other)); err != nil {
		return err
	}
	hdr := make([]byte, fsHeaderLen, fsHeaderLen+len(snap))
	copy(hdr, fsMagic)
	le := binary.LittleEndian
	le.PutUint32(hdr[4:], s.gen+1)
	le.PutUint32(hdr[8:], uint32(len(snap)))
	le.PutUint32(hdr[12:], crc32.ChecksumIEEE(snap))
	if err := s.program(s.sectorAddr(uint16(other)), append(hdr, snap...)); err != nil {
		return err
	}
	s.active, s.gen, s.wpos = other, s.gen+1, fsHeaderLen+len(snap)
	return nil
}

// format starts an empty file system in journal sector 0.
func (s *fileStore) format() error {
	s.active, s.gen = 1, 0 // compact writes sector 0, generation 1
	s.files = map[string]*fsFile{}
	return s.compact()
}

// journalValid reads journal sector i's header and checks its snapshot.
func (s *fileStore) journalValid(i int) (uint32, bool) {
	sec := make([]byte, sim.FlashSectorSize)
	if s.flash.ReadAt(sec, s.sectorAddr(uint16(i))) != nil || string(sec[:4]) != fsMagic {
		return 0, false
	}
	le := binary.LittleEndian
	n := int(le.Uint32(sec[8:]))
	if n > sim.FlashSectorSize-fsHeaderLen || crc32.ChecksumIEEE(sec[fsHeaderLen:fsHeaderLen+n]) != le.Uint32(sec[12:]) {
		return 0, false
	}
	return le.Uint32(sec[4:]), true
}

// replay rebuilds the state from the active journal. clean is false when
// it ended at a torn record or the space after the last record is not
// erased (a record was being written when the chip was reset).
func (s *fileStore) replay() (clean bool, err error) {
	sec := make([]byte, sim.FlashSectorSize)
	if err := s.flash.ReadAt(sec, s.sectorAddr(uint16(s.active))); err != nil {
		return false, err
	}
	snapEnd := fsHeaderLen + int(binary.LittleEndian.Uint32(sec[8:]))
	pos := fsHeaderLen
	for pos+fsRecordHdrLen <= sim.FlashSectorSize {
		n := int(binary.LittleEndian.Uint16(sec[pos:]))
		if n == 0xFFFF && pos >= snapEnd {
			break // erased: the end of the journal
		}
		end := pos + fsRecordHdrLen + n
		if end > sim.FlashSectorSize || crc32.ChecksumIEEE(sec[pos+fsRecordHdrLen:end]) != binary.LittleEndian.Uint32(sec[pos+2:]) {
			if pos < snapEnd {
				return false, errFSCorrupted // the snapshot's CRC matched: cannot happen
			}
			s.wpos = pos
			return false, nil
		}
		s.apply(sec[pos+fsRecordHdrLen : end])
		pos = end
	}
	s.wpos = pos
	return isErased(sec[pos:]), nil
}

// apply replays one record's payload. Records that do not decode, or name
// sectors outside the region, are skipped: they cannot come from this
// format's writer with a valid CRC.
func (s *fileStore) apply(p []byte) {
	r := recordReader{p: p}
	switch r.u8() {
	case recSet:
		f := &fsFile{name: r.name(), size: int(r.u32())}
		n := int(r.u16())
		for range n {
			sec := r.u16()
			if int(sec) < fsJournalSecs || int(sec) >= s.sectors {
				r.bad = true
			}
			f.sectors = append(f.sectors, sec)
		}
		if !r.bad && (f.size+sim.FlashSectorSize-1)/sim.FlashSectorSize == n {
			s.files[f.name] = f
		}
	case recRemove:
		if name := r.name(); !r.bad {
			delete(s.files, name)
		}
	case recRename:
		src, dst := r.name(), r.name()
		if f := s.files[src]; f != nil && !r.bad {
			delete(s.files, src)
			f.name = dst
			s.files[dst] = f
		}
	}
}

func encodeRecord(payload []byte) []byte {
	rec := make([]byte, fsRecordHdrLen, fsRecordHdrLen+len(payload))
	binary.LittleEndian.PutUint16(rec, uint16(len(payload)))
	binary.LittleEndian.PutUint32(rec[2:], crc32.ChecksumIEEE(payload))
	return append(rec, payload...)
}

func encodeSet(f *fsFile) []byte {
	p := []byte{recSet, byte(len(f.name))}
	p = append(p, f.name...)
	p = binary.LittleEndian.AppendUint32(p, uint32(f.size))
	p = binary.LittleEndian.AppendUint16(p, uint16(len(f.sectors)))
	for _, sec := range f.sectors {
		p = binary.LittleEndian.AppendUint16(p, sec)
	}
	return p
}

func encodeNames(op byte, names ...string) []byte {
	p := []byte{op}
	for _, n := range names {
		p = append(p, byte(len(n)))
		p = append(p, n...)
	}
	return p
}

// recordReader decodes a payload; running past its end sets bad.
type recordReader struct {
	p   []byte
	bad bool
}

func (r *recordReader) take(n int) []byte {
	if len(r.p) < n {
		r.bad = true
		return make([]byte, n)
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *recordReader) u8() byte { return r.take(1)[0] }

func (r *recordReader) u16() uint16 { return binary.LittleEndian.Uint16(r.take(2)) }

func (r *recordReader) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }

func (r *recordReader) name() string { return string(bytes.Clone(r.take(int(r.u8())))) }
