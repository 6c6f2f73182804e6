package flasher

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mos-tool/mos/slip"
)

// ReadFlash reads size bytes of flash at addr. The stub streams packets
// that the host acknowledges one by one and ends with their MD5, which is
// checked; an ESP32-family ROM reads 64 bytes per command (slow). The
// ESP8266 ROM cannot read flash at all.
func (l *Loader) ReadFlash(ctx context.Context, addr uint32, size int, progress Progress) ([]byte, error) {
	if progress == nil {
		progress = func(string, string, int64, int64) {}
	}
	if !l.Stub {
		if !l.Chip.ROMHasSlowRd {
			return nil, fmt.Errorf("the %s ROM cannot read flash: %w", l.Chip.Name, ErrUnsupported)
		}
		return l.readSlow(ctx, addr, size, progress)
	}
	const packet = 0x1000
	if _, err := l.Command(ctx, OpReadFlash, le(addr, uint32(size), packet, 64), 0, DefaultTimeout); err != nil {
		return nil, fmt.Errorf("READ_FLASH at 0x%X: %w", addr, err)
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		f, err := l.ReadFrame(ctx, DefaultTimeout)
		if err != nil {
			return out, fmt.Errorf("reading flash at 0x%X after %d bytes: %w", addr, len(out), err)
		}
		if len(f) == 0 || len(out)+len(f) > size || (len(f) < packet && len(out)+len(f) < size) {
			return out, fmt.Errorf("reading flash at 0x%X: corrupt packet of %d bytes after %d", addr, len(f), len(out))
		}
		out = append(out, f...)
		// acknowledge with the running total, as one SLIP frame
		if _, err := l.Port().Write(slip.Encode(nil, binary.LittleEndian.AppendUint32(nil, uint32(len(out))))); err != nil {
			return out, err
		}
		progress("reading", "", int64(len(out)), int64(size))
	}
	digest, err := l.ReadFrame(ctx, DefaultTimeout)
	if err != nil {
		return out, fmt.Errorf("reading flash at 0x%X: no digest: %w", addr, err)
	}
	if sum := md5.Sum(out); len(digest) != 16 || [16]byte(digest) != sum {
		return out, &VerifyError{Region: "read", Addr: addr, Want: fmt.Sprintf("%x", digest), Got: fmt.Sprintf("%x", sum)}
	}
	return out, nil
}

func (l *Loader) readSlow(ctx context.Context, addr uint32, size int, progress Progress) ([]byte, error) {
	out := make([]byte, 0, size)
	for len(out) < size {
		n := min(64, size-len(out))
		r, err := l.Command(ctx, OpReadFlashSlow, le(addr+uint32(len(out)), uint32(n)), 0, DefaultTimeout)
		if err != nil {
			return out, fmt.Errorf("READ_FLASH_SLOW at 0x%X: %w", addr+uint32(len(out)), err)
		}
		if len(r.Data) < n {
			return out, fmt.Errorf("READ_FLASH_SLOW: short reply")
		}
		out = append(out, r.Data[:n]...)
		progress("reading", "", int64(len(out)), int64(size))
	}
	return out, nil
}

// EraseFlash erases the whole flash chip (stub only).
func (l *Loader) EraseFlash(ctx context.Context) error {
	if !l.Stub {
		return fmt.Errorf("chip erase needs the flasher stub: %w", ErrUnsupported)
	}
	_, err := l.Command(ctx, OpEraseFlash, nil, 0, 120*time.Second)
	return err
}

// EraseRegion erases size bytes at addr, both multiples of 4 KiB.
func (l *Loader) EraseRegion(ctx context.Context, addr uint32, size int) error {
	if addr%sectorSize != 0 || size%sectorSize != 0 {
		return errors.New("erase address and size must be multiples of 4 KiB (0x1000)")
	}
	if l.Stub {
		_, err := l.Command(ctx, OpEraseRegion, le(addr, uint32(size)), 0, perMB(30*time.Second, size))
		return err
	}
	// The ROM erases inside FLASH_BEGIN; no data need follow.
	eraseSize := uint32(size)
	if l.Chip.IsESP8266() {
		eraseSize = esp8266EraseSize(addr, eraseSize)
	}
	begin := l.flashBeginArgs(eraseSize, 0, romBlock, addr)
	_, err := l.Command(ctx, OpFlashBegin, begin, 0, perMB(30*time.Second, size))
	return err
}
