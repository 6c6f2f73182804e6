package sim_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mos-tool/mos/flasher"
)

// status runs one command and returns the two status bytes the host
// reads (00 00 on success).
func status(t *testing.T, l *flasher.Loader, op byte, data []byte, chk uint32) [2]byte {
	t.Helper()
	_, err := l.Command(context.Background(), op, data, chk, 2*time.Second)
	var de *flasher.DeviceError
	switch {
	case err == nil:
		return [2]byte{}
	case errors.As(err, &de):
		return de.Status
	}
	t.Fatalf("command 0x%02X: %v", op, err)
	return [2]byte{}
}

func memData(seq uint32, p []byte) []byte { return append(le(uint32(len(p)), seq, 0, 0), p...) }

// The ESP32 ROM's answers to RAM uploads, each value measured on
// Espressif's ESP32 emulator running the real v3 mask ROM.
func TestROMMemAnswers(t *testing.T) {
	block := bytes.Repeat([]byte{0x11}, 0x80)
	chk := flasher.Checksum(block)
	type step struct {
		op   byte
		data []byte
		chk  uint32
		want [2]byte
	}
	begin := le(0x100, 1, 0x100, 0x3FFB0000)
	tests := []struct {
		name  string
		steps []step
	}{
		// measured: MEM_DATA with no MEM_BEGIN since the reset is answered
		// 01 05, with a good checksum too (after SYNC, and after READ_REG)
		{"data before begin", []step{{flasher.OpMemData, memData(0, block), chk, [2]byte{1, 5}}}},
		// measured: a first block numbered 1 gives 01 05
		{"skipped sequence number", []step{
			{flasher.OpMemBegin, begin, 0, [2]byte{}},
			{flasher.OpMemData, memData(1, block), chk, [2]byte{1, 5}},
		}},
		// measured: block 0 sent twice: the second gives 01 05
		{"repeated sequence number", []step{
			{flasher.OpMemBegin, begin, 0, [2]byte{}},
			{flasher.OpMemData, memData(0, block), chk, [2]byte{}},
			{flasher.OpMemData, memData(0, block), chk, [2]byte{1, 5}},
			{flasher.OpMemData, memData(1, block), chk, [2]byte{}},
		}},
		// measured: a bad checksum gives 01 07
		{"bad checksum", []step{
			{flasher.OpMemBegin, begin, 0, [2]byte{}},
			{flasher.OpMemData, memData(0, block), chk ^ 1, [2]byte{1, 7}},
		}},
		// measured: the ROM does not hold MEM_DATA to MEM_BEGIN's size
		// (a third 0x80 block after announcing 0x100 is accepted)
		{"beyond the announced size", []step{
			{flasher.OpMemBegin, begin, 0, [2]byte{}},
			{flasher.OpMemData, memData(0, block), chk, [2]byte{}},
			{flasher.OpMemData, memData(1, block), chk, [2]byte{}},
			{flasher.OpMemData, memData(2, block), chk, [2]byte{}},
		}},
		// measured: any size and address (here 2 MiB at 0x60000000)
		{"any size and address", []step{
			{flasher.OpMemBegin, le(2<<20, 0x556, 0x1800, 0x60000000), 0, [2]byte{}},
		}},
		// measured: block size 0x1800 is accepted, 0x1804 gives 01 05
		{"block size limit", []step{
			{flasher.OpMemBegin, le(0x1800, 1, 0x1800, 0x3FFB0000), 0, [2]byte{}},
			{flasher.OpMemBegin, le(0x1804, 1, 0x1804, 0x3FFB0000), 0, [2]byte{1, 5}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := connect(t, "sim://esp32?fast=1")
			for i, s := range tc.steps {
				if got := status(t, l, s.op, s.data, s.chk); got != s.want {
					t.Fatalf("step %d (op 0x%02X): status % x, want % x", i, s.op, got, s.want)
				}
			}
		})
	}
}

// The ESP32 ROM's flash answers: before SPI_ATTACH it never answers a
// command that reaches the flash (its pins are not routed; see
// stuckOnFlash), and it refuses access past the SPI_SET_PARAMS size.
func TestROMFlashAnswers(t *testing.T) {
	t.Run("no SPI_ATTACH", func(t *testing.T) {
		for _, tc := range []struct {
			op   byte
			data []byte
		}{
			{flasher.OpFlashBegin, le(0x1000, 4, 0x400, 0x10000)},
			{flasher.OpFlashDeflBegin, le(0x1000, 1, 0x400, 0x10000)},
			{flasher.OpSPIFlashMD5, le(0, 0x1000, 0, 0)},
		} {
			l, dev := connect(t, "sim://esp32?fast=1")
			_, err := l.Command(context.Background(), tc.op, tc.data, 0, 300*time.Millisecond)
			if err == nil {
				t.Fatalf("op 0x%02X answered without SPI_ATTACH", tc.op)
			}
			if dev.State() != "hung" {
				t.Fatalf("op 0x%02X: state %q, want hung", tc.op, dev.State())
			}
		}
	})
	type step struct {
		op   byte
		data []byte
		want [2]byte
	}
	attach := step{flasher.OpSPIAttach, le(0, 0), [2]byte{}}
	params := func(size uint32) step {
		return step{flasher.OpSPISetParams, le(0, size, 64<<10, 4<<10, 256, 0xFFFF), [2]byte{}}
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		// measured: without SPI_SET_PARAMS the ROM takes the flash to be
		// 2 MiB: MD5 at 0x1FF000 succeeds, at 0x200000 gives 01 09
		{"default size", []step{attach,
			{flasher.OpSPIFlashMD5, le(0x1FF000, 0x1000, 0, 0), [2]byte{}},
			{flasher.OpSPIFlashMD5, le(0x200000, 0x1000, 0, 0), [2]byte{1, 9}},
		}},
		// measured with the size set to 1 MiB: MD5 past it or across its
		// end gives 01 09, FLASH_BEGIN past it 01 06
		{"configured size", []step{attach, params(1 << 20),
			{flasher.OpSPIFlashMD5, le(0x100000, 0x1000, 0, 0), [2]byte{1, 9}},
			{flasher.OpSPIFlashMD5, le(0xFF000, 0x2000, 0, 0), [2]byte{1, 9}},
			{flasher.OpFlashBegin, le(0x1000, 1, 0x400, 0x100000), [2]byte{1, 6}},
			{flasher.OpFlashBegin, le(0x2000, 2, 0x1000, 0xFF000), [2]byte{1, 6}},
			{flasher.OpFlashBegin, le(0x1000, 4, 0x400, 0xFF000), [2]byte{}},
		}},
		// measured: FLASH_BEGIN with block size 0x1800 is accepted,
		// 0x1801 gives 01 05
		{"block size limit", []step{attach, params(4 << 20),
			{flasher.OpFlashBegin, le(0x1800, 1, 0x1800, 0x40000), [2]byte{}},
			{flasher.OpFlashBegin, le(0x1801, 1, 0x1801, 0x40000), [2]byte{1, 5}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := connect(t, "sim://esp32?fast=1")
			for i, s := range tc.steps {
				if got := status(t, l, s.op, s.data, 0); got != s.want {
					t.Fatalf("step %d (op 0x%02X): status % x, want % x", i, s.op, got, s.want)
				}
			}
		})
	}
}

// esp-flasher-stub's answers (src/command_handler.c): MEM_DATA counted
// against MEM_BEGIN's size with no sequence check, FLASH_END only for a
// write in progress with every announced byte received, and no reboot.
func TestStubAnswers(t *testing.T) {
	block := bytes.Repeat([]byte{0x22}, 0x80)
	type step struct {
		op   byte
		data []byte
		chk  uint32
		want [2]byte
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		// s_mem_data: data_len > total_remaining -> RESPONSE_TOO_MUCH_DATA (C9)
		{"MEM_DATA beyond MEM_BEGIN's size", []step{
			{flasher.OpMemBegin, le(0x100, 2, 0x80, 0x3FFB0000), 0, [2]byte{}},
			{flasher.OpMemData, memData(7, block), 0, [2]byte{}}, // no sequence check
			{flasher.OpMemData, memData(7, block), 0, [2]byte{}},
			{flasher.OpMemData, memData(7, block), 0, [2]byte{0xC9, 0}},
		}},
		// s_handle_flash_end: no write in progress -> RESPONSE_NOT_IN_FLASH_MODE (C6)
		{"FLASH_END with no write", []step{
			{flasher.OpFlashEnd, le(1), 0, [2]byte{0xC6, 0}},
		}},
		// s_handle_flash_end: total_remaining != 0 -> RESPONSE_BAD_DATA_LEN (C0)
		{"FLASH_END before all data", []step{
			{flasher.OpFlashBegin, le(0x100, 2, 0x80, 0x10000), 0, [2]byte{}},
			{flasher.OpFlashData, append(le(0x80, 0, 0, 0), block...), flasher.Checksum(block), [2]byte{}},
			{flasher.OpFlashEnd, le(1), 0, [2]byte{0xC0, 0}},
			{flasher.OpFlashData, append(le(0x80, 1, 0, 0), block...), flasher.Checksum(block), [2]byte{}},
			// reboot requested: answered, and the stub keeps serving
			{flasher.OpFlashEnd, le(0), 0, [2]byte{}},
			{flasher.OpFlashEnd, le(0), 0, [2]byte{0xC6, 0}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, dev := connect(t, "sim://esp32?fast=1")
			uploadStub(t, l)
			for i, s := range tc.steps {
				if got := status(t, l, s.op, s.data, s.chk); got != s.want {
					t.Fatalf("step %d (op 0x%02X): status % x, want % x", i, s.op, got, s.want)
				}
			}
			if dev.State() != "stub" {
				t.Fatalf("state %q after the steps, want stub", dev.State())
			}
		})
	}
}

// esp-flasher-stub takes CHANGE_BAUDRATE's first word as the new rate,
// whatever the second says (s_change_baudrate_post_process).
func TestStubChangeBaudIsAbsolute(t *testing.T) {
	l, dev := connect(t, "sim://esp32c3?fast=1")
	uploadStub(t, l)
	if _, err := l.Command(context.Background(), flasher.OpChangeBaud, le(460800, 230400), 0, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Port().SetBaudRate(460800); err != nil {
		t.Fatal(err)
	}
	if err := l.Ping(context.Background()); err != nil {
		t.Fatalf("no answer at 460800 (device UART at %d): %v", dev.UARTBaud(), err)
	}
}

// The ESP32 ROM's answers to FLASH_DATA, measured on Espressif's ESP32
// emulator: no FLASH_BEGIN before it 01 05; a skipped or repeated
// sequence number 01 05; a bad checksum 01 07, and that number is used
// up; a block longer than the block size 01 05; a shorter block is
// written and the next continues after it.
func TestROMFlashDataAnswers(t *testing.T) {
	a := bytes.Repeat([]byte{0xA5}, 0x400)
	b := bytes.Repeat([]byte{0x5A}, 0x200)
	long := bytes.Repeat([]byte{0x7C}, 0x800)
	data := func(seq uint32, p []byte) []byte { return append(le(uint32(len(p)), seq, 0, 0), p...) }
	sum := flasher.Checksum
	type step struct {
		op   byte
		data []byte
		chk  uint32
		want [2]byte
	}
	steps := []step{
		{flasher.OpSPIAttach, le(0, 0), 0, [2]byte{}},
		{flasher.OpFlashData, data(0, a), sum(a), [2]byte{1, 5}}, // no FLASH_BEGIN
		{flasher.OpFlashBegin, le(0x1000, 4, 0x400, 0x60000), 0, [2]byte{}},
		{flasher.OpFlashData, data(1, a), sum(a), [2]byte{1, 5}},       // skipped
		{flasher.OpFlashData, data(0, a), sum(a) ^ 1, [2]byte{1, 7}},   // bad checksum: 0 used up
		{flasher.OpFlashData, data(0, a), sum(a), [2]byte{1, 5}},       // so 0 is a repeat now
		{flasher.OpFlashData, data(1, a), sum(a), [2]byte{}},           // written at 0x60000
		{flasher.OpFlashData, data(1, a), sum(a), [2]byte{1, 5}},       // repeated
		{flasher.OpFlashData, data(2, long), sum(long), [2]byte{1, 5}}, // longer than the block size
		{flasher.OpFlashData, data(2, b), sum(b), [2]byte{}},           // short: at 0x60400
		{flasher.OpFlashData, data(3, a), sum(a), [2]byte{}},           // right after it, 0x60600
	}
	l, dev := connect(t, "sim://esp32?fast=1")
	for i, s := range steps {
		if got := status(t, l, s.op, s.data, s.chk); got != s.want {
			t.Fatalf("step %d (op 0x%02X): status % x, want % x", i, s.op, got, s.want)
		}
	}
	got := make([]byte, 0x1000)
	if err := dev.Flash().ReadAt(got, 0x60000); err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{a, b, a, bytes.Repeat([]byte{0xFF}, 0x600)}, nil)
	if !bytes.Equal(got, want) {
		t.Fatal("flash does not hold exactly the accepted blocks, each after the previous")
	}
}
