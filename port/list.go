package port

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// bridge is a USB device known to carry a board's serial console.
type bridge struct {
	vid, pid uint16
	name     string
	// hwFlow: the bridge always uses RTS/CTS flow control, so the
	// board's auto-reset wiring behaves differently.
	hwFlow bool
}

// bridges is the VID:PID table behind Info.Bridge. Only IDs whose meaning is
// well established are listed; anything else is shown without a bridge name.
var bridges = []bridge{
	// Silicon Labs
	{0x10c4, 0xea60, "CP210x", false}, // CP2102, CP2102N, CP2104, CP2109: factory default
	{0x10c4, 0xea63, "CP210x", false}, // CP2101-4, CP2102N with the Windows Update PID
	{0x10c4, 0xea64, "CP2102C", true}, // CTS tied to the chip's RTS
	{0x10c4, 0xea70, "CP2105", false}, // dual UART
	{0x10c4, 0xea71, "CP2108", false}, // quad UART
	// WCH
	{0x1a86, 0x7523, "CH340", false},
	{0x1a86, 0x7522, "CH340", false}, // CH340K
	{0x1a86, 0x5523, "CH341", false}, // CH341 in serial mode
	{0x1a86, 0x55d3, "CH343", false},
	{0x1a86, 0x55d4, "CH9102", false},
	// FTDI
	{0x0403, 0x6001, "FTDI FT232R", false},
	{0x0403, 0x6010, "FTDI FT2232", false},
	{0x0403, 0x6011, "FTDI FT4232H", false},
	{0x0403, 0x6014, "FTDI FT232H", false},
	{0x0403, 0x6015, "FTDI FT-X", false},
	// Espressif on-chip USB
	{0x303a, 0x1001, "Espressif USB-Serial/JTAG", false},
	{0x303a, 0x0002, "Espressif USB-OTG (ESP32-S2 ROM)", false},
	{0x303a, 0x0009, "Espressif USB-OTG (ESP32-S3 ROM)", false},
	// Prolific
	{0x067b, 0x2303, "PL2303", false},
}

func findBridge(vid, pid uint16) (bridge, bool) {
	i := slices.IndexFunc(bridges, func(b bridge) bool { return b.vid == vid && b.pid == pid })
	if i < 0 {
		return bridge{}, false
	}
	return bridges[i], true
}

// BridgeName names the USB-serial bridge with the given IDs, or returns ""
// when it is not a known one.
func BridgeName(vid, pid uint16) string {
	b, _ := findBridge(vid, pid)
	return b.name
}

// BridgeHasHWFlowControl reports whether the bridge always runs RTS/CTS flow
// control (the CP2102C), which interferes with DTR/RTS reset sequences.
func BridgeHasHWFlowControl(vid, pid uint16) bool {
	b, _ := findBridge(vid, pid)
	return b.hwFlow
}

// portDetails is what the platform enumerator reports about one port.
type portDetails struct {
	Name         string
	IsUSB        bool
	VID, PID     string // hex, any case, as the platform reports them
	SerialNumber string
	Product      string
}

// enumeratePorts lists the ports; a variable so tests can fake it.
var enumeratePorts = platformPorts

// List returns the local serial ports, sorted by name; an empty (non-nil)
// slice when there are none.
func List() ([]Info, error) {
	ports, err := enumeratePorts()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	infos := make([]Info, 0, len(ports))
	for _, d := range ports {
		if d.Name == "" {
			continue // the enumerator could not tell which device it is
		}
		info := Info{Name: d.Name, USB: d.IsUSB, SerialNumber: d.SerialNumber, Product: d.Product}
		vid, vok := parseUSBID(d.VID)
		pid, pok := parseUSBID(d.PID)
		if d.IsUSB && vok && pok {
			info.VID = fmt.Sprintf("%04x", vid)
			info.PID = fmt.Sprintf("%04x", pid)
			info.Bridge = BridgeName(vid, pid)
		}
		infos = append(infos, info)
	}
	slices.SortStableFunc(infos, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// parseUSBID parses a 16-bit USB ID given in hex ("10C4", "0x10c4").
func parseUSBID(s string) (uint16, bool) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 16)
	return uint16(v), err == nil
}
