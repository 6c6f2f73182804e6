package port

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mos-tool/mos/port/internal/endpoint"
)

// Borrower says who is opening ports, for a console that lends one to
// show, and receives the notice that a port goes through such a console.
type Borrower struct {
	// Who names the command ("mos config set"); empty: the program's name.
	Who string
	// Notify, when set, is told once per port that goes through a console,
	// so the user knows why the console shows their command's traffic.
	Notify func(msg string)
}

type borrowerKey struct{}

// WithBorrower returns a context under which Open introduces itself to a
// lending console as b.Who and reports borrowed ports to b.Notify.
func WithBorrower(ctx context.Context, b Borrower) context.Context {
	return context.WithValue(ctx, borrowerKey{}, b)
}

// errLenderGone is what a borrowed port reports once the console that lent
// it has stopped (quit, killed, or its port unplugged).
var errLenderGone = errors.New("the mos console that lent the port stopped or lost the port")

// borrow opens addr through the endpoint of a console that lends it. ok is
// false, with a nil error, when no live console offers the port: the caller
// opens it itself. A console that offers it but does not answer, or whose
// line is already lent to another command, is an error (KindBusy).
func borrow(ctx context.Context, addr string, baud int) (p Port, ok bool, err error) {
	if addr == "" {
		return nil, false, nil
	}
	path, err := endpoint.Path(addr, false)
	if err != nil {
		return nil, false, nil // no sharing directory: nobody can lend
	}
	conn, live, err := endpoint.Dial(path)
	if !live {
		// A socket we may not connect to is not a console of ours
		// either; the direct open says what is wrong with the port.
		return nil, false, nil
	}
	b, _ := ctx.Value(borrowerKey{}).(Borrower)
	if b.Who == "" {
		b.Who = filepath.Base(os.Args[0])
	}
	deadline := time.Now().Add(endpoint.HelloTimeout)
	if d, has := ctx.Deadline(); has && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	fail := func(kind ErrorKind, err error) (Port, bool, error) {
		conn.Close()
		return nil, true, &Error{Kind: kind, Port: addr, Op: "open", Err: err}
	}

	hello := endpoint.Hello{Port: endpoint.Canonical(addr), PID: os.Getpid(), Who: b.Who}
	if _, err := conn.Write([]byte(hello.Line())); err != nil {
		return fail(KindBusy, fmt.Errorf("a running mos console offers this port but did not take the request: %w", err))
	}
	br := bufio.NewReader(conn)
	kind, text, err := endpoint.ReadReply(br)
	if err != nil {
		if ctx.Err() != nil {
			return fail(KindOther, ctx.Err())
		}
		return fail(KindBusy, fmt.Errorf("a running mos console offers this port but did not answer (%v); quit it or wait until it responds", err))
	}
	switch kind {
	case endpoint.ReplyOK:
	case endpoint.ReplyBusy:
		return fail(KindBusy, errors.New(text))
	case endpoint.ReplyOther:
		conn.Close()
		return nil, false, nil
	default:
		return fail(KindBusy, fmt.Errorf("a running mos console offers this port but answered %q", kind+" "+text))
	}
	conn.SetDeadline(time.Time{})
	stop()
	// The reader may already hold the start of the RFC 2217 negotiation.
	rp, err := startRFC2217(ctx, addr, stallConn{&endpoint.BufferedConn{Conn: conn, R: br}}, baud)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			pe.Err = fmt.Errorf("through the running mos console: %w", pe.Err)
		}
		return nil, true, err
	}
	if b.Notify != nil {
		b.Notify(fmt.Sprintf("%s is held by %s: going through it", addr, strings.TrimSpace(text)))
	}
	return &borrowedPort{rfc2217Port: rp}, true, nil
}

// writeStall bounds how long one write to the console may wait: the
// console relays to the device as fast as the line takes it, so a write
// that waits this long means a console that stopped reading (suspended
// with ^Z, say), and the command fails instead of hanging.
var writeStall = 20 * time.Second

// stallConn bounds each write by writeStall.
type stallConn struct{ *endpoint.BufferedConn }

func (c stallConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(writeStall))
	return c.Conn.Write(b)
}

// borrowedPort is an RFC 2217 port over a console's endpoint. Its errors
// say that the console went away rather than that a device did.
type borrowedPort struct {
	*rfc2217Port
}

func (p *borrowedPort) lost(err error) error {
	var pe *Error
	if errors.As(err, &pe) && pe.Kind == KindDisconnected {
		return &Error{Kind: KindDisconnected, Port: pe.Port, Op: pe.Op, Err: errLenderGone}
	}
	return err
}

func (p *borrowedPort) Read(b []byte) (int, error) {
	n, err := p.rfc2217Port.Read(b)
	return n, p.lost(err)
}

func (p *borrowedPort) Write(b []byte) (int, error) {
	n, err := p.rfc2217Port.Write(b)
	return n, p.lost(err)
}

func (p *borrowedPort) SetBaudRate(baud int) error {
	return p.lost(p.rfc2217Port.SetBaudRate(baud))
}

func (p *borrowedPort) SetDTR(on bool) error { return p.lost(p.rfc2217Port.SetDTR(on)) }
func (p *borrowedPort) SetRTS(on bool) error { return p.lost(p.rfc2217Port.SetRTS(on)) }

func (p *borrowedPort) ResetInputBuffer() error {
	return p.lost(p.rfc2217Port.ResetInputBuffer())
}

// Borrowed reports whether p goes through a console that lends its port.
func Borrowed(p Port) bool {
	_, ok := p.(*borrowedPort)
	return ok
}
