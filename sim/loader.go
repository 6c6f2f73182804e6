package sim

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/mos-tool/mos/chips"
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
	l := &loader{c: c, chip: c.dev.chip, lastRepeat: 1}
	l.dec.MaxFrame = 0x4000 + 64
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
		return reply{}, nil
	case opSPIAttach:
		if len(data) != 4 && len(data) != 8 {
			return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
		}
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
		return reply{}, exitLoader{exitRunApp}
	}
	return reply{}, l.refuse(romInvalidMessage, stubInvalidCmd)
}

func (l *loader) memBegin(data []byte) (reply, error) {
	if len(data) != 16 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	size, _, blockSize, addr := le32(data, 0), le32(data, 1), le32(data, 2), le32(data, 3)
	if size > 512<<10 || blockSize == 0 {
		return reply{}, l.refuse(0x0E, stubBadBlockSize) // bad RAM binary size
	}
	l.mem = append(l.mem, memSegment{addr: addr, data: make([]byte, 0, size)})
	l.memBegun = true
	return reply{}, nil
}

func (l *loader) memData(data []byte, chk uint32) (reply, error) {
	if !l.memBegun || len(data) < 16 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	size := le32(data, 0)
	payload := data[16:]
	if int(size) != len(payload) {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	if checksum(payload) != chk&0xFF {
		return reply{}, l.refuse(romBadChecksum, stubBadChecksum)
	}
	seg := &l.mem[len(l.mem)-1]
	seg.data = append(seg.data, payload...)
	return reply{}, nil
}

func (l *loader) memEnd(data []byte) (reply, error) {
	if len(data) != 8 {
		return reply{}, l.refuse(romInvalidMessage, stubBadDataLen)
	}
	flag, entry := le32(data, 0), le32(data, 1)
	if flag != 0 {
		return reply{}, nil // only finish, no jump
	}
	for _, s := range l.mem {
		if entry >= s.addr && entry < s.addr+uint32(len(s.data)) {
			return reply{}, errJumpRAM
		}
	}
	// jumping into memory that holds no code: the CPU faults
	return reply{}, errCrash
}

var (
	errJumpRAM = exitLoader{action: exitAction(100)}
	errCrash   = exitLoader{action: exitAction(101)}
)

func (l *loader) changeBaud(data []byte) error {
	if len(data) != 8 {
		return l.refuse(romInvalidMessage, stubBadDataLen)
	}
	newBaud, oldBaud := int(le32(data, 0)), int(le32(data, 1))
	if newBaud <= 0 {
		return l.refuse(romInvalidParam, stubBadDataLen)
	}
	d := l.c.dev
	target := newBaud
	if l.stub && oldBaud > 0 {
		// The stub scales its current divider by old/new: the host must
		// tell it the rate in use, or the result is off by the same ratio.
		target = int(int64(d.uartBaud.Load()) * int64(newBaud) / int64(oldBaud))
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
	return reply{data: []byte(hex.EncodeToString(sum[:]))}, nil
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
	buf := make([]byte, 64)
	if err := l.c.dev.flash.ReadAt(buf[:size], addr); err != nil {
		return reply{}, l.refuse(romFlashRead, 0)
	}
	return reply{data: buf}, nil
}
