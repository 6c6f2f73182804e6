package sim

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync"
	"time"
)

// SPI NOR geometry shared by the flash parts on ESP boards.
const (
	FlashPageSize   = 256      // program granularity
	FlashSectorSize = 4 << 10  // smallest erase
	FlashBlockSize  = 64 << 10 // large erase
)

// Flash errors; test with errors.Is.
var (
	ErrFlashRange  = errors.New("sim: flash address out of range")
	ErrFlashAlign  = errors.New("sim: flash address not aligned")
	ErrFlashClosed = errors.New("sim: flash is closed")
	// ErrFlashFileSize: a persisted flash file is of another size than
	// the flash it should hold.
	ErrFlashFileSize = errors.New("flash file size differs from the flash size")
)

// FlashTimings are how long the flash chip is busy per operation. The model
// returns these durations; the device decides whether to wait them.
type FlashTimings struct {
	PageProgram     time.Duration // one 256-byte page (tPP)
	SectorErase     time.Duration // one 4 KiB sector (tSE)
	BlockErase      time.Duration // one 64 KiB block (tBE2)
	ChipErasePerMiB time.Duration // whole-chip erase (tCE), per MiB of capacity
}

// DefaultFlashTimings are the typical values of a Winbond W25Q32JV-class
// 3 V quad-SPI NOR flash (4 MiB; the class most ESP modules carry):
// page program 0.4 ms typ (3 ms max), 4 KiB sector erase 45 ms typ (400 ms
// max), 64 KiB block erase 150 ms typ (2 s max), chip erase 10 s typ (50 s
// max), i.e. 2.5 s per MiB; the 8 and 16 MiB parts of the family quote 20
// and 40 s, the same rate. These are typical, not worst-case, figures: real
// parts vary with temperature and wear, and their maxima are 5 to 13 times
// higher. Reads are not modelled: the SPI bus moves 10-40 MB/s, far faster
// than the UART that carries the data.
func DefaultFlashTimings() FlashTimings {
	return FlashTimings{
		PageProgram:     400 * time.Microsecond,
		SectorErase:     45 * time.Millisecond,
		BlockErase:      150 * time.Millisecond,
		ChipErasePerMiB: 2500 * time.Millisecond,
	}
}

// MaxFlashTimings are the same part's datasheet maxima, for trying how a
// flasher copes with a slow, worn chip.
func MaxFlashTimings() FlashTimings {
	return FlashTimings{
		PageProgram:     3 * time.Millisecond,
		SectorErase:     400 * time.Millisecond,
		BlockErase:      2 * time.Second,
		ChipErasePerMiB: 12500 * time.Millisecond,
	}
}

// Flash is a SPI NOR flash chip: erasing sets bytes to 0xFF, programming
// can only clear bits. Its contents can persist in a file. It is safe for
// concurrent use.
type Flash struct {
	// Timings is read by every operation; set it before the Flash is
	// shared between goroutines.
	Timings FlashTimings

	mu     sync.Mutex
	mem    []byte
	file   *os.File // nil: contents live in memory only
	closed bool
}

// NewFlash makes a flash chip of size bytes, a power of two from 256 KiB to
// 16 MiB. With a path, the contents live in that file: an existing file is
// loaded (it must be exactly size bytes; an empty one counts as new), a
// missing one is created blank, and every change is written through.
func NewFlash(size int, path string) (*Flash, error) {
	if size < 256<<10 || size > 16<<20 || size&(size-1) != 0 {
		return nil, fmt.Errorf("sim: flash size %d is not a power of two from 256 KiB to 16 MiB", size)
	}
	f := &Flash{Timings: DefaultFlashTimings(), mem: bytes.Repeat([]byte{0xFF}, size)}
	if path == "" {
		return f, nil
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sim: flash file: %w", err)
	}
	st, err := file.Stat()
	switch {
	case err != nil:
	case st.Size() == 0:
		_, err = file.WriteAt(f.mem, 0)
	case st.Size() != int64(size):
		err = fmt.Errorf("%w: %s holds %d bytes, the flash has %d", ErrFlashFileSize, path, st.Size(), size)
	default:
		_, err = file.ReadAt(f.mem, 0)
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("sim: flash file: %w", err)
	}
	f.file = file
	return f, nil
}

// Size is the capacity in bytes.
func (f *Flash) Size() int { return len(f.mem) }

// JEDECID is what the RDID command (0x9F) returns, as the SPI controller's
// W0 register holds it: manufacturer (0xEF, Winbond) in bits 7:0, memory
// type (0x40) in 15:8, capacity as log2(bytes) in 23:16 (0x16 = 4 MiB).
func (f *Flash) JEDECID() uint32 {
	return 0xEF | 0x40<<8 | uint32(bits.TrailingZeros(uint(len(f.mem))))<<16
}

// ReadAt copies len(p) bytes from addr.
func (f *Flash) ReadAt(p []byte, addr uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(addr, len(p), 1); err != nil {
		return err
	}
	copy(p, f.mem[addr:])
	return nil
}

// EraseSector erases the 4 KiB sector at addr, which must be aligned.
func (f *Flash) EraseSector(addr uint32) (time.Duration, error) {
	return f.erase(addr, FlashSectorSize, func(t FlashTimings) time.Duration { return t.SectorErase })
}

// EraseBlock erases the 64 KiB block at addr, which must be aligned.
func (f *Flash) EraseBlock(addr uint32) (time.Duration, error) {
	return f.erase(addr, FlashBlockSize, func(t FlashTimings) time.Duration { return t.BlockErase })
}

// EraseRange erases size bytes from addr, both multiples of 4 KiB, the way
// flasher stubs do: a 64 KiB block command where a whole aligned block is
// covered, sector commands elsewhere. It returns the summed busy time.
func (f *Flash) EraseRange(addr, size uint32) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size%FlashSectorSize != 0 {
		return 0, fmt.Errorf("%w: erase size 0x%x is not a multiple of 4 KiB", ErrFlashAlign, size)
	}
	if err := f.check(addr, int(size), FlashSectorSize); err != nil {
		return 0, err
	}
	var d time.Duration
	for a, end := addr, addr+size; a < end; {
		if a%FlashBlockSize == 0 && end-a >= FlashBlockSize {
			d += f.Timings.BlockErase
			a += FlashBlockSize
		} else {
			d += f.Timings.SectorErase
			a += FlashSectorSize
		}
	}
	return d, f.fill(addr, int(size))
}

// EraseChip erases everything.
func (f *Flash) EraseChip() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, ErrFlashClosed
	}
	d := f.Timings.ChipErasePerMiB * time.Duration(len(f.mem)) / (1 << 20)
	return d, f.fill(0, len(f.mem))
}

// Program writes data at addr with NOR semantics: a bit can only go from 1
// to 0, so each byte becomes old AND new; writing over data that was not
// erased leaves a mix, which is what a flasher's read-back check catches.
//
// Each 256-byte page the data touches costs Timings.PageProgram. A real
// page-program command that runs past the end of its page wraps around to
// the page's start; flashers never send such commands, so the model
// splits the data at page boundaries instead, as a driver would.
func (f *Flash) Program(addr uint32, data []byte) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(addr, len(data), 1); err != nil {
		return 0, err
	}
	if len(data) == 0 {
		return 0, nil
	}
	mem := f.mem[addr : int(addr)+len(data)]
	for i, b := range data {
		mem[i] &= b
	}
	first, last := addr/FlashPageSize, (addr+uint32(len(data))-1)/FlashPageSize
	return time.Duration(last-first+1) * f.Timings.PageProgram, f.persist(int(addr), len(data))
}

// MD5 is the digest of size bytes from addr (SPI_FLASH_MD5).
func (f *Flash) MD5(addr, size uint32) ([16]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(addr, int(size), 1); err != nil {
		return [16]byte{}, err
	}
	return md5.Sum(f.mem[addr : addr+size]), nil
}

// Close releases the backing file. Later operations fail.
func (f *Flash) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.file != nil {
		return f.file.Close()
	}
	return nil
}

// erase erases one aligned unit of size bytes.
func (f *Flash) erase(addr uint32, size uint32, cost func(FlashTimings) time.Duration) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(addr, int(size), size); err != nil {
		return 0, err
	}
	return cost(f.Timings), f.fill(addr, int(size))
}

// check validates an access of n bytes at addr, aligned to align. Callers
// hold f.mu.
func (f *Flash) check(addr uint32, n int, align uint32) error {
	switch {
	case f.closed:
		return ErrFlashClosed
	case addr%align != 0:
		return fmt.Errorf("%w: 0x%x is not a multiple of 0x%x", ErrFlashAlign, addr, align)
	case n < 0 || uint64(addr)+uint64(n) > uint64(len(f.mem)):
		return fmt.Errorf("%w: 0x%x bytes at 0x%x, flash size 0x%x", ErrFlashRange, n, addr, len(f.mem))
	}
	return nil
}

// fill erases n bytes from addr. Callers hold f.mu.
func (f *Flash) fill(addr uint32, n int) error {
	mem := f.mem[addr : int(addr)+n]
	for i := range mem {
		mem[i] = 0xFF
	}
	return f.persist(int(addr), n)
}

// persist writes n bytes from off through to the backing file.
func (f *Flash) persist(off, n int) error {
	if f.file == nil || n == 0 {
		return nil
	}
	if _, err := f.file.WriteAt(f.mem[off:off+n], int64(off)); err != nil {
		return fmt.Errorf("sim: flash file: %w", err)
	}
	return nil
}
