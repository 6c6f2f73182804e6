package flasher

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ramBlock is the MEM_DATA block size every ROM accepts.
const ramBlock = 0x1800

// LoadRAM writes a segment into the chip's RAM with MEM_BEGIN/MEM_DATA.
func (l *Loader) LoadRAM(ctx context.Context, addr uint32, data []byte) error {
	blocks := (len(data) + ramBlock - 1) / ramBlock
	if _, err := l.Command(ctx, OpMemBegin, le(uint32(len(data)), uint32(blocks), ramBlock, addr), 0, DefaultTimeout); err != nil {
		return fmt.Errorf("MEM_BEGIN at 0x%08X: %w", addr, err)
	}
	for seq := 0; seq < blocks; seq++ {
		chunk := data[seq*ramBlock : min(len(data), (seq+1)*ramBlock)]
		payload := append(le(uint32(len(chunk)), uint32(seq), 0, 0), chunk...)
		if _, err := l.Command(ctx, OpMemData, payload, Checksum(chunk), DefaultTimeout); err != nil {
			return fmt.Errorf("MEM_DATA block %d at 0x%08X: %w", seq, addr, err)
		}
	}
	return nil
}

// RunStub uploads the flasher stub into RAM, starts it and waits for its
// "OHAI" greeting. From then on replies carry two status bytes.
func (l *Loader) RunStub(ctx context.Context) error {
	if l.Stub {
		return nil
	}
	s, err := StubFor(l.Chip)
	if err != nil {
		return err
	}
	if err := l.LoadRAM(ctx, s.TextStart, s.Text); err != nil {
		return fmt.Errorf("uploading the flasher stub: %w", err)
	}
	if len(s.Data) > 0 {
		if err := l.LoadRAM(ctx, s.DataStart, s.Data); err != nil {
			return fmt.Errorf("uploading the flasher stub: %w", err)
		}
	}
	// MEM_END(0, entry): the ROM answers, then jumps to the stub.
	if _, err := l.Command(ctx, OpMemEnd, le(0, s.Entry), 0, DefaultTimeout); err != nil {
		return fmt.Errorf("starting the flasher stub: %w", err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; {
		f, err := l.ReadFrame(ctx, time.Until(deadline))
		if err != nil {
			return fmt.Errorf("the flasher stub did not start (no OHAI greeting): %w", err)
		}
		if string(f) == "OHAI" {
			break
		}
	}
	l.Stub = true
	l.StatusLen = 2
	return nil
}

// ChangeBaud switches the loader and the port to baud and checks that the
// link works at the new rate. The ESP8266 ROM cannot change its rate (the
// stub can): ErrUnsupported.
func (l *Loader) ChangeBaud(ctx context.Context, baud int) error {
	p := l.Port()
	cur := p.BaudRate()
	if baud == cur {
		return nil
	}
	if !l.Stub && l.Chip.IsESP8266() {
		return ErrUnsupported
	}
	ask := uint32(baud)
	old := uint32(0)
	if l.Stub {
		// esp-flasher-stub takes the new rate as is and ignores the second
		// word (command_handler.c); esptool still sends the current rate
		// there, for Espressif's older stub, which scaled by new/old.
		old = uint32(cur)
	} else if l.Chip.Key == "esp32" {
		var err error
		if ask, err = l.esp32ROMBaud(ctx, baud); err != nil {
			return fmt.Errorf("changing baud rate to %d: %w", baud, err)
		}
	}
	// The reply comes at the old rate; then both sides switch.
	if _, err := l.Command(ctx, OpChangeBaud, le(ask, old), 0, DefaultTimeout); err != nil {
		return fmt.Errorf("changing baud rate to %d: %w", baud, err)
	}
	if err := p.SetBaudRate(baud); err != nil {
		return err
	}
	// Both switch right after their reply has gone out (esp-flasher-stub
	// in the command's post-processing); bytes sent before that are lost.
	settle := 5 * time.Millisecond
	if l.Stub {
		settle = 20 * time.Millisecond
	}
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	l.Flush()
	return l.Ping(ctx)
}

// ESP32 registers esptool reads to correct the ROM's baud rate
// (targets/esp32.py: RTCCALICFG1, TIMERS_RTC_CALI_VALUE, EFUSE_RD_CK8M_FREQ).
const (
	esp32RTCCaliCfg1  = 0x3FF5F06C
	esp32CaliShift    = 7
	esp32CaliMask     = 0x01FFFFFF
	esp32CK8MFreqWord = 4 // eFuse word, bits 7:0
)

// esp32ROMBaud is the rate to ask the ESP32 ROM for so that its UART ends
// up at baud. The ROM computes its divider from a crystal frequency it
// estimated against its uncalibrated 8 MHz RC oscillator, not from the
// crystal itself; the rate it sets is off by estimate / crystal. esptool
// reads the ROM's calibration count and the oscillator's eFuse value,
// recomputes the estimate, and scales the rate it asks for by the same
// ratio (ESP32ROM.change_baud, get_rom_cal_crystal_freq).
func (l *Loader) esp32ROMBaud(ctx context.Context, baud int) (uint32, error) {
	cal, err := l.ReadReg(ctx, esp32RTCCaliCfg1)
	if err != nil {
		return 0, fmt.Errorf("reading the ROM's clock calibration: %w", err)
	}
	w4, err := l.ReadReg(ctx, l.Chip.EfuseBase+4*esp32CK8MFreqWord)
	if err != nil {
		return 0, fmt.Errorf("reading the 8 MHz oscillator's eFuse value: %w", err)
	}
	est := uint64((cal>>esp32CaliShift)&esp32CaliMask) * 15625 * uint64(w4&0xFF) / 40
	if est == 0 {
		return uint32(baud), nil // no calibration to correct with
	}
	xtal := uint64(26000000)
	if est > 33000000 {
		xtal = 40000000
	}
	return uint32(uint64(baud) * est / xtal), nil
}

// ErrLink reports a link that does not carry commands reliably at the
// current baud rate.
var ErrLink = errors.New("no reliable answer at this baud rate")

// Ping checks that the loader answers a harmless command.
func (l *Loader) Ping(ctx context.Context) error {
	var last error
	for i := 0; i < 3; i++ {
		r, err := l.Command(ctx, OpReadReg, le(l.Chip.UARTDateReg), 0, 300*time.Millisecond)
		if err == nil && r != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
		l.Flush()
	}
	return fmt.Errorf("%w (%d baud): %v", ErrLink, l.Port().BaudRate(), last)
}

// AttachFlash makes the loader talk to the SPI flash: attach the default
// pins and tell it the flash geometry. The ESP8266 ROM has neither command
// (FLASH_BEGIN attaches there).
func (l *Loader) AttachFlash(ctx context.Context, size int) error {
	if !l.Stub && l.Chip.IsESP8266() {
		_, err := l.Command(ctx, OpFlashBegin, le(0, 0, 0x400, 0), 0, DefaultTimeout)
		return err
	}
	arg := le(0)
	if !l.Stub {
		arg = le(0, 0) // the ROM's form takes a second word
	}
	if _, err := l.Command(ctx, OpSPIAttach, arg, 0, DefaultTimeout); err != nil {
		return fmt.Errorf("attaching the SPI flash: %w", err)
	}
	if size > 0 {
		params := le(0, uint32(size), 64<<10, 4<<10, 256, 0xFFFF)
		if _, err := l.Command(ctx, OpSPISetParams, params, 0, DefaultTimeout); err != nil {
			return fmt.Errorf("setting flash parameters: %w", err)
		}
	}
	return nil
}
