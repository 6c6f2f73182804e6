// Package rfc2217 speaks telnet (RFC 854, options per RFC 855-858) with the
// COM-PORT-OPTION of RFC 2217, which carries a serial port's settings and
// modem control lines alongside its data over one TCP connection.
//
// The pieces are usable from either end of the connection:
//
//   - Parser splits a received byte stream into data and telnet events,
//     decoding COM-PORT-OPTION subnegotiations into Command values.
//   - AppendEscaped, AppendNegotiation and AppendCommand encode data and
//     commands for sending.
//   - Negotiator keeps the WILL/WONT/DO/DONT state of each option and
//     answers the peer's requests.
//   - ServerConn is the access-server end: it wraps a net.Conn, hands port
//     changes to a Handler and answers each one.
//
// Data is kept 8-bit clean: both ends negotiate BINARY in both directions,
// so CR NUL and CR LF are data like any other bytes and are never rewritten.
package rfc2217

import "errors"

// Telnet commands (RFC 854). Each follows an IAC byte on the wire.
const (
	SE   byte = 240 // end of subnegotiation
	NOP  byte = 241
	DM   byte = 242 // data mark
	BRK  byte = 243
	IP   byte = 244 // interrupt process
	AO   byte = 245 // abort output
	AYT  byte = 246 // are you there
	EC   byte = 247 // erase character
	EL   byte = 248 // erase line
	GA   byte = 249 // go ahead
	SB   byte = 250 // start of subnegotiation
	WILL byte = 251
	WONT byte = 252
	DO   byte = 253
	DONT byte = 254
	IAC  byte = 255 // interpret as command; IAC IAC is a data byte 255
)

// Telnet options used here.
const (
	OptBinary  byte = 0  // RFC 856: 8-bit data, no CR NUL / CR LF rewriting
	OptEcho    byte = 1  // RFC 857
	OptSGA     byte = 3  // RFC 858: suppress go-ahead
	OptComPort byte = 44 // RFC 2217: COM-PORT-OPTION
)

// MaxSubnegotiation bounds the bytes kept between IAC SB and IAC SE (after
// unescaping, option byte excluded). RFC 2217 commands need at most five;
// the bound only stops a broken or hostile peer from growing memory.
const MaxSubnegotiation = 256

// Protocol errors reported in EventError. The parser carries on after each.
var (
	// ErrStrayIAC: IAC followed by a byte that is no telnet command. The IAC
	// is dropped; the byte after it is kept as data.
	ErrStrayIAC = errors.New("telnet: IAC followed by a non-command byte")
	// ErrStraySE: IAC SE outside a subnegotiation.
	ErrStraySE = errors.New("telnet: IAC SE outside a subnegotiation")
	// ErrUnterminatedSB: a subnegotiation ended by IAC and a command other
	// than SE. The subnegotiation is dropped and the command processed.
	ErrUnterminatedSB = errors.New("telnet: subnegotiation not ended by IAC SE")
	// ErrSubnegotiationTooLong: more than MaxSubnegotiation bytes; the rest up
	// to IAC SE is discarded.
	ErrSubnegotiationTooLong = errors.New("telnet: subnegotiation too long")
	// ErrTruncated is returned by Parser.End when the stream stopped inside a
	// telnet sequence.
	ErrTruncated = errors.New("telnet: stream ended inside a telnet sequence")
)

// EventKind says what an Event holds.
type EventKind uint8

const (
	EventNone           EventKind = iota // input used up without completing an event
	EventData                            // Data
	EventNegotiation                     // Command (WILL, WONT, DO or DONT) and Option
	EventCommand                         // Command: a lone telnet command such as NOP or BRK
	EventSubnegotiation                  // Option and Payload, for options other than COM-PORT
	EventComPort                         // ComPort, decoded from Payload
	EventError                           // Err: a protocol error, already recovered from
)

// Event is one item of a telnet stream. Data, Payload and ComPort.Text may
// point into the parser's input or its own buffer: they are only valid until
// the next call to Parser.Next.
type Event struct {
	Kind    EventKind
	Data    []byte  // EventData: data bytes, IAC IAC already unescaped
	Command byte    // EventNegotiation, EventCommand
	Option  byte    // EventNegotiation, EventSubnegotiation, EventComPort
	Payload []byte  // EventSubnegotiation, EventComPort: unescaped bytes after the option
	ComPort Command // EventComPort
	Err     error   // EventError
}

type parseState uint8

const (
	stateData       parseState = iota
	stateIAC                   // after IAC
	stateOption                // after IAC WILL/WONT/DO/DONT, waiting for the option
	stateSBOption              // after IAC SB, waiting for the option
	stateSB                    // inside a subnegotiation
	stateSBIAC                 // IAC inside a subnegotiation
	stateDiscard               // inside an over-long subnegotiation
	stateDiscardIAC            // IAC inside an over-long subnegotiation
)

// iacData is the data byte IAC IAC stands for.
var iacData = []byte{IAC}

// Parser splits a telnet byte stream into events. It holds at most
// MaxSubnegotiation bytes of state, so it can be fed input in pieces of any
// size, split anywhere. The zero value is ready to use.
type Parser struct {
	state  parseState
	verb   byte   // the WILL/WONT/DO/DONT waiting for its option
	option byte   // the option of the subnegotiation being read
	sb     []byte // the subnegotiation payload so far
}

// Next parses the front of in and returns the first event found and the
// number of bytes of in it consumed. When in runs out before an event is
// complete it returns EventNone and len(in); the partial sequence is kept
// for the next call. Next always makes progress: an event is returned, or at
// least one byte is consumed.
//
// A typical loop:
//
//	for len(in) > 0 {
//		ev, n := p.Next(in)
//		in = in[n:]
//		// handle ev
//	}
func (p *Parser) Next(in []byte) (Event, int) {
	for i := 0; i < len(in); i++ {
		b := in[i]
		switch p.state {
		case stateData:
			end := i
			for end < len(in) && in[end] != IAC {
				end++
			}
			if end > i {
				// A run of plain data: hand it out without copying.
				return Event{Kind: EventData, Data: in[i:end]}, end
			}
			p.state = stateIAC

		case stateIAC:
			p.state = stateData
			switch {
			case b == IAC:
				return Event{Kind: EventData, Data: iacData}, i + 1
			case b == WILL || b == WONT || b == DO || b == DONT:
				p.verb = b
				p.state = stateOption
			case b == SB:
				p.state = stateSBOption
			case b == SE:
				return Event{Kind: EventError, Err: ErrStraySE}, i + 1
			case b > SE:
				return Event{Kind: EventCommand, Command: b}, i + 1
			default:
				// Leave b unconsumed: it is read again as data.
				return Event{Kind: EventError, Err: ErrStrayIAC}, i
			}

		case stateOption:
			p.state = stateData
			return Event{Kind: EventNegotiation, Command: p.verb, Option: b}, i + 1

		case stateSBOption:
			if b == IAC {
				// IAC SB IAC: no option at all. Read the IAC as the start of
				// the next command.
				p.state = stateIAC
				return Event{Kind: EventError, Err: ErrUnterminatedSB}, i + 1
			}
			p.option = b
			if p.sb == nil {
				p.sb = make([]byte, 0, MaxSubnegotiation)
			}
			p.sb = p.sb[:0]
			p.state = stateSB

		case stateSB:
			if b == IAC {
				p.state = stateSBIAC
			} else if ev, ok := p.appendSB(b); !ok {
				return ev, i + 1
			}

		case stateSBIAC:
			switch b {
			case IAC:
				p.state = stateSB
				if ev, ok := p.appendSB(IAC); !ok {
					return ev, i + 1
				}
			case SE:
				p.state = stateData
				return p.subnegotiation(), i + 1
			default:
				// The peer forgot IAC SE. Drop the subnegotiation and read
				// b as the command after IAC.
				p.state = stateIAC
				return Event{Kind: EventError, Option: p.option, Err: ErrUnterminatedSB}, i
			}

		case stateDiscard:
			if b == IAC {
				p.state = stateDiscardIAC
			}

		case stateDiscardIAC:
			switch b {
			case IAC:
				p.state = stateDiscard
			case SE:
				p.state = stateData
			default:
				// As in stateSBIAC: a command ends the subnegotiation. The
				// error was reported when the discarding began.
				p.state = stateIAC
				i-- // read b again in stateIAC
			}
		}
	}
	return Event{}, len(in)
}

// appendSB adds b to the subnegotiation payload. When the payload is full it
// switches to discarding and returns the error event with ok false.
func (p *Parser) appendSB(b byte) (ev Event, ok bool) {
	if len(p.sb) >= MaxSubnegotiation {
		p.state = stateDiscard
		return Event{Kind: EventError, Option: p.option, Err: ErrSubnegotiationTooLong}, false
	}
	p.sb = append(p.sb, b)
	return Event{}, true
}

// subnegotiation builds the event for a complete IAC SB ... IAC SE.
func (p *Parser) subnegotiation() Event {
	if p.option != OptComPort {
		return Event{Kind: EventSubnegotiation, Option: p.option, Payload: p.sb}
	}
	cmd, err := ParseCommand(p.sb)
	if err != nil {
		return Event{Kind: EventError, Option: p.option, Payload: p.sb, Err: err}
	}
	return Event{Kind: EventComPort, Option: p.option, Payload: p.sb, ComPort: cmd}
}

// End reports ErrTruncated if the input so far stopped inside a telnet
// sequence, and resets the parser for a new stream.
func (p *Parser) End() error {
	incomplete := p.state != stateData
	p.state = stateData
	if incomplete {
		return ErrTruncated
	}
	return nil
}

// AppendEscaped appends data to dst with every 255 byte doubled, as telnet
// requires for data bytes.
func AppendEscaped(dst, data []byte) []byte {
	for len(data) > 0 {
		i := 0
		for i < len(data) && data[i] != IAC {
			i++
		}
		dst = append(dst, data[:i]...)
		if i == len(data) {
			break
		}
		dst = append(dst, IAC, IAC)
		data = data[i+1:]
	}
	return dst
}

// AppendNegotiation appends IAC verb option; verb is WILL, WONT, DO or DONT.
func AppendNegotiation(dst []byte, verb, option byte) []byte {
	return append(dst, IAC, verb, option)
}

// AppendSubnegotiation appends IAC SB option payload IAC SE, escaping the
// payload.
func AppendSubnegotiation(dst []byte, option byte, payload []byte) []byte {
	dst = append(dst, IAC, SB, option)
	dst = AppendEscaped(dst, payload)
	return append(dst, IAC, SE)
}
