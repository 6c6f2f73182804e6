package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher/stubs"
	"github.com/mos-tool/mos/slip"
)

// Loader command opcodes (Espressif's serial protocol documentation).
const (
	opFlashBegin     = 0x02
	opFlashData      = 0x03
	opFlashEnd       = 0x04
	opMemBegin       = 0x05
	opMemEnd         = 0x06
	opMemData        = 0x07
	opSync           = 0x08
	opWriteReg       = 0x09
	opReadReg        = 0x0A
	opSPISetParams   = 0x0B
	opSPIAttach      = 0x0D
	opReadFlashSlow  = 0x0E
	opChangeBaud     = 0x0F
	opFlashDeflBegin = 0x10
	opFlashDeflData  = 0x11
	opFlashDeflEnd   = 0x12
	opSPIFlashMD5    = 0x13
	opSecurityInfo   = 0x14
	opEraseFlash     = 0xD0
	opEraseRegion    = 0xD1
	opReadFlash      = 0xD2
	opRunUserCode    = 0xD3
)

// ROM error reasons (second status byte after 0x01).
const (
	romInvalidParam   = 0x01
	romInvalidMessage = 0x05 // also the answer to an unknown command
	romFailed         = 0x06
	romBadChecksum    = 0x07
	romFlashWrite     = 0x08
	romFlashRead      = 0x09
	romDeflate        = 0x0B
)

// Flasher stub error codes (first status byte; the second is 0).
const (
	stubBadDataLen   = 0xC0
	stubBadChecksum  = 0xC1
	stubBadBlockSize = 0xC2
	stubInvalidCmd   = 0xC3
	stubSPIFailed    = 0xC4
	stubNotFlashing  = 0xC6
	stubInflate      = 0xC7
	stubNotEnough    = 0xC8
	stubTooMuch      = 0xC9
	// stubNotImplemented answers a command esp-flasher-stub knows but does
	// not implement on this chip (GET_SECURITY_INFO on the ESP32: its
	// command_handler.c returns RESPONSE_CMD_NOT_IMPLEMENTED, sent as FF 00;
	// measured on the ESP32 emulator).
	stubNotImplemented = 0xFF
)

// syncPayload is what SYNC carries: 07 07 12 20 and 32 bytes of 0x55.
var syncPayload = append([]byte{0x07, 0x07, 0x12, 0x20}, bytesOf(0x55, 32)...)

func bytesOf(b byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = b
	}
	return p
}

// errExit ends the loader loop: the chip leaves the loader (runs the app or
// reboots) and the cpu takes over.
type exitLoader struct{ action exitAction }

type exitAction int

const (
	exitRunApp exitAction = iota // jump to the app in flash
	exitReboot                   // software reset
)

func (e exitLoader) Error() string { return "loader exit" }

// cmdError is a refused command: the status code to answer with.
type cmdError struct{ code byte }

func (e cmdError) Error() string { return "command failed" }

// loader is the serial download protocol of the ROM, and after a stub
// upload, of the flasher stub.
type loader struct {
	c    *cpu
	chip *chips.Chip
	stub bool

	dec     slip.Decoder
	lastVal uint32 // ROM replies carry the last READ_REG (or SYNC) value

	// The ROM answers an unknown command by sending its previous reply's
	// header again (op and value) with status 01 05, as many times as that
	// reply went out: eight times after SYNC, once after anything else.
	// Measured on the ESP32 emulator (real v3 mask ROM): after reset an
	// unknown op gets 01 00 04 00 00 00 00 00 01 05 00 00 once; after SYNC,
	// 01 08 04 00 07 07 12 20 01 05 00 00 eight times (and again eight
	// times for a second unknown op); after READ_REG, 01 0A 04 00 <value>
	// 01 05 00 00 once.
	lastOp     byte
	lastRepeat int

	mem      []memSegment
	memBegun bool
	memSeq   uint32 // ROM: the MEM_DATA sequence number expected next
	memLeft  uint32 // stub: bytes MEM_BEGIN announced and not yet received

	// ROM (ESP32 family): the SPI flash is reachable only after SPI_ATTACH,
	// and only up to the size SPI_SET_PARAMS configured.
	attached   bool
	flashLimit uint32
	md5Buf     []byte // the ROM's reply buffer, left over when a read fails

	fw *flashWrite // FLASH_BEGIN/FLASH_DEFL_BEGIN in progress

	// stub: the previous block's write, still going on in the background
	pending chan error
}

type memSegment struct {
	addr uint32
	data []byte
}

type reply struct {
	value uint32
	data  []byte
}

// romLoader serves the download protocol until the chip leaves it.
func (c *cpu) romLoader() error {
	// before any reply, the header it repeats is all zeros, sent once
	l := &loader{c: c, chip: c.dev.chip, lastRepeat: 1, flashLimit: romDefaultFlashSize, md5Buf: make([]byte, 32)}
	// The ROM's receive buffer holds one 0x1800-byte block and its header;
	// a longer frame is dropped unanswered (measured on the ESP32 emulator:
	// a 0x2000-byte MEM_DATA gets no reply).
	l.dec.MaxFrame = romMaxBlock + 16 + 8
	c.dev.autobaud.Store(true)
	c.dev.setState("download")
	return l.serve()
}

func (l *loader) serve() error {
	defer func() {
		if l.fw != nil && l.fw.infl != nil {
			l.fw.infl.close()
		}
		if l.fw != nil && l.fw.eraser != nil {
			l.fw.eraser.stop()
		}
	}()
	for {
		frame, err := l.readFrame(time.Time{})
		if err != nil {
			return err
		}
		if err := l.handle(frame); err != nil {
			return err
		}
	}
}

// readFrame returns the next SLIP frame from the host. Bytes outside frames
// are dropped, as the ROM drops them.
func (l *loader) readFrame(deadline time.Time) ([]byte, error) {
	c := l.c
	for {
		for len(c.rx) > 0 {
			b := c.rx[0]
			c.rx = c.rx[1:]
			if r, _ := l.dec.Push(b); r == slip.Frame {
				return append([]byte(nil), l.dec.Frame()...), nil
			}
		}
		buf := make([]byte, 4096)
		n, err := c.recv(buf, deadline)
		if err != nil {
			return nil, err
		}
		c.rx = append(c.rx, buf[:n]...)
	}
}

func (l *loader) statusLen() int {
	if l.stub {
		return 2
	}
	return l.chip.ROMStatusLen
}

// send answers a command: 01 op len value data status.
func (l *loader) send(op byte, value uint32, data []byte, fail byte) error {
	status := make([]byte, l.statusLen())
	if fail != 0 {
		if l.stub {
			status[0] = fail
		} else {
			status[0], status[1] = 1, fail
		}
	}
	body := make([]byte, 8, 8+len(data)+len(status))
	body[0] = 0x01
	body[1] = op
	binary.LittleEndian.PutUint16(body[2:], uint16(len(data)+len(status)))
	binary.LittleEndian.PutUint32(body[4:], value)
	body = append(body, data...)
	body = append(body, status...)
	l.lastOp, l.lastRepeat = op, 1
	return l.c.send(slip.Encode(nil, body))
}

// handle runs one request frame.
func (l *loader) handle(frame []byte) error {
	if len(frame) >= 8 && frame[0] != 0x00 && l.stub {
		// esp-flasher-stub (command_handler.c, handle_command) answers a
		// frame that is not a request with its op byte and "invalid command"
		return l.send(frame[1], 0, nil, stubInvalidCmd)
	}
	if len(frame) < 8 || frame[0] != 0x00 {
		return nil // not a request: the ROM ignores it
	}
	op := frame[1]
	size := int(binary.LittleEndian.Uint16(frame[2:]))
	chk := binary.LittleEndian.Uint32(frame[4:])
	data := frame[8:]
	if size != len(data) {
		return l.fail(op, romInvalidMessage, stubBadDataLen)
	}
	if l.stub && op == opSecurityInfo && l.chip.SecurityInfo == chips.SecurityInfoNone {
		return l.send(op, 0, nil, stubNotImplemented)
	}
	if !l.supports(op) {
		return l.unsupported(op)
	}
	if op == opSync {
		return l.sync(data)
	}
	r, err := l.exec(op, data, chk)
	var ce cmdError
	var ex exitLoader
	switch {
	case errors.Is(err, errAlreadyReplied):
		return nil
	case errors.As(err, &ex):
		if op != opRunUserCode { // RUN_USER_CODE has no reply
			if err := l.ok(op, r); err != nil {
				return err
			}
		}
		return err
	case errors.As(err, &ce):
		return l.send(op, l.value(0), nil, ce.code)
	case err != nil:
		return err
	}
	return l.ok(op, r)
}

func (l *loader) ok(op byte, r reply) error {
	v := r.value
	if op != opReadReg {
		v = l.value(v)
	}
	return l.send(op, v, r.data, 0)
}

// value is what a reply carries in its value field: the ROM leaves the
// last READ_REG result there; a stub sends 0 unless it has a value.
func (l *loader) value(v uint32) uint32 {
	if l.stub {
		return v
	}
	return l.lastVal
}

// fail answers with the ROM's or the stub's code for the same failure.
func (l *loader) fail(op, romCode, stubCode byte) error {
	if l.stub {
		return l.send(op, 0, nil, stubCode)
	}
	return l.send(op, l.value(0), nil, romCode)
}

func (l *loader) refuse(romCode, stubCode byte) error {
	if l.stub {
		return cmdError{stubCode}
	}
	return cmdError{romCode}
}

// unsupported answers a command this ROM or stub does not know. The ROM
// repeats its previous reply's header with "invalid message" (01 05), as
// often as that reply was sent (see lastOp); esptool recognises an
// unsupported command by an op byte other than the request's with that
// status. esp-flasher-stub echoes the op with "invalid command" (C3 00,
// command_handler.c; measured on the ESP32 emulator).
func (l *loader) unsupported(op byte) error {
	if l.stub {
		return l.send(op, 0, nil, stubInvalidCmd)
	}
	n := l.lastRepeat
	for i := 0; i < n; i++ {
		if err := l.send(l.lastOp, l.lastVal, nil, romInvalidMessage); err != nil {
			return err
		}
	}
	l.lastRepeat = n
	return nil
}

func (l *loader) supports(op byte) bool {
	c := l.chip
	switch op {
	case opFlashBegin, opFlashData, opFlashEnd, opMemBegin, opMemEnd, opMemData,
		opSync, opWriteReg, opReadReg:
		return true
	case opSPISetParams, opSPIAttach, opChangeBaud, opFlashDeflBegin, opFlashDeflData,
		opFlashDeflEnd, opSPIFlashMD5:
		return l.stub || c.ROMHasDeflate
	case opReadFlashSlow:
		return !l.stub && c.ROMHasSlowRd
	case opSecurityInfo:
		return c.SecurityInfo != chips.SecurityInfoNone
	case opEraseFlash, opEraseRegion, opReadFlash, opRunUserCode:
		return l.stub
	}
	return false
}

// sync answers SYNC eight times, as the ROM does (the stub too, with value 0).
func (l *loader) sync(data []byte) error {
	if len(data) != len(syncPayload) || string(data) != string(syncPayload) {
		return l.fail(opSync, romInvalidMessage, stubBadDataLen)
	}
	var v uint32 = 0x20120707
	if l.stub {
		v = 0
	} else {
		// The ROM's later replies carry SYNC's value until a READ_REG
		// replaces it (measured on the ESP32 emulator: SPI_ATTACH right
		// after SYNC answers with value 0x20120707).
		l.lastVal = v
	}
	for i := 0; i < 8; i++ {
		if err := l.send(opSync, v, nil, 0); err != nil {
			return err
		}
	}
	l.lastRepeat = 8
	return nil
}

func le32(p []byte, i int) uint32 { return binary.LittleEndian.Uint32(p[4*i:]) }

func checksum(data []byte) uint32 {
	s := byte(0xEF)
	for _, b := range data {
		s ^= b
	}
	return uint32(s)
}

func (l *loader) exec(op byte, data []byte, chk uint32) (reply, error) {
	if l.needsAttach(op) && reachesFlash(op, data) {
		return reply{}, l.stuckOnFlash()
	}
	switch op {
	case opReadReg:
		if len(data) != 4 {
			return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
		}
		v := l.c.dev.regs.read(le32(data, 0))
		l.lastVal = v
		return reply{value: v}, nil
	case opWriteReg:
		if len(data) == 0 || len(data)%16 != 0 {
			return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
		}
		for i := 0; i < len(data)/16; i++ {
			addr, val, mask, delay := le32(data, 4*i), le32(data, 4*i+1), le32(data, 4*i+2), le32(data, 4*i+3)
			l.c.dev.regs.write(addr, val, mask)
			if delay > 0 {
				if err := l.c.sleep(time.Duration(delay) * time.Microsecond); err != nil {
					return reply{}, err
				}
			}
		}
		return reply{}, nil
	case opMemBegin:
		return l.memBegin(data)
	case opMemData:
		return l.memData(data, chk)
	case opMemEnd:
		return l.memEnd(data)
	case opSPISetParams:
		if len(data) != 24 {
			return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
		}
		if !l.stub {
			// The ROM keeps the size and refuses flash access past it.
			l.flashLimit = le32(data, 1)
		}
		return reply{}, nil
	case opSPIAttach:
		if len(data) != 4 && len(data) != 8 {
			return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
		}
		l.attached = true
		return reply{}, nil
	case opChangeBaud:
		return reply{}, l.changeBaud(data)
	case opSecurityInfo:
		return l.securityInfo(), nil
	case opFlashBegin, opFlashDeflBegin:
		return l.flashBegin(op, data)
	case opFlashData, opFlashDeflData:
		return l.flashData(op, data, chk)
	case opFlashEnd, opFlashDeflEnd:
		return l.flashEnd(op, data)
	case opSPIFlashMD5:
		return l.md5(data)
	case opReadFlashSlow:
		return l.readFlashSlow(data)
	case opEraseFlash:
		return l.eraseFlash()
	case opEraseRegion:
		return l.eraseRegion(data)
	case opReadFlash:
		return reply{}, l.readFlash(data)
	case opRunUserCode:
		// esp-flasher-stub does not answer RUN_USER_CODE and does nothing
		// with it (command_handler.c: "TODO: Try to implement WDT reset").
		return reply{}, errAlreadyReplied
	}
	return reply{}, l.refuse(romInvalidMessage, stubInvalidCmd)
}

// ROM limits, measured on the ESP32 emulator (the real v3 mask ROM):
// FLASH_BEGIN and MEM_BEGIN accept blocks up to 0x1800 bytes and answer
// 01 05 for 0x1801; before SPI_SET_PARAMS the ROM takes the flash to be
// 2 MiB (SPI_FLASH_MD5 at 0x1FF000 succeeds, at 0x200000 fails with 01 09).
const (
	romMaxBlock         = 0x1800
	romDefaultFlashSize = 2 << 20
)

// romMaxFlashBlock is the largest FLASH_BEGIN block size a ROM accepts.
// Only the ESP32's was measured; for the other ROMs the limit is what
// esptool uses with them (ESPLoader.FLASH_WRITE_SIZE, 0x400).
func (l *loader) romMaxFlashBlock() uint32 {
	if l.chip.Key == "esp32" {
		return romMaxBlock
	}
	return 0x400
}

// needsAttach reports a command that reaches the SPI flash before the
// host attached it. The ESP32-family ROMs leave the flash pins unrouted in
// download mode until SPI_ATTACH (esptool's main: "ROM loader doesn't
// enable flash unless we explicitly do it", and flash_spi_attach: "enable
// the SPI flash pins"; it always sends it to these ROMs first); the ESP8266
// ROM attaches inside FLASH_BEGIN. The stub attaches the flash itself when
// it starts (esp-flasher-stub main.c).
func (l *loader) needsAttach(op byte) bool {
	if l.stub || l.attached || l.chip.IsESP8266() {
		return false
	}
	switch op {
	case opFlashBegin, opFlashDeflBegin, opSPIFlashMD5, opReadFlashSlow:
		return true
	}
	return false
}

// reachesFlash reports whether a flash command is well formed, so that the
// ROM gets as far as the flash: a bad length is refused with 01 05 before
// (measured on the ESP32 emulator: a 12-byte FLASH_BEGIN is answered with
// its own op byte and 01 05).
func reachesFlash(op byte, data []byte) bool {
	switch op {
	case opFlashBegin, opFlashDeflBegin:
		return len(data) == 16 || len(data) == 20
	case opSPIFlashMD5:
		return len(data) == 16
	case opReadFlashSlow:
		return len(data) == 8
	}
	return false
}

// stuckOnFlash is the ROM reaching a flash chip whose pins are not
// connected: it polls the status register for the end of a busy state
// that never comes, and answers nothing until reset. (The emulator cannot
// show this: its flash model is wired whatever the pin routing, and there
// the commands succeed. A board whose flash is attached with the wrong
// pins is reported to hang the same way on FLASH_BEGIN.)
func (l *loader) stuckOnFlash() error {
	l.c.dev.setState("hung")
	<-l.c.ctx.Done()
	return l.c.ctx.Err()
}

// pastFlashLimit reports a ROM flash access beyond the size configured by
// SPI_SET_PARAMS (2 MiB until then).
func (l *loader) pastFlashLimit(addr, size uint32) bool {
	return !l.stub && !l.chip.IsESP8266() && uint64(addr)+uint64(size) > uint64(l.flashLimit)
}

func (l *loader) memBegin(data []byte) (reply, error) {
	if len(data) != 16 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	size, _, blockSize, addr := le32(data, 0), le32(data, 1), le32(data, 2), le32(data, 3)
	if l.stub {
		// esp-flasher-stub (command_handler.c, s_mem_begin) checks only
		// the length; MEM_DATA counts the announced size down.
		l.mem = append(l.mem, memSegment{addr: addr, data: make([]byte, 0, min(size, 1<<20))})
		l.memBegun, l.memLeft = true, size
		return reply{}, nil
	}
	if blockSize > romMaxBlock {
		// measured on the ESP32 emulator: 0x1804 gives 01 05
		l.memBegun = false
		return reply{}, cmdError{romInvalidMessage}
	}
	// Measured on the ESP32 emulator: MEM_BEGIN takes any size and
	// address (2 MiB, 0x60000000 and 0 are all answered 00 00).
	l.mem = append(l.mem, memSegment{addr: addr, data: make([]byte, 0, min(size, 1<<20))})
	l.memBegun, l.memSeq = true, 0
	return reply{}, nil
}

func (l *loader) memData(data []byte, chk uint32) (reply, error) {
	if l.stub {
		return l.stubMemData(data)
	}
	if len(data) < 16 {
		return reply{}, cmdError{romInvalidMessage}
	}
	size, seq := le32(data, 0), le32(data, 1)
	payload := data[16:]
	if int(size) != len(payload) {
		return reply{}, cmdError{romInvalidMessage}
	}
	if !l.memBegun {
		// Measured on the ESP32 emulator: MEM_DATA with no MEM_BEGIN
		// since the reset is answered with its own op byte and 01 05,
		// whatever its checksum.
		return reply{}, cmdError{romInvalidMessage}
	}
	// Measured on the ESP32 emulator: a bad checksum gives 01 07; a
	// sequence number other than the next one (a skipped or repeated
	// block) gives 01 05 and writes nothing; data beyond MEM_BEGIN's size
	// is accepted and written.
	if checksum(payload) != chk&0xFF {
		return reply{}, cmdError{romBadChecksum}
	}
	if seq != l.memSeq {
		return reply{}, cmdError{romInvalidMessage}
	}
	l.memSeq++
	seg := &l.mem[len(l.mem)-1]
	seg.data = append(seg.data, payload...)
	return reply{}, nil
}

// stubMemData is esp-flasher-stub's MEM_DATA (command_handler.c,
// s_mem_data): no sequence number or checksum check, but not more than
// MEM_BEGIN announced.
func (l *loader) stubMemData(data []byte) (reply, error) {
	if len(data) < 16 {
		return reply{}, cmdError{stubNotEnough}
	}
	if !l.memBegun {
		return reply{}, cmdError{stubNotFlashing}
	}
	size := le32(data, 0)
	payload := data[16:]
	if size > l.memLeft || int(size) != len(payload) {
		return reply{}, cmdError{stubTooMuch}
	}
	seg := &l.mem[len(l.mem)-1]
	seg.data = append(seg.data, payload...)
	l.memLeft -= size
	return reply{}, nil
}

func (l *loader) memEnd(data []byte) (reply, error) {
	if len(data) != 8 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	if l.stub && !l.memBegun {
		return reply{}, cmdError{stubNotFlashing}
	}
	flag, entry := le32(data, 0), le32(data, 1)
	if flag != 0 {
		return reply{}, nil // only finish, no jump
	}
	if l.knownStub(entry) {
		return reply{}, errJumpRAM
	}
	// Anything else is code the virtual device cannot run: the jump lands
	// in memory that holds no complete flasher stub and the host hears no
	// loader again.
	return reply{}, l.crash(entry)
}

// crash is the CPU jumping to entry into code the virtual device does not
// run. Where the ESP32 finds zeros (nothing uploaded there; RAM after
// reset in the emulator), its ROM's exception handler reports an illegal
// instruction at the entry point and the chip stays there: measured on
// the ESP32 emulator after MEM_END into 256 zero bytes at 0x40080000,
// "Fatal exception (0): IllegalInstruction" and the epc line, then
// silence. What other code would do is not modelled: silence.
func (l *loader) crash(entry uint32) exitLoader {
	if l.chip.Key != "esp32" {
		return errCrash
	}
	word := []byte{0, 0, 0}
	for i := len(l.mem) - 1; i >= 0; i-- {
		m := l.mem[i]
		if entry >= m.addr && entry < m.addr+uint32(len(m.data)) {
			word = m.data[entry-m.addr : min(uint32(len(m.data)), entry-m.addr+3)]
			break
		}
	}
	if bytes.Count(word, []byte{0}) == len(word) {
		l.c.fault = fmt.Sprintf("Fatal exception (0): IllegalInstruction\r\n"+
			"epc1=0x%08x, epc2=0x00000000, epc3=0x00000000, excvaddr=0x00000000, depc=0x00000000\r\n", entry)
	}
	return errCrash
}

// knownStub reports whether RAM holds, complete and unchanged, one of the
// flasher stub images mos ships (flasher/stubs) and entry is its entry
// point: only then does the virtual device run the stub model.
func (l *loader) knownStub(entry uint32) bool {
	s, err := stubs.ForChip(l.chip.Key)
	if err != nil || entry != s.Entry {
		return false
	}
	holds := func(addr uint32, want []byte) bool {
		if len(want) == 0 {
			return true
		}
		// the last upload to an address is what RAM holds
		for i := len(l.mem) - 1; i >= 0; i-- {
			if m := l.mem[i]; m.addr == addr {
				return bytes.Equal(m.data, want)
			}
		}
		return false
	}
	return holds(s.TextStart, s.Text) && holds(s.DataStart, s.Data)
}

var (
	errJumpRAM = exitLoader{action: exitAction(100)}
	errCrash   = exitLoader{action: exitAction(101)}
)

func (l *loader) changeBaud(data []byte) error {
	if len(data) != 8 {
		return l.refuse(romInvalidMessage, stubBadDataLen)
	}
	newBaud := int(le32(data, 0))
	if newBaud <= 0 {
		return l.refuse(romInvalidParam, stubBadDataLen)
	}
	d := l.c.dev
	// esp-flasher-stub takes the first word as the new rate, absolute, and
	// ignores the second (command_handler.c, s_change_baudrate_post_process);
	// so do the ROMs (measured on the ESP32 emulator: 460800 with 115200 as
	// the old rate gives the divider for 460800).
	target := newBaud
	if !l.stub {
		d.romBaud.Store(int64(newBaud))
		target = d.romUARTBaud(newBaud)
	}
	// The reply still goes out at the old rate; the switch follows it.
	if err := l.ok(opChangeBaud, reply{}); err != nil {
		return err
	}
	if !d.cfg.Fast {
		if err := l.c.sleep(time.Until(d.toHost.idleAt())); err != nil {
			return err
		}
	}
	d.autobaud.Store(false)
	d.uartBaud.Store(int64(target))
	return errAlreadyReplied
}

// errAlreadyReplied tells handle that the command sent its own reply.
var errAlreadyReplied = errors.New("replied")

func (l *loader) securityInfo() reply {
	c := l.chip
	var p []byte
	p = binary.LittleEndian.AppendUint32(p, 0) // flags: no secure boot, no SDM
	p = append(p, 0)                           // flash crypt count
	p = append(p, make([]byte, 7)...)          // key purposes
	if c.SecurityInfo == chips.SecurityInfoFull {
		p = binary.LittleEndian.AppendUint32(p, uint32(c.ImageChipID))
		p = binary.LittleEndian.AppendUint32(p, 0) // ECO / API version
	}
	return reply{data: p}
}

func (l *loader) md5(data []byte) (reply, error) {
	if len(data) != 16 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	addr, size := le32(data, 0), le32(data, 1)
	if err := l.waitPending(); err != nil {
		return reply{}, err
	}
	if l.pastFlashLimit(addr, size) {
		// Measured on the ESP32 emulator: the reply still carries 32
		// bytes, whatever the ROM's reply buffer held (zeros after reset,
		// else the previous digest), and status 01 09 (flash read error).
		if err := l.send(opSPIFlashMD5, l.value(0), l.md5Buf, romFlashRead); err != nil {
			return reply{}, err
		}
		return reply{}, errAlreadyReplied
	}
	sum, err := l.c.dev.flash.MD5(addr, size)
	if err != nil {
		return reply{}, l.refuse(romFlashRead, stubSPIFailed)
	}
	if err := l.c.sleep(readTime(int(size))); err != nil {
		return reply{}, err
	}
	if l.stub {
		return reply{data: sum[:]}, nil
	}
	l.md5Buf = []byte(hex.EncodeToString(sum[:]))
	return reply{data: l.md5Buf}, nil
}

// readTime models reading flash through the cache at 40 MHz quad I/O,
// about 10 MB/s once hashing is included.
func readTime(n int) time.Duration {
	return time.Duration(int64(n) * int64(time.Second) / (10 << 20))
}

func (l *loader) readFlashSlow(data []byte) (reply, error) {
	if len(data) != 8 {
		return reply{}, l.refuse(romInvalidMessage, 0)
	}
	addr, size := le32(data, 0), le32(data, 1)
	if size > 64 {
		return reply{}, l.refuse(romInvalidParam, 0)
	}
	if l.pastFlashLimit(addr, size) {
		// measured on the ESP32 emulator: 01 09 (flash read error)
		return reply{}, cmdError{romFlashRead}
	}
	buf := make([]byte, 64)
	if err := l.c.dev.flash.ReadAt(buf[:size], addr); err != nil {
		return reply{}, l.refuse(romFlashRead, 0)
	}
	return reply{data: buf}, nil
}
