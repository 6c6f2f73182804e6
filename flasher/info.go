package flasher

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/mos-tool/mos/chips"
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
	Chip       string    `json:"chip"`
	Revision   string    `json:"revision,omitempty"` // vMAJOR.MINOR
	CrystalMHz int       `json:"crystal_mhz"`
	MAC        string    `json:"mac"`
	FlashID    string    `json:"flash_id"`
	FlashSize  int       `json:"flash_size"`
	Security   *Security `json:"security,omitempty"` // chips whose ROM reports it
	Stub       bool      `json:"stub"`
	Reset      string    `json:"reset,omitempty"`
}

// Security is the ROM's GET_SECURITY_INFO answer, decoded.
type Security struct {
	Flags              uint32 `json:"flags"`
	SecureBoot         bool   `json:"secure_boot"`
	SecureDownloadMode bool   `json:"secure_download_mode"`
	FlashEncryption    bool   `json:"flash_encryption"`
	JTAGDisabled       bool   `json:"jtag_disabled"`
	USBDisabled        bool   `json:"usb_disabled"`
}

// SecurityInfo asks the ROM (or stub) for the chip's security state. Chips
// without the command (ESP8266, ESP32) give ErrUnsupported.
func (l *Loader) SecurityInfo(ctx context.Context) (*Security, error) {
	if l.Chip.SecurityInfo == chips.SecurityInfoNone {
		return nil, ErrUnsupported
	}
	r, err := l.Command(ctx, OpSecurityInfo, nil, 0, DefaultTimeout)
	if err != nil {
		return nil, err
	}
	if len(r.Data) < 12 {
		return nil, fmt.Errorf("security info of %d bytes", len(r.Data))
	}
	flags := uint32(r.Data[0]) | uint32(r.Data[1])<<8 | uint32(r.Data[2])<<16 | uint32(r.Data[3])<<24
	crypt := r.Data[4]
	ones := 0
	for b := crypt; b != 0; b &= b - 1 {
		ones++
	}
	return &Security{
		Flags:              flags,
		SecureBoot:         flags&(1<<0) != 0,
		SecureDownloadMode: flags&(1<<2) != 0,
		FlashEncryption:    ones%2 == 1, // an odd count of set bits enables it
		JTAGDisabled:       flags&(3<<6) != 0,
		USBDisabled:        flags&(1<<8) != 0,
	}, nil
}

// Revision reads the chip revision from its eFuse fields (as each chip's
// technical reference manual and esptool's targets lay them out).
func (l *Loader) Revision(ctx context.Context) (string, error) {
	c := l.Chip
	rd := func(addr uint32) (uint32, error) { return l.ReadReg(ctx, addr) }
	bits := func(v uint32, hi, lo uint) uint32 { return (v >> lo) & (1<<(hi-lo+1) - 1) }
	b1 := c.EfuseBase + 0x44
	var major, minor uint32
	switch c.Key {
	case "esp8266":
		return "", nil
	case "esp32":
		w3, err := rd(c.EfuseBase + 0x0C)
		if err != nil {
			return "", err
		}
		w5, err := rd(c.EfuseBase + 0x14)
		if err != nil {
			return "", err
		}
		apb, err := rd(0x3FF6607C)
		if err != nil {
			return "", err
		}
		code := bits(apb, 31, 31)<<2 | bits(w5, 20, 20)<<1 | bits(w3, 15, 15)
		major = map[uint32]uint32{0: 0, 1: 1, 3: 2, 7: 3}[code]
		minor = bits(w5, 25, 24)
	case "esp32s2":
		w3, err := rd(b1 + 12)
		if err != nil {
			return "", err
		}
		w4, err := rd(b1 + 16)
		if err != nil {
			return "", err
		}
		major, minor = bits(w3, 19, 18), bits(w3, 20, 20)<<3|bits(w4, 6, 4)
	case "esp32s3", "esp32c3":
		w3, err := rd(b1 + 12)
		if err != nil {
			return "", err
		}
		w5, err := rd(b1 + 20)
		if err != nil {
			return "", err
		}
		major, minor = bits(w5, 25, 24), bits(w5, 23, 23)<<3|bits(w3, 20, 18)
	case "esp32c6":
		w3, err := rd(b1 + 12)
		if err != nil {
			return "", err
		}
		major, minor = bits(w3, 23, 22), bits(w3, 21, 18)
	default:
		return "", nil
	}
	return fmt.Sprintf("v%d.%d", major, minor), nil
}

// CrystalMHz is the crystal frequency: measured from the UART divider on
// the ESP8266 and ESP32 (26 or 40 MHz parts exist), fixed on the others.
func (l *Loader) CrystalMHz(ctx context.Context) (int, error) {
	c := l.Chip
	if c.Key != "esp8266" && c.Key != "esp32" {
		return 40, nil
	}
	div, err := l.ReadReg(ctx, c.UARTClkDivReg)
	if err != nil {
		return 0, err
	}
	k := 1.0
	if c.IsESP8266() {
		k = 2 // the ESP8266 UART runs from twice the crystal
	}
	mhz := float64(l.Port().BaudRate()) * float64(div&0xFFFFF) / 1e6 / k
	switch {
	case mhz > 45:
		return 48, nil
	case mhz > 33:
		return 40, nil
	}
	return 26, nil
}

// ReadInfo gathers the chip's identity, MAC and flash.
func (l *Loader) ReadInfo(ctx context.Context) (*Info, error) {
	mac, err := l.MAC(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading MAC: %w", err)
	}
	if !l.Stub && !l.Chip.IsESP8266() {
		// The ESP32-family ROMs reach the flash only once it is attached
		// (esptool, before any flash access without its stub: "ROM loader
		// doesn't enable flash unless we explicitly do it"); the JEDEC ID
		// read below goes to the flash chip too. The stub attaches itself.
		if err := l.AttachFlash(ctx, 0); err != nil {
			return nil, err
		}
	}
	id, err := l.FlashID(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading flash ID: %w", err)
	}
	info := &Info{
		Chip:      l.Chip.Name,
		MAC:       mac.String(),
		FlashID:   fmt.Sprintf("0x%06X", id),
		FlashSize: FlashSizeFromID(id),
		Stub:      l.Stub,
		Reset:     l.Reset,
	}
	if info.Revision, err = l.Revision(ctx); err != nil {
		return nil, fmt.Errorf("reading chip revision: %w", err)
	}
	if info.CrystalMHz, err = l.CrystalMHz(ctx); err != nil {
		return nil, fmt.Errorf("reading crystal frequency: %w", err)
	}
	if sec, err := l.SecurityInfo(ctx); err == nil {
		info.Security = sec
	} else if !errors.Is(err, ErrUnsupported) {
		return nil, fmt.Errorf("reading security info: %w", err)
	}
	return info, nil
}
