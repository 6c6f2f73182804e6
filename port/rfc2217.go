package port

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/rfc2217"
)

// negotiationTimeout bounds the wait for the server to accept
// COM-PORT-OPTION when the context has no earlier deadline.
const negotiationTimeout = 5 * time.Second

// purgeTimeout bounds the wait for the server to acknowledge PURGE-DATA.
const purgeTimeout = time.Second

var (
	errNoComPort     = errors.New("the server refused RFC 2217 (COM-PORT-OPTION); for a raw TCP bridge use socket://")
	errNoNegotiation = errors.New("no RFC 2217 negotiation from the server; for a raw TCP bridge use socket://")
)

// rfc2217Port is a serial port behind an RFC 2217 access server.
type rfc2217Port struct {
	*tcpStream

	// Used by the background reader only.
	parser rfc2217.Parser
	neg    *rfc2217.Negotiator
	data   []byte // data of the chunk being parsed

	negotiated chan struct{} // closed once COM-PORT-OPTION is settled
	comPort    bool          // the server accepted it; set before negotiated is closed

	purging         atomic.Bool   // ResetInputBuffer waits for the server's purge ack
	purgeAck        chan struct{} // signalled by the reader on that ack
	purgeUnanswered atomic.Bool   // the server ignored a purge: stop waiting for acks
}

// openRFC2217 connects to an RFC 2217 server, negotiates the telnet options
// and sets the line to baud 8N1 without flow control.
func openRFC2217(ctx context.Context, name, hostport string, baud int) (Port, error) {
	conn, err := dialTCP(ctx, name, hostport)
	if err != nil {
		return nil, err
	}
	p, err := startRFC2217(ctx, name, conn, baud)
	if err != nil {
		return nil, err // not a nil *rfc2217Port in a non-nil Port
	}
	return p, nil
}

// startRFC2217 runs the client side of RFC 2217 on an open connection (a
// TCP one, or the Unix socket of a console lending its port).
func startRFC2217(ctx context.Context, name string, conn net.Conn, baud int) (*rfc2217Port, error) {
	p := &rfc2217Port{
		tcpStream:  newTCPStream(name, conn, baud),
		neg:        rfc2217.NewClientNegotiator(),
		negotiated: make(chan struct{}),
		purgeAck:   make(chan struct{}, 1),
	}
	// The reader answers the server from now on, so the start goes out
	// before it runs: both touch the negotiator.
	start := p.neg.Start()
	if err := p.writeRaw("open", start); err != nil {
		conn.Close()
		return nil, err
	}
	go p.readLoop(p.handleChunk)

	if err := p.awaitNegotiation(ctx); err != nil {
		p.Close()
		return nil, err
	}
	var setup []byte
	for _, c := range []rfc2217.Command{
		{Code: rfc2217.CmdSetBaudRate, Baud: uint32(baud)},
		{Code: rfc2217.CmdSetDataSize, Value: 8},
		{Code: rfc2217.CmdSetParity, Value: rfc2217.ParityNone},
		{Code: rfc2217.CmdSetStopSize, Value: rfc2217.StopBits1},
		{Code: rfc2217.CmdSetControl, Value: rfc2217.ControlFlowNone},
	} {
		setup = rfc2217.AppendCommand(setup, c)
	}
	if err := p.writeRaw("open", setup); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// awaitNegotiation waits until the server accepted or refused
// COM-PORT-OPTION.
func (p *rfc2217Port) awaitNegotiation(ctx context.Context) error {
	timer := time.NewTimer(negotiationTimeout)
	defer timer.Stop()
	fail := func(err error) error {
		return &Error{Kind: KindUnreachable, Port: p.name, Op: "open", Err: err}
	}
	select {
	case <-p.negotiated:
		if !p.comPort {
			return fail(errNoComPort)
		}
		return nil
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-timer.C:
		return fail(errNoNegotiation)
	case <-p.readerDone:
		p.mu.Lock()
		err := p.readErr
		said := strings.TrimSpace(string(p.buf[p.off:min(len(p.buf), p.off+300)]))
		p.mu.Unlock()
		if said != "" {
			// A server that closes before negotiating and says why (a
			// busy `mos serve`, ser2net's "port in use") is refusing us.
			return &Error{Kind: KindBusy, Port: p.name, Op: "open", Err: fmt.Errorf("the server refused the connection: %q", said)}
		}
		if err == nil {
			err = fail(errNoNegotiation)
		}
		return err
	}
}

// handleChunk parses bytes from the server: it queues the data, answers
// the negotiation and notes the COM-PORT-OPTION replies.
func (p *rfc2217Port) handleChunk(chunk []byte) bool {
	p.data = p.data[:0]
	for len(chunk) > 0 {
		ev, n := p.parser.Next(chunk)
		chunk = chunk[n:]
		switch ev.Kind {
		case rfc2217.EventData:
			p.data = append(p.data, ev.Data...)
		case rfc2217.EventNegotiation:
			if reply := p.neg.Receive(ev.Command, ev.Option); reply != nil {
				// A failed write also ends the read soon; that reports it.
				p.writeRaw("negotiate on", reply)
			}
			p.noteNegotiation()
		case rfc2217.EventComPort:
			if ev.ComPort.Code == rfc2217.CmdPurgeData+rfc2217.ServerOffset && p.purging.Load() {
				// Everything before the ack was sent before the purge.
				p.data = p.data[:0]
				p.dropBuffered()
				wake(p.purgeAck)
			}
			// Other replies and notifications need no action: the server
			// applies the settings in the order they were sent.
		}
		// Other subnegotiations, commands and protocol errors are ignored;
		// the parser has already resynchronised.
	}
	return len(p.data) == 0 || p.deliver(p.data)
}

// noteNegotiation closes negotiated once COM-PORT-OPTION is settled.
func (p *rfc2217Port) noteNegotiation() {
	select {
	case <-p.negotiated:
		return
	default:
	}
	if p.neg.Settled(rfc2217.OptComPort) {
		p.comPort = p.neg.Ours(rfc2217.OptComPort)
		close(p.negotiated)
	}
}

func (p *rfc2217Port) command(op string, c rfc2217.Command) error {
	return p.writeRaw(op, rfc2217.AppendCommand(nil, c))
}

// Write escapes the data's 0xFF bytes, which telnet would take for IAC.
func (p *rfc2217Port) Write(b []byte) (int, error) {
	out := b
	if bytes.IndexByte(b, rfc2217.IAC) >= 0 {
		out = rfc2217.AppendEscaped(make([]byte, 0, len(b)+len(b)/8), b)
	}
	if err := p.writeRaw("write", out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *rfc2217Port) SetBaudRate(baud int) error {
	if baud <= 0 || int64(baud) > 1<<32-1 {
		return fmt.Errorf("set baud rate on %s: invalid rate %d", p.name, baud)
	}
	if err := p.command("set baud rate on", rfc2217.Command{Code: rfc2217.CmdSetBaudRate, Baud: uint32(baud)}); err != nil {
		return err
	}
	p.setBaud(baud)
	return nil
}

func (p *rfc2217Port) SetDTR(on bool) error {
	v := rfc2217.ControlDTROff
	if on {
		v = rfc2217.ControlDTROn
	}
	return p.command("set DTR on", rfc2217.Command{Code: rfc2217.CmdSetControl, Value: v})
}

func (p *rfc2217Port) SetRTS(on bool) error {
	v := rfc2217.ControlRTSOff
	if on {
		v = rfc2217.ControlRTSOn
	}
	return p.command("set RTS on", rfc2217.Command{Code: rfc2217.CmdSetControl, Value: v})
}

// ResetInputBuffer asks the server to purge its receive buffer and drops
// what arrived here. It waits (briefly) for the server's acknowledgement,
// since bytes still in flight before it are stale too; a server that never
// acknowledges is not waited for again.
func (p *rfc2217Port) ResetInputBuffer() error {
	if p.purgeUnanswered.Load() {
		p.dropBuffered()
		return p.command("reset input buffer of", rfc2217.Command{Code: rfc2217.CmdPurgeData, Value: rfc2217.PurgeRx})
	}
	select { // an ack that came too late for an earlier call
	case <-p.purgeAck:
	default:
	}
	p.purging.Store(true)
	defer p.purging.Store(false)
	p.dropBuffered()
	if err := p.command("reset input buffer of", rfc2217.Command{Code: rfc2217.CmdPurgeData, Value: rfc2217.PurgeRx}); err != nil {
		return err
	}
	timer := time.NewTimer(purgeTimeout)
	defer timer.Stop()
	select {
	case <-p.purgeAck:
	case <-timer.C:
		p.purgeUnanswered.Store(true)
	case <-p.done:
		return ErrClosed
	case <-p.readerDone:
	}
	return nil
}
