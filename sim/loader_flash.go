package sim

import (
	"compress/zlib"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"
)

const (
	sectorSize = 4 << 10
	blockSize  = 64 << 10
	pageSize   = 256
)

// flashWrite is a FLASH_BEGIN or FLASH_DEFL_BEGIN in progress.
type flashWrite struct {
	deflate   bool
	offset    uint32 // where the data starts
	size      uint32 // bytes announced (uncompressed for deflate)
	blocks    uint32
	blockSize uint32
	seq       uint32 // next expected sequence number
	written   uint32 // bytes written so far

	// stub: erases progressively, ahead of the data (see eraser)
	eraser *eraser

	infl *inflater
}

// eraser is the flasher stub's erase-ahead. Between commands, while it
// waits for the next data block to arrive, the stub starts erasing the
// next sector, or 64 KiB block where aligned, of the region announced by
// FLASH_BEGIN; a block that needs flash not yet erased erases it first.
// The flash chip does one operation at a time, so an erase under way
// delays a program and the other way round.
type eraser struct {
	c          *cpu
	mu         sync.Mutex
	cond       *sync.Cond
	next, end  uint32
	busy       bool // the flash is erasing or programming
	processing bool // a data block is being written: no new background erase
	stopped    bool
	err        error
}

func newEraser(c *cpu, start, end uint32) *eraser {
	e := &eraser{c: c, next: start, end: end}
	e.cond = sync.NewCond(&e.mu)
	go e.run()
	return e
}

// step erases the next sector or block; called with mu held, returns with
// it held, releasing it while the flash works.
func (e *eraser) step() error {
	f := e.c.dev.flash
	addr := e.next
	e.busy = true
	e.mu.Unlock()
	var t time.Duration
	var err error
	size := uint32(sectorSize)
	if addr%blockSize == 0 && e.end-addr >= blockSize {
		size = blockSize
		t, err = f.EraseBlock(addr)
	} else {
		t, err = f.EraseSector(addr)
	}
	if err == nil {
		err = e.c.sleep(t)
	}
	e.mu.Lock()
	e.busy = false
	if err == nil {
		e.next = addr + size
	}
	e.cond.Broadcast()
	return err
}

func (e *eraser) run() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		for !e.stopped && e.next < e.end && (e.processing || e.busy) {
			e.cond.Wait()
		}
		if e.stopped || e.next >= e.end || e.err != nil {
			return
		}
		if err := e.step(); err != nil {
			e.err = err
			e.cond.Broadcast()
			return
		}
	}
}

// erasedUpTo makes sure [.., end) of the region is erased, erasing what
// the background has not reached yet, and then holds the flash for a
// program operation (release with done).
func (e *eraser) claim(end uint32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		for e.busy {
			e.cond.Wait()
		}
		if e.err != nil {
			return e.err
		}
		if e.next >= min(end, e.end) {
			e.busy = true
			return nil
		}
		if err := e.step(); err != nil {
			e.err = err
			return err
		}
	}
}

func (e *eraser) release() {
	e.mu.Lock()
	e.busy = false
	e.cond.Broadcast()
	e.mu.Unlock()
}

// setProcessing marks a data block in progress: the background erase
// pauses, as the stub only starts erases between commands.
func (e *eraser) setProcessing(on bool) {
	e.mu.Lock()
	e.processing = on
	e.cond.Broadcast()
	e.mu.Unlock()
}

func (e *eraser) stop() {
	e.mu.Lock()
	e.stopped = true
	e.cond.Broadcast()
	for e.busy {
		e.cond.Wait()
	}
	e.mu.Unlock()
}

func (l *loader) flashBegin(op byte, data []byte) (reply, error) {
	want := 16
	if !l.stub && l.chip.ROMEncWord {
		// Newer ROMs take a fifth word (encrypt). Some tools leave it out;
		// the ROM reads the four it needs either way.
		if len(data) != 16 && len(data) != 20 {
			return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
		}
	} else if len(data) != want && len(data) != 20 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	if err := l.waitPending(); err != nil {
		return reply{}, err
	}
	eraseSize, blocks, bsize, offset := le32(data, 0), le32(data, 1), le32(data, 2), le32(data, 3)
	f := l.c.dev.flash
	if !l.stub && bsize > l.romMaxFlashBlock() {
		// measured on the ESP32 emulator: block size 0x1801 gives 01 05
		l.fw = nil
		return reply{}, cmdError{romInvalidMessage}
	}
	if bsize == 0 && blocks != 0 || bsize > 0x10000 {
		return reply{}, l.refuse(romInvalidParam, stubBadBlockSize)
	}
	if l.pastFlashLimit(offset, eraseSize) {
		// measured on the ESP32 emulator: FLASH_BEGIN reaching past the
		// size SPI_SET_PARAMS configured gives 01 06 (operation failed)
		l.fw = nil
		return reply{}, cmdError{romFailed}
	}
	if uint64(offset)+uint64(eraseSize) > uint64(f.Size()) {
		return reply{}, l.refuse(romInvalidParam, stubSPIFailed)
	}
	fw := &flashWrite{deflate: op == opFlashDeflBegin, offset: offset, size: eraseSize, blocks: blocks, blockSize: bsize}
	start := offset &^ (sectorSize - 1)
	end := alignUp(offset+eraseSize, sectorSize)
	if l.chip.IsESP8266() && !l.stub && eraseSize > 0 {
		end = esp8266ROMEraseEnd(offset, eraseSize)
		if end > uint32(f.Size()) {
			end = uint32(f.Size())
		}
	}
	if fw.deflate {
		fw.infl = newInflater()
	}
	if l.fw != nil && l.fw.eraser != nil {
		l.fw.eraser.stop()
	}
	if l.fw != nil && l.fw.infl != nil {
		l.fw.infl.close() // a stream abandoned for a new one (a host's restart)
	}
	l.fw = fw
	if l.stub {
		fw.eraser = newEraser(l.c, start, end)
		return reply{}, nil
	}
	// The ROM erases the whole region before it answers.
	if end > start {
		t, err := f.EraseRange(start, end-start)
		if err != nil {
			return reply{}, l.refuse(romFlashWrite, stubSPIFailed)
		}
		if err := l.c.sleep(t); err != nil {
			return reply{}, err
		}
	}
	return reply{}, nil
}

// esp8266ROMEraseEnd reproduces the ESP8266 ROM's erase quirk: asked to
// erase N sectors, it erases N plus the number of sectors up to the next
// 64 KiB boundary (at most N more). Flashers shrink the size they ask for
// to compensate (esptool's get_erase_size), so a faithful virtual ROM must
// over-erase the same way.
func esp8266ROMEraseEnd(offset, size uint32) uint32 {
	n := (size + sectorSize - 1) / sectorSize
	startSector := offset / sectorSize
	head := 16 - startSector%16
	if n < head {
		head = n
	}
	return (startSector + n + head) * sectorSize
}

func alignUp(v, a uint32) uint32 { return (v + a - 1) &^ (a - 1) }

func (l *loader) flashData(op byte, data []byte, chk uint32) (reply, error) {
	fw := l.fw
	if fw == nil || fw.deflate != (op == opFlashDeflData) {
		return reply{}, l.refuse(romInvalidMessage, stubNotFlashing)
	}
	if len(data) < 16 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	size, seq := le32(data, 0), le32(data, 1)
	payload := data[16:]
	if int(size) != len(payload) {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	if !l.stub {
		return l.romFlashData(fw, seq, payload, chk)
	}
	if checksum(payload) != chk&0xFF {
		return reply{}, cmdError{stubBadChecksum}
	}
	if len(payload) > 0x4000 {
		return reply{}, cmdError{stubBadBlockSize}
	}
	// Neither flasher stub looks at the sequence number: esp-flasher-stub
	// (src/command_handler.c, s_flash_data / s_flash_defl_data) writes or
	// inflates every block that passes the length and checksum checks at
	// its current offset, and so did esptool's older stub
	// (flasher_stub/stub_flasher.c). A block sent twice is written twice:
	// the copy lands after the first (plain) or is fed to the inflater
	// again (compressed).
	//
	// The stub acknowledges at once and writes while the next block
	// arrives; a failure shows in the reply to the next command.
	if err := l.waitPending(); err != nil {
		return reply{}, err
	}
	fw.seq++
	block := append([]byte(nil), payload...)
	done := make(chan error, 1)
	l.pending = done
	if fw.eraser != nil {
		fw.eraser.setProcessing(true)
	}
	go func() {
		err := l.writeBlock(fw, block)
		if fw.eraser != nil {
			fw.eraser.setProcessing(false)
		}
		done <- err
	}()
	return reply{}, nil
}

// romFlashData is the ROM's FLASH_DATA / FLASH_DEFL_DATA, as measured on
// the ESP32 emulator (the real v3 mask ROM): a sequence number other than
// the next one (skipped or repeated) or a block longer than FLASH_BEGIN's
// block size gives 01 05 and writes nothing; a block with the right number
// uses that number up even when its checksum is bad (01 07, nothing
// written, the next block must carry the following number); a shorter
// block is written, and the next one continues right after it.
func (l *loader) romFlashData(fw *flashWrite, seq uint32, payload []byte, chk uint32) (reply, error) {
	if seq != fw.seq || uint32(len(payload)) > fw.blockSize {
		return reply{}, cmdError{romInvalidMessage}
	}
	fw.seq++
	if checksum(payload) != chk&0xFF {
		return reply{}, cmdError{romBadChecksum}
	}
	if err := l.writeBlock(fw, payload); err != nil {
		return reply{}, err
	}
	return reply{}, nil
}

// waitPending waits for the stub's background write and reports its error.
func (l *loader) waitPending() error {
	if l.pending == nil {
		return nil
	}
	var err error
	select {
	case err = <-l.pending:
	case <-l.c.ctx.Done():
		return l.c.ctx.Err()
	}
	l.pending = nil
	return err
}

// writeBlock puts one received block on the flash: through the inflater
// for compressed writes, erasing ahead in stub mode, with the modelled time
// spent as the bytes are programmed.
func (l *loader) writeBlock(fw *flashWrite, block []byte) error {
	if !fw.deflate {
		if l.stub {
			// the stub writes no more than FLASH_BEGIN announced: the
			// 0xFF padding of the last block is dropped
			// (command_handler.c, s_flash_data_post_process)
			block = block[:min(uint32(len(block)), fw.size-min(fw.written, fw.size))]
		}
		return l.program(fw, block)
	}
	var werr error
	err := fw.infl.feed(block, func(out []byte) bool {
		if fw.written+uint32(len(out)) > fw.size {
			werr = l.refuse(romDeflate, stubTooMuch)
			return false
		}
		if e := l.program(fw, out); e != nil {
			werr = e
			return false
		}
		return true
	})
	if werr != nil {
		return werr
	}
	if err != nil {
		return l.refuse(romDeflate, stubInflate)
	}
	return nil
}

// program writes data at the next address of a write in progress.
func (l *loader) program(fw *flashWrite, data []byte) error {
	f := l.c.dev.flash
	for len(data) > 0 {
		addr := fw.offset + fw.written
		// one sector's worth at a time, so a reset mid-block leaves what a
		// real chip would: the sectors done so far
		n := min(len(data), int(sectorSize-addr%sectorSize))
		if fw.eraser != nil {
			if err := fw.eraser.claim(addr + uint32(n)); err != nil {
				if l.c.ctx.Err() != nil {
					return l.c.ctx.Err()
				}
				return l.refuse(romFlashWrite, stubSPIFailed)
			}
		}
		t, err := f.Program(addr, data[:n])
		if err == nil {
			err = l.c.sleep(t)
		}
		if fw.eraser != nil {
			fw.eraser.release()
		}
		if err != nil {
			if l.c.ctx.Err() != nil {
				return l.c.ctx.Err()
			}
			return l.refuse(romFlashWrite, stubSPIFailed)
		}
		fw.written += uint32(n)
		data = data[n:]
	}
	return nil
}

func (l *loader) flashEnd(op byte, data []byte) (reply, error) {
	if len(data) != 4 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	if err := l.waitPending(); err != nil {
		return reply{}, err
	}
	fw := l.fw
	if l.stub {
		// esp-flasher-stub (command_handler.c, s_handle_flash_end): not
		// writing gives "not in flash mode", bytes announced and not yet
		// written "bad data length"; either way the write stays open.
		if fw == nil {
			return reply{}, cmdError{stubNotFlashing}
		}
		if fw.written != fw.size {
			return reply{}, cmdError{stubBadDataLen}
		}
	}
	if fw != nil && fw.infl != nil {
		fw.infl.close()
	}
	if fw != nil && fw.eraser != nil {
		fw.eraser.stop()
	}
	l.fw = nil
	stay := le32(data, 0) != 0
	if l.stub {
		// The stub stays whatever the flag says: its reboot is not
		// implemented ("TODO: Implement reboot"); hosts reset the chip
		// with the RTS line instead, as esptool's hard reset does.
		return reply{}, nil
	}
	// The ROM leaves the loader on FLASH_END: 1 runs the app, 0 reboots.
	if stay {
		return reply{}, exitLoader{exitRunApp}
	}
	return reply{}, exitLoader{exitReboot}
}

func (l *loader) eraseFlash() (reply, error) {
	if err := l.waitPending(); err != nil {
		return reply{}, err
	}
	t, err := l.c.dev.flash.EraseChip()
	if err != nil {
		return reply{}, l.refuse(0, stubSPIFailed)
	}
	return reply{}, l.c.sleep(t)
}

func (l *loader) eraseRegion(data []byte) (reply, error) {
	if len(data) != 8 {
		return reply{}, l.refuse(0, stubBadDataLen)
	}
	if err := l.waitPending(); err != nil {
		return reply{}, err
	}
	addr, size := le32(data, 0), le32(data, 1)
	if addr%sectorSize != 0 || size%sectorSize != 0 {
		return reply{}, l.refuse(0, stubSPIFailed)
	}
	t, err := l.c.dev.flash.EraseRange(addr, size)
	if err != nil {
		return reply{}, l.refuse(0, stubSPIFailed)
	}
	return reply{}, l.c.sleep(t)
}

// readFlash is the stub's READ_FLASH: a normal reply, then packets of
// flash data, each acknowledged by the host with the running total of
// bytes received, then the MD5 of everything sent. Like the real stubs it
// keeps one packet in flight whatever the host asks for.
func (l *loader) readFlash(data []byte) error {
	if len(data) != 16 {
		return l.refuse(0, stubBadDataLen)
	}
	if err := l.waitPending(); err != nil {
		return err
	}
	addr, size, packet := le32(data, 0), le32(data, 1), le32(data, 2)
	f := l.c.dev.flash
	if packet == 0 || packet > 0x4000 || uint64(addr)+uint64(size) > uint64(f.Size()) {
		return l.refuse(0, stubBadDataLen)
	}
	if err := l.ok(opReadFlash, reply{}); err != nil {
		return err
	}
	h := md5.New()
	var sent uint32
	buf := make([]byte, packet)
	for sent < size {
		n := min(packet, size-sent)
		if err := f.ReadAt(buf[:n], addr+sent); err != nil {
			return err
		}
		h.Write(buf[:n])
		if err := l.c.sleep(readTime(int(n))); err != nil {
			return err
		}
		if err := l.c.send(encodeSLIP(buf[:n])); err != nil {
			return err
		}
		sent += n
		// wait for the host's acknowledgement: 4 bytes, the total it has
		ack, err := l.readFrame(time.Time{})
		if err != nil {
			return err
		}
		if len(ack) != 4 {
			// the stub gives up on a malformed acknowledgement
			return errAlreadyReplied
		}
		if got := binary.LittleEndian.Uint32(ack); got != sent {
			return errAlreadyReplied
		}
	}
	if err := l.c.send(encodeSLIP(h.Sum(nil))); err != nil {
		return err
	}
	return errAlreadyReplied
}

// inflater decompresses a zlib stream fed block by block, handing out
// everything each block makes decodable before feed returns, as the stub's
// and ROM's streaming inflate do.
type inflater struct {
	mu      sync.Mutex
	cond    *sync.Cond
	in      []byte
	eof     bool // no more input will come
	starved bool // the decoder waits for input
	done    bool // the stream ended (or failed)
	err     error
	out     func([]byte) bool
	started bool
}

func newInflater() *inflater {
	f := &inflater{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// ReadByte and Read serve the decoder; it reads byte by byte through
// ReadByte, so it never holds input beyond what it has decoded.
func (f *inflater) ReadByte() (byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.in) == 0 {
		if f.eof {
			return 0, io.ErrUnexpectedEOF
		}
		f.starved = true
		f.cond.Broadcast()
		f.cond.Wait()
	}
	f.starved = false
	b := f.in[0]
	f.in = f.in[1:]
	return b, nil
}

func (f *inflater) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := f.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

func (f *inflater) run() {
	zr, err := zlib.NewReader(f)
	if err == nil {
		buf := make([]byte, 4096)
		for {
			var n int
			n, err = zr.Read(buf)
			if n > 0 {
				f.mu.Lock()
				out := f.out
				f.mu.Unlock()
				if !out(buf[:n]) {
					err = errors.New("write failed")
					break
				}
			}
			if err != nil {
				break
			}
		}
	}
	f.mu.Lock()
	if err == io.EOF {
		err = nil
	}
	f.done, f.err = true, err
	f.cond.Broadcast()
	f.mu.Unlock()
}

// feed gives the decoder one more block and returns once it has produced
// all output it can (it waits for more input, or the stream ended).
func (f *inflater) feed(block []byte, out func([]byte) bool) error {
	f.mu.Lock()
	if f.done {
		err := f.err
		f.mu.Unlock()
		if err == nil && len(block) > 0 {
			return errors.New("data after end of compressed stream")
		}
		return err
	}
	f.out = out
	f.in = append(f.in, block...)
	f.starved = false
	if !f.started {
		f.started = true
		go f.run()
	}
	f.cond.Broadcast()
	for !(f.starved && len(f.in) == 0) && !f.done {
		f.cond.Wait()
	}
	err := f.err
	f.mu.Unlock()
	return err
}

func (f *inflater) finished() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done && f.err == nil
}

// close ends the decoder goroutine if the stream was left incomplete.
func (f *inflater) close() {
	f.mu.Lock()
	f.eof = true
	f.cond.Broadcast()
	f.mu.Unlock()
}
