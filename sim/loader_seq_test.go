package sim_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mos-tool/mos/flasher"
)

// The flasher stubs do not check the sequence number of a data block (see
// loader_flash.go): a block sent twice is written twice. These tests pin
// that down, so that a host retrying a block after a lost reply shows up
// as the corruption it would cause on a real board.
func TestStubRepeatedPlainBlockIsWrittenAgain(t *testing.T) {
	p, dev := open(t, "sim://esp32?fast=1")
	ctx := context.Background()
	l, err := flasher.Open(ctx, p, flasher.SessionOptions{})
	if err != nil || !l.Stub {
		t.Fatalf("stub: %v", err)
	}
	const addr, block = 0x30000, 0x1000
	a := bytes.Repeat([]byte{0xA5}, block)
	b := bytes.Repeat([]byte{0x5A}, block)
	if _, err := l.Command(ctx, flasher.OpFlashBegin, le(2*block, 2, block, addr), 0, time.Second); err != nil {
		t.Fatal(err)
	}
	for i, d := range []struct {
		seq  uint32
		data []byte
	}{{0, a}, {0, a}, {1, b}} {
		if _, err := l.Command(ctx, flasher.OpFlashData, append(le(block, d.seq, 0, 0), d.data...), flasher.Checksum(d.data), time.Second); err != nil {
			t.Fatalf("block %d (seq %d): %v", i, d.seq, err)
		}
	}
	// any command waits for the stub's background write
	if _, err := l.Command(ctx, flasher.OpSPIFlashMD5, le(addr, 2*block, 0, 0), 0, time.Second); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2*block)
	if err := dev.Flash().ReadAt(got, addr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(append([]byte(nil), a...), a...)) {
		t.Fatalf("flash after a repeated block: % x ... % x; want the block twice", got[:4], got[block:block+4])
	}
}

func TestStubRepeatedDeflatedBlockCorrupts(t *testing.T) {
	p, dev := open(t, "sim://esp32c3?fast=1")
	ctx := context.Background()
	l, err := flasher.Open(ctx, p, flasher.SessionOptions{})
	if err != nil || !l.Stub {
		t.Fatalf("stub: %v", err)
	}
	img := pattern(60000)
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, 9)
	zw.Write(img)
	zw.Close()
	comp := zb.Bytes()
	const addr, block = 0x40000, 0x4000
	blocks := (len(comp) + block - 1) / block
	if blocks < 3 {
		t.Fatalf("test image compresses to %d blocks; want at least 3", blocks)
	}
	if _, err := l.Command(ctx, flasher.OpFlashDeflBegin, le(uint32(len(img)), uint32(blocks), block, addr), 0, time.Second); err != nil {
		t.Fatal(err)
	}
	// block 1 is sent twice, as a host that resends after a lost reply does
	var refused *flasher.DeviceError
	for _, seq := range []int{0, 1, 1, 2, 3, 4} {
		if seq >= blocks {
			break
		}
		chunk := comp[seq*block : min(len(comp), (seq+1)*block)]
		_, err := l.Command(ctx, flasher.OpFlashDeflData, append(le(uint32(len(chunk)), uint32(seq), 0, 0), chunk...), flasher.Checksum(chunk), time.Second)
		if errors.As(err, &refused) {
			break // the inflate error shows in the reply to a later block
		}
		if err != nil {
			t.Fatalf("block %d: %v", seq, err)
		}
	}
	if refused == nil {
		_, err := l.Command(ctx, flasher.OpFlashDeflEnd, le(1), 0, time.Second)
		if !errors.As(err, &refused) {
			t.Fatalf("FLASH_DEFL_END after a repeated block: %v; want a refusal", err)
		}
	}
	// esp-flasher-stub's inflate error (RESPONSE_INFLATE_ERROR), or "not
	// enough data" when the stream did not end where it should
	if c := refused.Status[0]; c != 0xC7 && c != 0xC8 && c != 0xC9 {
		t.Fatalf("refusal %v; want an inflate error (C7) or a length error (C8/C9)", refused)
	}
	t.Logf("refused: %v", refused)
	got := make([]byte, len(img))
	dev.Flash().ReadAt(got, addr)
	if bytes.Equal(got, img) {
		t.Fatal("the image arrived intact although one block was inflated twice")
	}
}
