package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mos-tool/mos/port"
)

// Improv Wi-Fi over serial (improv-wifi.com/serial): Wi-Fi provisioning
// for firmware that speaks it instead of, or next to, Mongoose OS RPC.
// Written from the specification:
//
//	packet  "IMPROV", version 1, type, length, data (length bytes),
//	        checksum (the sum of all the bytes before it, mod 256)
//	types   1 current state, 2 error state, 3 RPC command, 4 RPC result
//	RPC     command, data length, data; a result is command, data length,
//	        then strings, each a length byte and its bytes
//
// The client sends each packet followed by a newline, as the Improv
// clients do. It finds the device's packets anywhere in what the device
// prints (log lines share the UART), checks their checksum, and hands the
// rest to ImprovOptions.Log line by line.

// ImprovState is the device's Improv state.
type ImprovState byte

const (
	ImprovAuthorizationRequired ImprovState = 0x01
	ImprovAuthorized            ImprovState = 0x02 // ready for Wi-Fi settings (serial needs no authorization)
	ImprovProvisioning          ImprovState = 0x03
	ImprovProvisioned           ImprovState = 0x04
)

func (s ImprovState) String() string {
	switch s {
	case ImprovAuthorizationRequired:
		return "authorization required"
	case ImprovAuthorized:
		return "authorized"
	case ImprovProvisioning:
		return "provisioning"
	case ImprovProvisioned:
		return "provisioned"
	}
	return fmt.Sprintf("state 0x%02x", byte(s))
}

// Improv error codes (error state packets).
const (
	ImprovErrInvalidRPC      = 0x01
	ImprovErrUnknownRPC      = 0x02
	ImprovErrUnableToConnect = 0x03
	ImprovErrUnknown         = 0xFF
)

// Packet types and RPC commands.
const (
	improvHeader     = "IMPROV"
	improvVersion    = 1
	improvTypeState  = 0x01
	improvTypeError  = 0x02
	improvTypeRPC    = 0x03
	improvTypeResult = 0x04

	improvCmdWiFi  = 0x01
	improvCmdState = 0x02
	improvCmdInfo  = 0x03
	improvCmdScan  = 0x04
)

var improvCommandNames = map[byte]string{
	improvCmdWiFi:  "send Wi-Fi settings",
	improvCmdState: "request current state",
	improvCmdInfo:  "request device info",
	improvCmdScan:  "request scanned networks",
}

// ImprovOptions tune an Improv client.
type ImprovOptions struct {
	// DetectTimeout bounds Detect (default 2 s); the request is repeated
	// every 500 ms meanwhile, in case the device is still booting.
	DetectTimeout time.Duration
	// Timeout is how long a command waits for its answer (default 10 s;
	// a scan takes a few seconds on a real board).
	Timeout time.Duration
	// ProvisionTimeout bounds ProvisionWiFi (default 30 s).
	ProvisionTimeout time.Duration
	// Log receives what the device prints that is not Improv, one line
	// at a time, while a command waits. It must not block.
	Log func(line string)
}

// Improv speaks Improv over a port. It reads the port only while a
// command runs, and runs one command at a time.
type Improv struct {
	p port.Port
	o ImprovOptions

	mu   sync.Mutex
	buf  []byte // received, not yet parsed
	line []byte // text of the current log line
	rbuf []byte
}

// NewImprov returns a client on p, which should be at the device's baud
// rate (115200 for most firmware).
func NewImprov(p port.Port, o ImprovOptions) *Improv {
	if o.DetectTimeout <= 0 {
		o.DetectTimeout = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ProvisionTimeout <= 0 {
		o.ProvisionTimeout = 30 * time.Second
	}
	return &Improv{p: p, o: o, rbuf: make([]byte, 1024)}
}

// ImprovInfo is the answer to "request device info".
type ImprovInfo struct {
	Firmware string `json:"firmware"`
	Version  string `json:"version"`
	Chip     string `json:"chip"` // chip family, e.g. "ESP32"
	Name     string `json:"name"` // device name
	// Extra holds strings after the four the specification defines
	// (some firmware adds its OS name and version).
	Extra []string `json:"extra,omitempty"`
}

// ImprovNetwork is one network of a device's scan.
type ImprovNetwork struct {
	SSID    string `json:"ssid"`
	RSSI    int    `json:"rssi"`
	Secured bool   `json:"secured"`
}

// ImprovResult is a device provisioned with Wi-Fi settings.
type ImprovResult struct {
	SSID string `json:"ssid"`
	// URL is where the device says it can be reached ("http://IP/"),
	// IP the address in it when it is one; either may be empty.
	URL     string        `json:"url,omitempty"`
	IP      string        `json:"ip,omitempty"`
	Elapsed time.Duration `json:"-"`
}

// ImprovError is an error state the device reported for a command.
type ImprovError struct {
	Command string // what was asked ("request device info")
	Code    byte
}

func (e *ImprovError) Error() string {
	what := map[byte]string{
		ImprovErrInvalidRPC:      "invalid RPC packet",
		ImprovErrUnknownRPC:      "unknown RPC command",
		ImprovErrUnableToConnect: "unable to connect",
		ImprovErrUnknown:         "unknown error",
	}[e.Code]
	if what == "" {
		what = "error"
	}
	return fmt.Sprintf("Improv %s: the device reports %s (0x%02x)", e.Command, what, e.Code)
}

func (e *ImprovError) ExitCode() int { return exitDeviceError }

func (e *ImprovError) Hint() string {
	switch e.Code {
	case ImprovErrUnknownRPC:
		return "the firmware's Improv support lacks this command"
	case ImprovErrInvalidRPC:
		return "the device could not read the request: check the baud rate, and that nothing else writes to the port"
	}
	return "`mos console` shows what the device logs"
}

// ImprovConnectError is Improv's "unable to connect" answer to Wi-Fi
// settings. Improv does not say why, so the client asks the device for
// its scan: a network it does not see is not found (ExitCode 12); one it
// sees, or no scan, most likely means a wrong password (ExitCode 11).
// errors.As finds a *WiFiError behind it, errors.Is ErrWiFiNotFound or
// ErrWiFiWrongPassword.
type ImprovConnectError struct {
	SSID    string
	Scanned bool // the device answered the scan
	InRange bool // ... and listed SSID
}

func (e *ImprovConnectError) Error() string {
	switch {
	case !e.Scanned:
		return fmt.Sprintf("the device could not join %q (Improv: unable to connect); Improv does not say why: most likely a wrong password, or the network is out of range", e.SSID)
	case e.InRange:
		return fmt.Sprintf("the device could not join %q (Improv: unable to connect) although it sees the network: most likely a wrong password", e.SSID)
	}
	return fmt.Sprintf("Wi-Fi network %q not found: the device could not join it (Improv: unable to connect) and its scan does not list it", e.SSID)
}

func (e *ImprovConnectError) class() error {
	if e.Scanned && !e.InRange {
		return ErrWiFiNotFound
	}
	return ErrWiFiWrongPassword
}

func (e *ImprovConnectError) Unwrap() error { return &WiFiError{SSID: e.SSID, Err: e.class()} }

func (e *ImprovConnectError) ExitCode() int {
	if e.class() == ErrWiFiNotFound {
		return exitWiFiNotFound
	}
	return exitWiFiAuth
}

func (e *ImprovConnectError) Hint() string {
	if e.class() == ErrWiFiNotFound {
		return "check the network name (case-sensitive), that the access point is on and near, and that it uses 2.4 GHz"
	}
	return "check the password (it is case-sensitive) and try again"
}

// improvPacket is one packet from the device.
type improvPacket struct {
	typ  byte
	data []byte
}

// result decodes an RPC result: its command and strings.
func (p improvPacket) result() (cmd byte, strs []string, ok bool) {
	if len(p.data) < 2 || int(p.data[1]) != len(p.data)-2 {
		return 0, nil, false
	}
	d := p.data[2:]
	for len(d) > 0 {
		n := int(d[0])
		if 1+n > len(d) {
			return 0, nil, false
		}
		strs = append(strs, string(d[1:1+n]))
		d = d[1+n:]
	}
	return p.data[0], strs, true
}

// encodeImprov builds a packet, with the newline clients send after it.
func encodeImprov(typ byte, data []byte) []byte {
	p := make([]byte, 0, len(improvHeader)+3+len(data)+2)
	p = append(p, improvHeader...)
	p = append(p, improvVersion, typ, byte(len(data)))
	p = append(p, data...)
	var sum byte
	for _, b := range p {
		sum += b
	}
	return append(p, sum, '\n')
}

func improvRPC(cmd byte, args []byte) []byte {
	return encodeImprov(improvTypeRPC, append([]byte{cmd, byte(len(args))}, args...))
}

// send writes an RPC command. Packets already received are dropped
// first: they answer earlier commands.
func (m *Improv) send(cmd byte, args []byte) error {
	for {
		if _, ok := m.parse(); !ok {
			break
		}
	}
	if _, err := m.p.Write(improvRPC(cmd, args)); err != nil {
		return err
	}
	return nil
}

// parse takes the next packet out of the received bytes; text before it
// goes to the log.
func (m *Improv) parse() (improvPacket, bool) {
	for {
		i := bytes.Index(m.buf, []byte(improvHeader))
		if i < 0 {
			// keep a tail that may be the start of a header
			keep := min(len(m.buf), len(improvHeader)-1)
			for keep > 0 && !bytes.HasPrefix([]byte(improvHeader), m.buf[len(m.buf)-keep:]) {
				keep--
			}
			m.text(m.buf[:len(m.buf)-keep])
			m.buf = append(m.buf[:0], m.buf[len(m.buf)-keep:]...)
			return improvPacket{}, false
		}
		m.text(m.buf[:i])
		m.buf = m.buf[i:]
		if len(m.buf) < 9 {
			return improvPacket{}, false
		}
		n := int(m.buf[8])
		if m.buf[6] != improvVersion {
			m.text(m.buf[:1]) // not a packet: read on after its 'I'
			m.buf = m.buf[1:]
			continue
		}
		if len(m.buf) < 9+n+1 {
			return improvPacket{}, false
		}
		var sum byte
		for _, b := range m.buf[:9+n] {
			sum += b
		}
		if sum != m.buf[9+n] {
			m.text(m.buf[:1]) // damaged, or text that looked like one
			m.buf = m.buf[1:]
			continue
		}
		p := improvPacket{typ: m.buf[7], data: bytes.Clone(m.buf[9 : 9+n])}
		m.buf = m.buf[9+n+1:]
		// the newline after a packet is not a log line
		if len(m.buf) > 0 && m.buf[0] == '\n' && len(m.line) == 0 {
			m.buf = m.buf[1:]
		}
		return p, true
	}
}

// text passes console output to the log, line by line.
func (m *Improv) text(b []byte) {
	for _, c := range b {
		switch c {
		case 0x11, 0x13: // XON/XOFF of firmware with flow control
		case '\n':
			line := strings.TrimRight(string(m.line), "\r")
			m.line = m.line[:0]
			if line != "" && m.o.Log != nil {
				m.o.Log(line)
			}
		default:
			m.line = append(m.line, c)
		}
	}
}

// errWait is a command's deadline passing with no answer.
var errWait = errors.New("no answer in time")

// next returns the next packet, reading the port until deadline.
func (m *Improv) next(ctx context.Context, deadline time.Time) (improvPacket, error) {
	for {
		if p, ok := m.parse(); ok {
			return p, nil
		}
		if err := ctx.Err(); err != nil {
			return improvPacket{}, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return improvPacket{}, errWait
		}
		if err := m.p.SetReadTimeout(min(left, 50*time.Millisecond)); err != nil {
			return improvPacket{}, err
		}
		n, err := m.p.Read(m.rbuf)
		m.buf = append(m.buf, m.rbuf[:n]...)
		if err != nil && !errors.Is(err, port.ErrTimeout) {
			return improvPacket{}, err
		}
	}
}

// waitResult waits for the RPC result of cmd; an error state fails it.
// State packets meanwhile go to onState.
func (m *Improv) waitResult(ctx context.Context, cmd byte, deadline time.Time, onState func(ImprovState)) ([]string, error) {
	for {
		p, err := m.next(ctx, deadline)
		if err != nil {
			return nil, err
		}
		switch p.typ {
		case improvTypeState:
			if len(p.data) > 0 && onState != nil {
				onState(ImprovState(p.data[0]))
			}
		case improvTypeError:
			if len(p.data) > 0 && p.data[0] != 0 {
				return nil, &ImprovError{Command: improvCommandNames[cmd], Code: p.data[0]}
			}
		case improvTypeResult:
			if c, strs, ok := p.result(); ok && c == cmd {
				return strs, nil
			}
		}
	}
}

func (m *Improv) noReply(cmd byte, wait time.Duration) error {
	return &NoReplyError{Method: "Improv " + improvCommandNames[cmd], Wait: wait, Attempts: 1}
}

// timeoutOr turns errWait into a NoReplyError.
func (m *Improv) timeoutOr(err error, cmd byte, wait time.Duration) error {
	if err == errWait {
		return m.noReply(cmd, wait)
	}
	return err
}

// Detect reports whether the firmware speaks Improv: it asks for the
// current state, again every 500 ms, until DetectTimeout. An answer of
// any Improv packet counts. The error is for a failing port only.
func (m *Improv) Detect(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := time.Now().Add(m.o.DetectTimeout)
	for {
		if err := m.send(improvCmdState, nil); err != nil {
			return false, err
		}
		resend := time.Now().Add(500 * time.Millisecond)
		if resend.After(end) {
			resend = end
		}
		for {
			p, err := m.next(ctx, resend)
			if err == errWait {
				break
			}
			if err != nil {
				return false, err
			}
			if p.typ == improvTypeState && len(p.data) > 0 && ImprovState(p.data[0]) == ImprovProvisioned {
				// its URL follows; take it off the line
				m.waitResult(ctx, improvCmdState, time.Now().Add(m.o.Timeout), nil)
			}
			return true, nil
		}
		if !time.Now().Before(end) {
			return false, nil
		}
	}
}

// CurrentState asks for the device's state; a provisioned device also
// says its URL.
func (m *Improv) CurrentState(ctx context.Context) (ImprovState, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.send(improvCmdState, nil); err != nil {
		return 0, "", err
	}
	deadline := time.Now().Add(m.o.Timeout)
	for {
		p, err := m.next(ctx, deadline)
		if err != nil {
			return 0, "", m.timeoutOr(err, improvCmdState, m.o.Timeout)
		}
		switch {
		case p.typ == improvTypeError && len(p.data) > 0 && p.data[0] != 0:
			return 0, "", &ImprovError{Command: improvCommandNames[improvCmdState], Code: p.data[0]}
		case p.typ != improvTypeState || len(p.data) == 0:
			continue
		}
		st := ImprovState(p.data[0])
		if st != ImprovProvisioned {
			return st, "", nil
		}
		strs, err := m.waitResult(ctx, improvCmdState, time.Now().Add(m.o.Timeout), nil)
		if err != nil {
			return st, "", m.timeoutOr(err, improvCmdState, m.o.Timeout)
		}
		if len(strs) == 0 {
			return st, "", nil
		}
		return st, strs[0], nil
	}
}

// DeviceInfo asks for the firmware's name and version, the chip family
// and the device's name.
func (m *Improv) DeviceInfo(ctx context.Context) (*ImprovInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.send(improvCmdInfo, nil); err != nil {
		return nil, err
	}
	strs, err := m.waitResult(ctx, improvCmdInfo, time.Now().Add(m.o.Timeout), nil)
	if err != nil {
		return nil, m.timeoutOr(err, improvCmdInfo, m.o.Timeout)
	}
	for len(strs) < 4 {
		strs = append(strs, "")
	}
	return &ImprovInfo{Firmware: strs[0], Version: strs[1], Chip: strs[2], Name: strs[3], Extra: strs[4:]}, nil
}

// Scan asks for the networks the device sees.
func (m *Improv) Scan(ctx context.Context) ([]ImprovNetwork, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scan(ctx)
}

func (m *Improv) scan(ctx context.Context) ([]ImprovNetwork, error) {
	if err := m.send(improvCmdScan, nil); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(m.o.Timeout)
	nets := []ImprovNetwork{}
	for {
		strs, err := m.waitResult(ctx, improvCmdScan, deadline, nil)
		if err != nil {
			return nil, m.timeoutOr(err, improvCmdScan, m.o.Timeout)
		}
		if len(strs) == 0 {
			return nets, nil // the end of the list
		}
		n := ImprovNetwork{SSID: strs[0]}
		if len(strs) > 1 {
			n.RSSI, _ = strconv.Atoi(strs[1])
		}
		n.Secured = len(strs) < 3 || strs[2] != "NO"
		nets = append(nets, n)
	}
}

// ProvisionWiFi gives the device Wi-Fi settings and waits until it has
// joined the network (ProvisionTimeout at most). On "unable to connect"
// the error is an *ImprovConnectError; no answer in time is a *WiFiError
// with ErrWiFiTimeout.
func (m *Improv) ProvisionWiFi(ctx context.Context, ssid, pass string) (*ImprovResult, error) {
	return m.provision(ctx, ssid, pass, m.o.ProvisionTimeout, nil)
}

// JoinWiFi is ProvisionWiFi behind the WiFiJoiner interface.
func (m *Improv) JoinWiFi(ctx context.Context, ssid, pass string, o WiFiOptions) (*WiFiResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = m.o.ProvisionTimeout
	}
	r, err := m.provision(ctx, ssid, pass, o.Timeout, o.Status)
	if err != nil {
		return nil, err
	}
	return &WiFiResult{SSID: r.SSID, IP: r.IP, Elapsed: r.Elapsed}, nil
}

var _ WiFiJoiner = (*Improv)(nil)

func (m *Improv) provision(ctx context.Context, ssid, pass string, timeout time.Duration, status func(string)) (*ImprovResult, error) {
	if len(ssid) == 0 || len(ssid) > 32 {
		return nil, &ArgError{fmt.Errorf("Wi-Fi network name %q: must be 1 to 32 bytes", ssid)}
	}
	if len(pass) > 64 {
		return nil, &ArgError{errors.New("Wi-Fi password: at most 64 characters")}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	args := append([]byte{byte(len(ssid))}, ssid...)
	args = append(args, byte(len(pass)))
	args = append(args, pass...)
	if status != nil {
		status(fmt.Sprintf("sending the Wi-Fi settings for %q over Improv", ssid))
	}
	if err := m.send(improvCmdWiFi, args); err != nil {
		return nil, err
	}
	var last ImprovState
	onState := func(s ImprovState) {
		last = s
		if s == ImprovProvisioning && status != nil {
			status(fmt.Sprintf("waiting for the device to join %q", ssid))
		}
	}
	strs, err := m.waitResult(ctx, improvCmdWiFi, start.Add(timeout), onState)
	var ie *ImprovError
	switch {
	case err == errWait:
		we := &WiFiError{SSID: ssid, Waited: time.Since(start), Err: ErrWiFiTimeout}
		if last != 0 {
			we.Status = "improv: " + last.String()
		}
		return nil, we
	case errors.As(err, &ie) && ie.Code == ImprovErrUnableToConnect:
		ce := &ImprovConnectError{SSID: ssid}
		if nets, err := m.scan(ctx); err == nil {
			ce.Scanned = true
			for _, n := range nets {
				ce.InRange = ce.InRange || n.SSID == ssid
			}
		}
		return nil, ce
	case err != nil:
		return nil, err
	}
	r := &ImprovResult{SSID: ssid, Elapsed: time.Since(start)}
	if len(strs) > 0 {
		r.URL = strs[0]
		if u, err := url.Parse(r.URL); err == nil && net.ParseIP(u.Hostname()) != nil {
			r.IP = u.Hostname()
		}
	}
	return r, nil
}
