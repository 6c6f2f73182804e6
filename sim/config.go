package sim

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/sim/atca"
)

// Board is how the chip's EN and IO0 (boot strap) pins are wired to the
// host's DTR and RTS lines.
type Board string

const (
	// BoardDevKit: the classic two-transistor auto-reset circuit of most
	// development boards (DTR -> IO0, RTS -> EN, each through an inverting
	// transistor, so that asserting both lines changes nothing).
	BoardDevKit Board = "devkit"
	// BoardSlowEN: the same circuit with a large capacitor on EN, so the
	// chip leaves reset long after RTS is released (tools need their longer
	// reset delay, as on some ESP32 boards).
	BoardSlowEN Board = "slow-en"
	// BoardUSBJTAG: the chip's own USB-Serial/JTAG peripheral, which reads
	// the line states itself (ESP32-S3, -C3, -C6).
	BoardUSBJTAG Board = "usb-jtag"
	// BoardNoAutoReset: DTR and RTS are not connected. Only the BOOT and EN
	// buttons (Device.PressReset) change the chip's state.
	BoardNoAutoReset Board = "no-autoreset"
)

// enDelay is how long EN must stay high before the chip leaves reset and
// samples its strapping pins: the RC time of the EN pin's network. Line
// changes shorter than this (two separate DTR/RTS calls) do not reset.
func (b Board) enDelay() time.Duration {
	switch b {
	case BoardSlowEN:
		return 250 * time.Millisecond
	case BoardUSBJTAG:
		return time.Millisecond
	}
	// 10 kOhm and 1 uF, as on common dev boards: about 10 ms
	return 10 * time.Millisecond
}

// Config describes a virtual device.
type Config struct {
	Chip      *chips.Chip
	Board     Board
	FlashSize int    // bytes; default 4 MiB
	FlashFile string // persist the flash contents in this file
	// Fast delivers bytes at once and skips modelled flash and boot times.
	// For unit tests only: demos and benchmarks use real timing.
	Fast bool
	// DownloadAtPowerOn starts the chip with IO0 held low (the BOOT button
	// pressed while plugging in), so it waits in the ROM loader.
	DownloadAtPowerOn bool
	// MAC is the factory MAC address; zero picks one from the chip name.
	MAC [6]byte
	// Timings of the flash chip; zero means DefaultFlashTimings.
	Timings *FlashTimings
	// BridgeMaxBaud models a USB-UART bridge that cannot go faster: asked
	// for more, it runs at this rate (and the line garbles). 0: no limit.
	BridgeMaxBaud int
	// CK8MDrift is how far the ESP32's 8 MHz RC oscillator is off its
	// eFuse value (0.04: 4 % fast); the ROM's baud changes are off by
	// the same ratio (see romclock.go). nil picks a value from the MAC
	// within ±6 %. Other chips ignore it.
	CK8MDrift *float64
	// Noise makes the wire corrupt or lose bytes (a noisy cable).
	Noise Noise
	// WiFi is the radio environment the demo firmware's station and
	// Wifi.Scan see. nil means DefaultWiFi(); an empty slice, no networks.
	WiFi []AccessPoint
	// Firmware runs the application images the device boots (see
	// Firmware); nil: a valid application boots and then runs silently.
	// One value per device: it keeps that device's firmware state.
	Firmware Firmware
	// ATCA puts an ATECC508A crypto chip on the board's I2C bus (address
	// 0x60), as on boards made for cloud identity. New builds it unless
	// CryptoChip is given; with a FlashFile its state is kept next to it
	// (atca.StatePath), so the chip's keys and locks survive like the
	// flash does. ParseURL sets it unless the address says atca=0.
	ATCA bool
	// CryptoChip is the board's crypto chip (nil: none, unless ATCA).
	CryptoChip *atca.Chip
}

func (c *Config) setDefaults() error {
	if c.Chip == nil {
		return errors.New("sim: no chip given")
	}
	if c.Board == "" {
		c.Board = BoardDevKit
	}
	switch c.Board {
	case BoardDevKit, BoardSlowEN, BoardNoAutoReset:
	case BoardUSBJTAG:
		if !c.Chip.USBSerialJTAG {
			return fmt.Errorf("sim: %s has no USB-Serial/JTAG peripheral", c.Chip.Name)
		}
	default:
		return fmt.Errorf("sim: unknown board %q (devkit, slow-en, usb-jtag, no-autoreset)", c.Board)
	}
	if c.FlashSize == 0 {
		c.FlashSize = 4 << 20
	}
	if c.MAC == ([6]byte{}) {
		c.MAC = defaultMAC(c.Chip)
	}
	if c.WiFi == nil {
		c.WiFi = DefaultWiFi()
	}
	if c.CK8MDrift == nil {
		v := defaultCK8MDrift(c.MAC)
		c.CK8MDrift = &v
	}
	return nil
}

// defaultMAC gives each chip family a stable, plausible Espressif MAC.
func defaultMAC(c *chips.Chip) [6]byte {
	var h byte
	for _, r := range c.Key {
		h = h*31 + byte(r)
	}
	if c.IsESP8266() {
		return [6]byte{0x18, 0xFE, 0x34, 0x12, 0x34, h}
	}
	return [6]byte{0x24, 0x0A, 0xC4, 0x12, 0x34, h}
}

// ParseURL reads a sim:// address:
//
//	sim://CHIP[?flash=4M&board=devkit&flash-file=PATH&fast=1&download=1&id=NAME&mac=aa:bb:..&timing=typ|max&maxbaud=N&ck8m-drift=PCT&wifi=NETWORKS&noise=RATE[,seed=N,dir=D,baud=N]&atca=0]
//
// id names a device shared by every Open of the same id in this process,
// so that a test can reconnect to the device it flashed. wifi replaces the
// Wi-Fi environment (see ParseWiFi). atca=0 leaves the crypto chip off
// the board.
func ParseURL(raw string) (cfg Config, id string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "sim" {
		return cfg, "", fmt.Errorf("sim: bad address %q (want sim://CHIP?options)", raw)
	}
	name := u.Host
	if name == "" {
		name = strings.TrimPrefix(u.Opaque, "//")
	}
	c, err := chips.ByKey(name)
	if err != nil {
		return cfg, "", err
	}
	cfg.Chip = c
	cfg.ATCA = true
	q := u.Query()
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "flash":
			n, err := ParseSize(v)
			if err != nil {
				return cfg, "", err
			}
			cfg.FlashSize = n
		case "board":
			cfg.Board = Board(v)
		case "flash-file":
			cfg.FlashFile = v
		case "fast":
			cfg.Fast = v != "0" && v != "false"
		case "atca":
			cfg.ATCA = v != "0" && v != "false"
		case "download":
			cfg.DownloadAtPowerOn = v != "0" && v != "false"
		case "id":
			id = v
		case "maxbaud":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return cfg, "", fmt.Errorf("sim: bad maxbaud %q", v)
			}
			cfg.BridgeMaxBaud = n
		case "timing":
			t, err := ParseTimings(v)
			if err != nil {
				return cfg, "", err
			}
			cfg.Timings = &t
		case "mac":
			m, err := parseMAC(v)
			if err != nil {
				return cfg, "", err
			}
			cfg.MAC = m
		case "ck8m-drift":
			// percent, e.g. ck8m-drift=-4.5
			f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if err != nil || f <= -50 || f >= 50 {
				return cfg, "", fmt.Errorf("sim: bad ck8m-drift %q (percent, e.g. 4.5 or -3)", v)
			}
			f /= 100
			cfg.CK8MDrift = &f
		case "noise":
			n, err := ParseNoise(v)
			if err != nil {
				return cfg, "", err
			}
			cfg.Noise = n
		case "wifi":
			aps, err := ParseWiFi(v)
			if err != nil {
				return cfg, "", err
			}
			cfg.WiFi = aps
		default:
			return cfg, "", fmt.Errorf("sim: unknown option %q (flash, board, flash-file, fast, download, id, mac, timing, maxbaud, ck8m-drift, wifi, noise, atca)", k)
		}
	}
	return cfg, id, cfg.setDefaults()
}

// ParseTimings names a set of flash timings: "typ" (datasheet typical,
// the default) or "max" (datasheet maxima).
func ParseTimings(s string) (FlashTimings, error) {
	switch s {
	case "", "typ", "typical":
		return DefaultFlashTimings(), nil
	case "max":
		return MaxFlashTimings(), nil
	}
	return FlashTimings{}, fmt.Errorf("sim: unknown flash timing %q (typ, max)", s)
}

// ParseSize reads sizes such as 4M, 4MB, 512K, 4194304.
func ParseSize(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := 1
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, strings.TrimSuffix(t, "M")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (e.g. 4M, 512K)", s)
	}
	return n * mult, nil
}

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, fmt.Errorf("bad MAC %q", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return m, fmt.Errorf("bad MAC %q", s)
		}
		m[i] = byte(v)
	}
	return m, nil
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*Device{}
)

// Open connects to the virtual device a sim:// address names, creating it
// unless the address names a shared device (id=) that exists already.
// Closing the returned port also stops a device that is not shared.
// newFirmware, when not nil, makes the firmware of a device that Open
// builds (Config.Firmware).
func Open(raw string, newFirmware func() Firmware) (*HostPort, error) {
	cfg, id, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if newFirmware != nil {
		cfg.Firmware = newFirmware()
	}
	if id == "" {
		d, err := New(cfg)
		if err != nil {
			return nil, err
		}
		hp, err := d.Connect()
		if err != nil {
			d.Close()
			return nil, err
		}
		hp.name = raw
		hp.ownsDevice = true
		return hp, nil
	}
	sharedMu.Lock()
	d := shared[id]
	if d == nil {
		if d, err = New(cfg); err != nil {
			sharedMu.Unlock()
			return nil, err
		}
		shared[id] = d
	}
	sharedMu.Unlock()
	hp, err := d.Connect()
	if err != nil {
		return nil, err
	}
	hp.name = raw
	return hp, nil
}

// unshare forgets a device that was closed, so that the next Open of its
// id builds a fresh one.
func unshare(d *Device) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	for id, sd := range shared {
		if sd == d {
			delete(shared, id)
		}
	}
}

// Shared returns the device registered under id by Open, or nil.
func Shared(id string) *Device {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	return shared[id]
}
