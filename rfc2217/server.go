package rfc2217

import (
	"math"
	"net"
	"sync"
)

// Handler applies a client's port changes to the serial port behind a
// ServerConn. It is called from ServerConn.Read, in the order the commands
// arrive, after the data sent before each command has been returned by Read.
// A method returns an error when it could not make the change; the client is
// then told the setting still in force.
type Handler interface {
	SetBaud(baud int) error
	SetDTR(on bool) error
	SetRTS(on bool) error
	// Purge empties the port's receive buffer (rx: bytes from the device
	// not yet sent to the client) and/or transmit buffer (tx).
	Purge(rx, tx bool) error
}

// Signature is what a ServerConn answers to a client's SIGNATURE request.
const Signature = "mos rfc2217"

// writeChunk bounds how much data Write escapes into its buffer at a time.
const writeChunk = 4096

// ServerConn is the access-server end of an RFC 2217 connection. It offers
// BINARY, SGA and COM-PORT-OPTION, answers the client's negotiation, turns
// COM-PORT-OPTION commands into Handler calls and answers each SET command
// with the value now in force. The serial line is 8N1 without flow control:
// requests for anything else are answered with that.
//
// Read and Write may run concurrently (one goroutine each); Read must be
// called for commands to be processed.
type ServerConn struct {
	conn    net.Conn
	handler Handler

	// Used by Read only.
	parser  Parser
	neg     *Negotiator
	readBuf []byte
	in      []byte // received, not yet parsed (points into readBuf)
	pending []byte // parsed data that did not fit in the caller's buffer
	held    Event  // an event that followed data returned by the last Read
	hasHeld bool
	readErr error

	writeMu  sync.Mutex // keeps data and replies from interleaving
	writeBuf []byte

	mu        sync.Mutex
	resumed   *sync.Cond // signalled on FLOWCONTROL-RESUME and Close
	baud      int
	dtr, rts  bool
	lineMask  byte
	modemMask byte
	suspended bool // the client sent FLOWCONTROL-SUSPEND
	closed    bool
}

// NewServerConn starts the telnet negotiation on conn and returns the
// ServerConn. baud is the rate the serial port runs at now; it answers the
// client's queries until the client sets another. DTR and RTS start off.
func NewServerConn(conn net.Conn, h Handler, baud int) (*ServerConn, error) {
	c := &ServerConn{
		conn:      conn,
		handler:   h,
		neg:       NewServerNegotiator(),
		readBuf:   make([]byte, 4096),
		baud:      baud,
		modemMask: 0xff, // RFC 2217's default
	}
	c.resumed = sync.NewCond(&c.mu)
	if err := c.writeRaw(c.neg.Start()); err != nil {
		return nil, err
	}
	return c, nil
}

// Read reads data from the client, unescaped. Telnet negotiation and
// COM-PORT-OPTION commands are handled on the way; a command is handled only
// once the data before it has been returned, so a caller that writes each
// Read to the serial port sees data and control changes in their order.
func (c *ServerConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.hasHeld {
		c.hasHeld = false
		if err := c.handle(c.held); err != nil {
			return 0, err
		}
	}
	n := 0
	for {
		for len(c.in) > 0 && n < len(p) {
			ev, used := c.parser.Next(c.in)
			c.in = c.in[used:]
			switch {
			case ev.Kind == EventNone:
			case ev.Kind == EventData:
				k := copy(p[n:], ev.Data)
				n += k
				// readBuf is not refilled before pending is used up.
				c.pending = ev.Data[k:]
			case n > 0:
				// Its payload stays valid: the parser is not called again
				// before the event is handled.
				c.held, c.hasHeld = ev, true
				return n, nil
			default:
				if err := c.handle(ev); err != nil {
					return 0, err
				}
			}
		}
		if n > 0 {
			return n, nil
		}
		if c.readErr != nil {
			return 0, c.readErr
		}
		m, err := c.conn.Read(c.readBuf)
		c.in, c.readErr = c.readBuf[:m], err
	}
}

// handle acts on one non-data event.
func (c *ServerConn) handle(ev Event) error {
	switch ev.Kind {
	case EventNegotiation:
		return c.writeRaw(c.neg.Receive(ev.Command, ev.Option))
	case EventComPort:
		if reply, ok := c.command(ev.ComPort); ok {
			return c.writeRaw(AppendCommand(nil, reply))
		}
	}
	// Other options' subnegotiations, lone commands and protocol errors
	// need no answer.
	return nil
}

// command carries out a client command and returns the reply, if one is due.
func (c *ServerConn) command(cmd Command) (Command, bool) {
	switch cmd.Code {
	case CmdSignature:
		if len(cmd.Text) > 0 {
			return Command{}, false // the client telling us its name
		}
		return Command{Code: CmdSignature + ServerOffset, Text: []byte(Signature)}, true
	case CmdSetBaudRate:
		return cmd.Reply(uint32(c.setBaud(cmd.Baud))), true
	case CmdSetDataSize:
		return cmd.Reply(8), true
	case CmdSetParity:
		return cmd.Reply(uint32(ParityNone)), true
	case CmdSetStopSize:
		return cmd.Reply(uint32(StopBits1)), true
	case CmdSetControl:
		if v, ok := c.control(cmd.Value); ok {
			return cmd.Reply(uint32(v)), true
		}
	case CmdSetLineStateMask, CmdSetModemStateMask:
		c.mu.Lock()
		if cmd.Code == CmdSetLineStateMask {
			c.lineMask = cmd.Value
		} else {
			c.modemMask = cmd.Value
		}
		c.mu.Unlock()
		return cmd.Reply(uint32(cmd.Value)), true
	case CmdPurgeData:
		if cmd.Value < PurgeRx || cmd.Value > PurgeBoth {
			return Command{}, false
		}
		// The reply only acknowledges the request; a failed purge leaves
		// nothing better to report.
		c.handler.Purge(cmd.Value&PurgeRx != 0, cmd.Value&PurgeTx != 0)
		return cmd.Reply(uint32(cmd.Value)), true
	case CmdFlowControlSuspend, CmdFlowControlResume:
		c.mu.Lock()
		c.suspended = cmd.Code == CmdFlowControlSuspend
		c.mu.Unlock()
		c.resumed.Broadcast()
	}
	// NOTIFY-* come from servers; server codes are not for us.
	return Command{}, false
}

// setBaud asks the handler for a new rate (0 only queries) and returns the
// rate in force afterwards.
func (c *ServerConn) setBaud(baud uint32) int {
	if baud != 0 && baud <= math.MaxInt32 && c.handler.SetBaud(int(baud)) == nil {
		c.mu.Lock()
		c.baud = int(baud)
		c.mu.Unlock()
	}
	return c.Baud()
}

// control carries out a SET-CONTROL value and returns the value to answer.
func (c *ServerConn) control(v byte) (byte, bool) {
	switch v {
	case ControlDTROn, ControlDTROff:
		on := v == ControlDTROn
		if c.handler.SetDTR(on) == nil {
			c.mu.Lock()
			c.dtr = on
			c.mu.Unlock()
		}
		fallthrough
	case ControlDTRRequest:
		if c.DTR() {
			return ControlDTROn, true
		}
		return ControlDTROff, true
	case ControlRTSOn, ControlRTSOff:
		on := v == ControlRTSOn
		if c.handler.SetRTS(on) == nil {
			c.mu.Lock()
			c.rts = on
			c.mu.Unlock()
		}
		fallthrough
	case ControlRTSRequest:
		if c.RTS() {
			return ControlRTSOn, true
		}
		return ControlRTSOff, true
	case ControlFlowRequest, ControlFlowNone, ControlFlowXonXoff, ControlFlowHardware,
		ControlFlowDCD, ControlFlowDSR:
		return ControlFlowNone, true
	case ControlBreakRequest, ControlBreakOn, ControlBreakOff:
		return ControlBreakOff, true
	case ControlInboundFlowRequest, ControlInboundFlowNone, ControlInboundFlowXonXoff,
		ControlInboundFlowHardware, ControlInboundFlowDTR:
		return ControlInboundFlowNone, true
	}
	return 0, false
}

// Write sends data to the client, escaped. While the client has suspended
// the flow (FLOWCONTROL-SUSPEND) it waits for the resume or Close.
func (c *ServerConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.suspended && !c.closed {
		c.resumed.Wait()
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}

	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunk)]
		c.writeBuf = AppendEscaped(c.writeBuf[:0], chunk)
		if _, err := c.conn.Write(c.writeBuf); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// NotifyModemState sends the modem line state (ModemXxx bits) to the client,
// filtered by the mask it set; nothing is sent when no bit passes the mask.
func (c *ServerConn) NotifyModemState(state byte) error {
	c.mu.Lock()
	state &= c.modemMask
	c.mu.Unlock()
	if state == 0 {
		return nil
	}
	return c.writeRaw(AppendCommand(nil, Command{Code: CmdNotifyModemState + ServerOffset, Value: state}))
}

// NotifyLineState sends the line state (LineXxx bits) to the client,
// filtered by the mask it set (none by default).
func (c *ServerConn) NotifyLineState(state byte) error {
	c.mu.Lock()
	state &= c.lineMask
	c.mu.Unlock()
	if state == 0 {
		return nil
	}
	return c.writeRaw(AppendCommand(nil, Command{Code: CmdNotifyLineState + ServerOffset, Value: state}))
}

func (c *ServerConn) writeRaw(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_, err := c.conn.Write(b)
	return err
}

// Baud returns the baud rate in force.
func (c *ServerConn) Baud() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.baud
}

// DTR reports whether the client last asserted DTR successfully.
func (c *ServerConn) DTR() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dtr
}

// RTS reports whether the client last asserted RTS successfully.
func (c *ServerConn) RTS() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rts
}

// Close closes the connection, waking a Write waiting on flow control.
func (c *ServerConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.resumed.Broadcast()
	return c.conn.Close()
}
