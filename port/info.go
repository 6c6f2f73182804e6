package port

// Info describes a local serial port as `mos ports` lists it.
type Info struct {
	Name         string `json:"name"`          // device path, e.g. /dev/ttyUSB0
	USB          bool   `json:"usb"`           // a USB device (VID/PID known)
	VID          string `json:"vid,omitempty"` // 4 lowercase hex digits
	PID          string `json:"pid,omitempty"` // 4 lowercase hex digits
	SerialNumber string `json:"serial_number,omitempty"`
	Product      string `json:"product,omitempty"`
	Bridge       string `json:"bridge,omitempty"` // recognised bridge: "CP210x", "CH340", "CH9102", "FTDI", "Espressif USB-Serial/JTAG", ...
}
