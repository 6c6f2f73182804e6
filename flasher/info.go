package flasher

import (
	"context"
	"fmt"
	"net"
)

// MAC reads the factory MAC address from the chip's eFuses.
func (l *Loader) MAC(ctx context.Context) (net.HardwareAddr, error) {
	c := l.Chip
	read := func(addr uint32) (uint32, error) { return l.ReadReg(ctx, addr) }
	if c.IsESP8266() {
		m0, err := read(c.MACRegs[0])
		if err != nil {
			return nil, err
		}
		m1, err := read(c.MACRegs[1])
		if err != nil {
			return nil, err
		}
		m3, err := read(c.MACRegs[2])
		if err != nil {
			return nil, err
		}
		var oui [3]byte
		switch {
		case m3 != 0:
			oui = [3]byte{byte(m3 >> 16), byte(m3 >> 8), byte(m3)}
		case (m1>>16)&0xFF == 0:
			oui = [3]byte{0x18, 0xFE, 0x34}
		case (m1>>16)&0xFF == 1:
			oui = [3]byte{0xAC, 0xD0, 0x74}
		default:
			return nil, fmt.Errorf("unknown ESP8266 OUI code 0x%02X in eFuse", (m1>>16)&0xFF)
		}
		return net.HardwareAddr{oui[0], oui[1], oui[2], byte(m1 >> 8), byte(m1), byte(m0 >> 24)}, nil
	}
	lo, err := read(c.MACRegs[0])
	if err != nil {
		return nil, err
	}
	hi, err := read(c.MACRegs[1])
	if err != nil {
		return nil, err
	}
	return net.HardwareAddr{byte(hi >> 8), byte(hi), byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)}, nil
}

// SPI user-command register bits.
const (
	spiCmdUsr  = 1 << 18
	spiUsrCmd  = 1 << 31
	spiUsrMISO = 1 << 28
)

// RunSPICommand runs a flash command with no address and no data out
// through the SPI controller's user-command registers and returns up to 32
// bits clocked in from the flash, as esptool does for the JEDEC ID.
func (l *Loader) RunSPICommand(ctx context.Context, opcode byte, readBits int) (uint32, error) {
	s := l.Chip.SPI
	reg := func(off uint32) uint32 { return s.Base + off }
	oldUsr, err := l.ReadReg(ctx, reg(s.Usr))
	if err != nil {
		return 0, err
	}
	oldUsr2, err := l.ReadReg(ctx, reg(s.Usr2))
	if err != nil {
		return 0, err
	}
	if s.MOSIDLen != 0 {
		if err := l.WriteReg(ctx, reg(s.MISODLen), uint32(readBits-1), 0xFFFFFFFF); err != nil {
			return 0, err
		}
	} else {
		// ESP8266: MISO bit count at USR1[16:8]
		if err := l.WriteReg(ctx, reg(s.Usr1), uint32(readBits-1)<<8, 0xFFFFFFFF); err != nil {
			return 0, err
		}
	}
	flags := uint32(spiUsrCmd)
	if readBits > 0 {
		flags |= spiUsrMISO
	}
	steps := []struct{ addr, val uint32 }{
		{reg(s.Usr), flags},
		{reg(s.Usr2), 7<<28 | uint32(opcode)},
		{reg(s.W0), 0},
		{reg(s.Cmd), spiCmdUsr},
	}
	for _, st := range steps {
		if err := l.WriteReg(ctx, st.addr, st.val, 0xFFFFFFFF); err != nil {
			return 0, err
		}
	}
	done := false
	for i := 0; i < 10; i++ {
		v, err := l.ReadReg(ctx, reg(s.Cmd))
		if err != nil {
			return 0, err
		}
		if v&spiCmdUsr == 0 {
			done = true
			break
		}
	}
	if !done {
		return 0, fmt.Errorf("SPI flash command 0x%02X did not complete", opcode)
	}
	v, err := l.ReadReg(ctx, reg(s.W0))
	if err != nil {
		return 0, err
	}
	if err := l.WriteReg(ctx, reg(s.Usr), oldUsr, 0xFFFFFFFF); err != nil {
		return 0, err
	}
	if err := l.WriteReg(ctx, reg(s.Usr2), oldUsr2, 0xFFFFFFFF); err != nil {
		return 0, err
	}
	return v, nil
}

// FlashID reads the flash chip's JEDEC ID (manufacturer in bits 7:0,
// memory type 15:8, capacity 23:16).
func (l *Loader) FlashID(ctx context.Context) (uint32, error) {
	id, err := l.RunSPICommand(ctx, 0x9F, 24)
	return id & 0xFFFFFF, err
}

// FlashSizeFromID decodes the capacity byte of a JEDEC ID; 0 when unknown.
func FlashSizeFromID(id uint32) int {
	mfr, capByte := byte(id), byte(id>>16)
	if mfr == 0x1F { // Adesto encodes the size in the device id
		if n := (id >> 8) & 0x1F; n >= 4 && n <= 9 {
			return 512 << 10 << (n - 4)
		}
		return 0
	}
	switch {
	case capByte >= 0x12 && capByte <= 0x1C:
		return 1 << capByte
	case capByte >= 0x32 && capByte <= 0x3A:
		return 1 << (capByte - 0x20)
	case capByte >= 0x20 && capByte <= 0x22:
		return 64 << 20 << (capByte - 0x20)
	}
	return 0
}

// Info is what chip-info reports.
type Info struct {
	Chip      string `json:"chip"`
	MAC       string `json:"mac"`
	FlashID   string `json:"flash_id"`
	FlashSize int    `json:"flash_size"`
	Stub      bool   `json:"stub"`
	Reset     string `json:"reset,omitempty"`
}

// ReadInfo gathers the chip's identity, MAC and flash.
func (l *Loader) ReadInfo(ctx context.Context) (*Info, error) {
	mac, err := l.MAC(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading MAC: %w", err)
	}
	id, err := l.FlashID(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading flash ID: %w", err)
	}
	return &Info{
		Chip:      l.Chip.Name,
		MAC:       mac.String(),
		FlashID:   fmt.Sprintf("0x%06X", id),
		FlashSize: FlashSizeFromID(id),
		Stub:      l.Stub,
		Reset:     l.Reset,
	}, nil
}
