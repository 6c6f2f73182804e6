package rfc2217

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// COM-PORT-OPTION command codes (RFC 2217), as sent by the client. The
// server answers or notifies with the same code plus ServerOffset.
const (
	CmdSignature          byte = 0
	CmdSetBaudRate        byte = 1
	CmdSetDataSize        byte = 2
	CmdSetParity          byte = 3
	CmdSetStopSize        byte = 4
	CmdSetControl         byte = 5
	CmdNotifyLineState    byte = 6
	CmdNotifyModemState   byte = 7
	CmdFlowControlSuspend byte = 8
	CmdFlowControlResume  byte = 9
	CmdSetLineStateMask   byte = 10
	CmdSetModemStateMask  byte = 11
	CmdPurgeData          byte = 12

	ServerOffset byte = 100
)

// Values of SET-DATASIZE, SET-PARITY and SET-STOPSIZE. Zero asks for the
// current setting. A data size is sent as the number of bits (5 to 8).
const (
	DataSizeRequest byte = 0

	ParityRequest byte = 0
	ParityNone    byte = 1
	ParityOdd     byte = 2
	ParityEven    byte = 3
	ParityMark    byte = 4
	ParitySpace   byte = 5

	StopSizeRequest byte = 0
	StopBits1       byte = 1
	StopBits2       byte = 2
	StopBits1_5     byte = 3
)

// Values of SET-CONTROL. The "Request" values ask for the current state.
const (
	ControlFlowRequest         byte = 0 // outbound (or both) flow control
	ControlFlowNone            byte = 1
	ControlFlowXonXoff         byte = 2
	ControlFlowHardware        byte = 3
	ControlBreakRequest        byte = 4
	ControlBreakOn             byte = 5
	ControlBreakOff            byte = 6
	ControlDTRRequest          byte = 7
	ControlDTROn               byte = 8
	ControlDTROff              byte = 9
	ControlRTSRequest          byte = 10
	ControlRTSOn               byte = 11
	ControlRTSOff              byte = 12
	ControlInboundFlowRequest  byte = 13
	ControlInboundFlowNone     byte = 14
	ControlInboundFlowXonXoff  byte = 15
	ControlInboundFlowHardware byte = 16
	ControlFlowDCD             byte = 17 // outbound/both
	ControlInboundFlowDTR      byte = 18
	ControlFlowDSR             byte = 19 // outbound/both
)

// Values of PURGE-DATA: which of the access server's buffers to empty.
const (
	PurgeRx   byte = 1 // data received from the serial line, not yet sent to the client
	PurgeTx   byte = 2 // data from the client not yet sent out on the serial line
	PurgeBoth byte = 3
)

// Bits of NOTIFY-MODEMSTATE and SET-MODEMSTATE-MASK.
const (
	ModemCD       byte = 0x80 // carrier detect
	ModemRI       byte = 0x40 // ring indicator
	ModemDSR      byte = 0x20
	ModemCTS      byte = 0x10
	ModemDeltaCD  byte = 0x08
	ModemRIEdge   byte = 0x04 // trailing edge ring detector
	ModemDeltaDSR byte = 0x02
	ModemDeltaCTS byte = 0x01
)

// Bits of NOTIFY-LINESTATE and SET-LINESTATE-MASK.
const (
	LineTimeout     byte = 0x80
	LineTxShiftDone byte = 0x40 // transfer shift register empty
	LineTxHoldDone  byte = 0x20 // transfer holding register empty
	LineBreak       byte = 0x10
	LineFraming     byte = 0x08
	LineParity      byte = 0x04
	LineOverrun     byte = 0x02
	LineDataReady   byte = 0x01
)

// Errors from ParseCommand.
var (
	ErrEmptyCommand   = errors.New("rfc2217: empty COM-PORT-OPTION subnegotiation")
	ErrUnknownCommand = errors.New("rfc2217: unknown COM-PORT-OPTION command")
	ErrCommandLength  = errors.New("rfc2217: COM-PORT-OPTION command has the wrong length")
)

// Command is one COM-PORT-OPTION command, from either side. Which field
// carries the value depends on the code: Baud for SET-BAUDRATE, Text for
// SIGNATURE, none for FLOWCONTROL-SUSPEND and -RESUME, Value for the rest.
type Command struct {
	Code  byte   // CmdXxx, plus ServerOffset when sent by the server
	Value byte   // the one-byte value of most commands
	Baud  uint32 // SET-BAUDRATE: bits per second, 0 asks for the current rate
	Text  []byte // SIGNATURE: free text, empty asks for the peer's signature
}

// FromServer reports whether the command was sent by the access server.
func (c Command) FromServer() bool { return c.Code >= ServerOffset }

// Base returns the command code without the ServerOffset.
func (c Command) Base() byte {
	if c.FromServer() {
		return c.Code - ServerOffset
	}
	return c.Code
}

// Reply returns the server's answer to c reporting value as now in force;
// for SET-BAUDRATE value is the rate.
func (c Command) Reply(value uint32) Command {
	r := Command{Code: c.Base() + ServerOffset}
	if c.Base() == CmdSetBaudRate {
		r.Baud = value
	} else {
		r.Value = byte(value)
	}
	return r
}

func (c Command) String() string {
	from := "client"
	if c.FromServer() {
		from = "server"
	}
	switch valueSize(c.Base()) {
	case 4:
		return fmt.Sprintf("%s %s %d", from, commandName(c.Base()), c.Baud)
	case 1:
		return fmt.Sprintf("%s %s %d", from, commandName(c.Base()), c.Value)
	case 0:
		return fmt.Sprintf("%s %s", from, commandName(c.Base()))
	}
	return fmt.Sprintf("%s %s %q", from, commandName(c.Base()), c.Text)
}

var commandNames = [...]string{
	CmdSignature:          "SIGNATURE",
	CmdSetBaudRate:        "SET-BAUDRATE",
	CmdSetDataSize:        "SET-DATASIZE",
	CmdSetParity:          "SET-PARITY",
	CmdSetStopSize:        "SET-STOPSIZE",
	CmdSetControl:         "SET-CONTROL",
	CmdNotifyLineState:    "NOTIFY-LINESTATE",
	CmdNotifyModemState:   "NOTIFY-MODEMSTATE",
	CmdFlowControlSuspend: "FLOWCONTROL-SUSPEND",
	CmdFlowControlResume:  "FLOWCONTROL-RESUME",
	CmdSetLineStateMask:   "SET-LINESTATE-MASK",
	CmdSetModemStateMask:  "SET-MODEMSTATE-MASK",
	CmdPurgeData:          "PURGE-DATA",
}

func commandName(base byte) string {
	if int(base) < len(commandNames) {
		return commandNames[base]
	}
	return fmt.Sprintf("command %d", base)
}

// valueSize is the length of a command's value in bytes: 4 for the baud
// rate, 0 for none, -1 for the variable-length signature and -2 for codes
// RFC 2217 does not define.
func valueSize(base byte) int {
	switch base {
	case CmdSignature:
		return -1
	case CmdSetBaudRate:
		return 4
	case CmdFlowControlSuspend, CmdFlowControlResume:
		return 0
	case CmdSetDataSize, CmdSetParity, CmdSetStopSize, CmdSetControl,
		CmdNotifyLineState, CmdNotifyModemState,
		CmdSetLineStateMask, CmdSetModemStateMask, CmdPurgeData:
		return 1
	}
	return -2
}

// ParseCommand decodes a COM-PORT-OPTION subnegotiation payload: the
// unescaped bytes between IAC SB 44 and IAC SE. Text aliases payload.
func ParseCommand(payload []byte) (Command, error) {
	if len(payload) == 0 {
		return Command{}, ErrEmptyCommand
	}
	c := Command{Code: payload[0]}
	if c.Code > CmdPurgeData && (c.Code < ServerOffset || c.Code > ServerOffset+CmdPurgeData) {
		return Command{}, fmt.Errorf("%w %d", ErrUnknownCommand, c.Code)
	}
	value := payload[1:]
	size := valueSize(c.Base())
	if size >= 0 && len(value) != size {
		return Command{}, fmt.Errorf("%w: %s with %d value bytes, want %d",
			ErrCommandLength, commandName(c.Base()), len(value), size)
	}
	switch size {
	case 4:
		c.Baud = binary.BigEndian.Uint32(value)
	case 1:
		c.Value = value[0]
	case -1:
		c.Text = value
	}
	return c, nil
}

// AppendCommand appends c as a complete, escaped IAC SB 44 ... IAC SE.
func AppendCommand(dst []byte, c Command) []byte {
	var buf [5]byte
	payload := append(buf[:0], c.Code)
	switch valueSize(c.Base()) {
	case 4:
		payload = binary.BigEndian.AppendUint32(payload, c.Baud)
	case 1:
		payload = append(payload, c.Value)
	case -1:
		payload = append(payload, c.Text...)
	}
	return AppendSubnegotiation(dst, OptComPort, payload)
}
