package provision

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Exit codes, as the CLI's table (package output) numbers them. They are
// repeated here so the library does not depend on the CLI.
const (
	exitUsage        = 2
	exitPermission   = 5
	exitNoAnswer     = 6
	exitDeviceError  = 7
	exitTimeout      = 10
	exitWiFiAuth     = 11
	exitWiFiNotFound = 12
)

// NoAnswerError means the device never answered the RPC handshake: the
// port is not a board running RPC-capable firmware (a blank chip, another
// firmware, the ROM loader, the wrong port).
type NoAnswerError struct {
	Port   string
	Waited time.Duration
	// Output is the last console text seen while waiting, to tell a
	// silent port from a device that prints but does not serve RPC.
	Output []string
}

func (e *NoAnswerError) Error() string {
	msg := fmt.Sprintf("no RPC answer from %s within %v", e.Port, e.Waited.Round(100*time.Millisecond))
	if len(e.Output) > 0 {
		msg += "; the device prints but does not answer (last output: " + strings.Join(e.Output, " | ") + ")"
	}
	return msg
}

func (e *NoAnswerError) ExitCode() int { return exitNoAnswer }

func (e *NoAnswerError) Hint() string {
	if len(e.Output) > 0 {
		return "the firmware on the board does not serve RPC on this UART: flash firmware with rpc-uart enabled (e.g. `mos flash firmware-images/esp32-demo.zip`)"
	}
	return fmt.Sprintf("Is %s the right port? Is rpc-uart enabled in the firmware? (`mos ports` lists the ports)", e.Port)
}

// NoReplyError means a request got no usable reply in time, after all the
// attempts its method allows.
type NoReplyError struct {
	Method   string
	Wait     time.Duration // per attempt
	Attempts int
	Corrupt  int // replies dropped because their CRC did not match
}

func (e *NoReplyError) Error() string {
	msg := fmt.Sprintf("%s: no reply within %v", e.Method, e.Wait)
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	if e.Corrupt > 0 {
		msg += fmt.Sprintf("; %d corrupted replies dropped", e.Corrupt)
	}
	return msg
}

func (e *NoReplyError) ExitCode() int { return exitTimeout }

func (e *NoReplyError) Hint() string {
	if e.Corrupt > 0 {
		return "the serial line corrupts data: try a shorter cable or another USB port"
	}
	return "the device may be busy or stuck: `mos console` shows what it prints; try a longer --timeout"
}

// DeviceResetError means the device rebooted while a request that must
// not be repeated was in flight, or did not come back after rebooting.
type DeviceResetError struct {
	Method string
	Err    error // why it did not come back, if it did not
}

func (e *DeviceResetError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: the device rebooted and did not come back: %v", e.Method, e.Err)
	}
	return fmt.Sprintf("%s: the device rebooted before replying; the request may or may not have been carried out", e.Method)
}

func (e *DeviceResetError) Unwrap() error { return e.Err }
func (e *DeviceResetError) ExitCode() int { return exitNoAnswer }
func (e *DeviceResetError) Hint() string {
	return "`mos console` shows why the device restarts (a crash, the watchdog, the reset button)"
}

// Error codes the firmware uses in RPC errors.
const (
	CodeBadRequest   = 400
	CodeAuthRequired = 401
	CodeForbidden    = 403
	CodeNotFound     = 404
	CodeShuttingDown = 418
	CodeInternal     = 500
	CodeNotCompiled  = 501
)

// RPCError is an error reply from the device.
type RPCError struct {
	Method  string
	Code    int
	Message string
}

func (e *RPCError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "error"
	}
	return fmt.Sprintf("%s: %s (code %d)", e.Method, msg, e.Code)
}

// ExitCode: refused authentication is a permission problem; anything else
// the device said no to is a device error.
func (e *RPCError) ExitCode() int {
	if e.Code == CodeAuthRequired || e.Code == CodeForbidden {
		return exitPermission
	}
	return exitDeviceError
}

func (e *RPCError) Hint() string {
	switch {
	case e.Code == CodeAuthRequired:
		return "the device requires RPC authentication: pass --rpc-creds USER:PASS (a wrong password gives this too)"
	case e.Code == CodeForbidden:
		return "the device's rpc.acl does not allow this method for this user"
	case e.Code == CodeNotFound && strings.HasPrefix(e.Message, "No handler"):
		return "the firmware lacks this method (its library is not built in); `mos call RPC.List` lists what it has"
	case e.Code == CodeShuttingDown:
		return "the device is rebooting: wait a moment and try again"
	case e.Code == CodeNotCompiled:
		return "the firmware was built without this feature"
	}
	return ""
}

// KeyError is a configuration key the device does not have. Nothing was
// sent to the device.
type KeyError struct {
	Key         string
	Section     bool     // the key names a section, not a value
	Suggestions []string // close existing keys, best first
}

func (e *KeyError) Error() string {
	if e.Section {
		msg := e.Key + " is a section, not a value"
		if len(e.Suggestions) > 0 {
			msg += "; set its keys, such as " + strings.Join(e.Suggestions, ", ")
		}
		return msg
	}
	msg := e.Key + ": no such key"
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestions, " or ") + "?"
	}
	return msg
}

func (e *KeyError) ExitCode() int { return exitUsage }
func (e *KeyError) Hint() string  { return "`mos config get` shows every key and its value" }

// TypeError is a configuration value that does not fit its key's type.
// Nothing was sent to the device.
type TypeError struct {
	Key   string
	Type  string // "boolean", "integer", "number", "string"
	Value any
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("%s: %s is not %s", e.Key, describeValue(e.Value), article(e.Type))
}

func (e *TypeError) ExitCode() int { return exitUsage }

func (e *TypeError) Hint() string {
	switch e.Type {
	case "boolean":
		return "booleans are written true or false"
	case "integer":
		return "integers are written in decimal (or 0x hex), without a fraction"
	}
	return ""
}

func describeValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v (%T)", v, v)
}

func article(t string) string {
	if t == "integer" {
		return "an integer"
	}
	return "a " + t
}

// NoSpaceError is a file that does not fit the device's file system.
type NoSpaceError struct {
	File       string
	Need, Free int64
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("%s: not enough space on the device: %d bytes needed, %d free", e.File, e.Need, e.Free)
}

func (e *NoSpaceError) ExitCode() int { return exitDeviceError }
func (e *NoSpaceError) Hint() string {
	return "remove files with `mos rm` (`mos ls -l` shows their sizes)"
}

// ArgError is a bad argument to a helper, found before anything was sent.
type ArgError struct{ Err error }

func (e *ArgError) Error() string { return e.Err.Error() }
func (e *ArgError) Unwrap() error { return e.Err }
func (e *ArgError) ExitCode() int { return exitUsage }

// Wi-Fi failure classes; WiFiError wraps one, so errors.Is finds it.
var (
	ErrWiFiWrongPassword = errors.New("wrong Wi-Fi password")
	ErrWiFiNotFound      = errors.New("Wi-Fi network not found")
	ErrWiFiTimeout       = errors.New("no Wi-Fi connection in time")
)

// WiFiError is a failed attempt to join a network.
type WiFiError struct {
	SSID   string
	Reason int    // the Wi-Fi driver's disconnect reason, 0 if none was seen
	Status string // the last status the device reported, if any
	Waited time.Duration
	Err    error // one of the ErrWiFi* values
}

func (e *WiFiError) Error() string {
	switch e.Err {
	case ErrWiFiTimeout:
		msg := fmt.Sprintf("no Wi-Fi connection to %q within %v", e.SSID, e.Waited.Round(time.Second))
		if e.Status != "" {
			msg += " (status: " + e.Status + ")"
		}
		if e.Reason != 0 {
			msg += fmt.Sprintf(" (last disconnect reason: %d)", e.Reason)
		}
		return msg
	}
	if e.Err == ErrWiFiNotFound {
		return fmt.Sprintf("Wi-Fi network %q not found (reason: %d)", e.SSID, e.Reason)
	}
	return fmt.Sprintf("%s for %q (reason: %d)", e.Err, e.SSID, e.Reason)
}

func (e *WiFiError) Unwrap() error { return e.Err }

func (e *WiFiError) ExitCode() int {
	switch e.Err {
	case ErrWiFiWrongPassword:
		return exitWiFiAuth
	case ErrWiFiNotFound:
		return exitWiFiNotFound
	}
	return exitTimeout
}

func (e *WiFiError) Hint() string {
	switch e.Err {
	case ErrWiFiWrongPassword:
		return "check the password (it is case-sensitive) and run `mos wifi` again"
	case ErrWiFiNotFound:
		return "check the network name (case-sensitive), that the access point is on, and that it uses 2.4 GHz"
	}
	return "`mos console` shows the device's Wi-Fi log; try a longer --timeout"
}
