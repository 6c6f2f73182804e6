// Package share lends a port that one process holds (a running `mos
// console`) to other mos commands for the same port, so that a developer
// can keep the log open while `mos config set`, `mos call`, `mos put` or
// even `mos flash` use the line.
//
// The holder calls Offer with the open port and uses Lender.Port in its
// place from then on. Offer listens on a Unix socket named after the port
// (a hash of its canonical name, in $XDG_RUNTIME_DIR/mos or a private
// directory in the temporary directory, mode 0600). Another command's
// port.Open finds the socket, introduces itself, and when the line is free
// gets an RFC 2217 port over the socket: baud changes, DTR/RTS, purges and
// data keep their order, and the command's own timing (its resets) is kept,
// since a local socket adds no delay worth speaking of. Meanwhile reads
// on Lender.Port time out and writes fail with ErrLent; the hooks tell the
// holder when the line goes and comes back, with a Summary of what was
// done.
//
// What the holder must do:
//   - open its port with port.OpenDirect (port.Open would borrow from a
//     console, its own endpoint included when it reopens a port);
//   - after Offer, use only Lender.Port for reads, writes and control;
//   - when the port fails (unplugged), close Lender.Port (or Lender.Close
//     and close the port), and once it is back, open it and Offer again;
//   - keep the hooks short; they may run during Close.
//
// One borrower at a time. A second one waits up to a second (a command
// that reopens the port at once is not refused), then is refused with a
// message naming the command that has the line: a queued command would
// look hung for as long as, say, a flash takes.
//
// Windows has Unix sockets since Windows 10 (1803); the socket is put in
// the user's temporary directory there. Tested on Linux; macOS and Windows
// are only built.
package share

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/port/internal/endpoint"
)

// pollInterval bounds each read of the port, by the holder's reads
// through Lender.Port and by the relay: the longest a borrower waits for
// the holder's read in progress, and for a purge to take effect.
const pollInterval = 20 * time.Millisecond

// leaveGrace is how long a new borrower waits for the line to come back
// before it is refused.
const leaveGrace = time.Second

// ErrLent is returned (wrapped, naming the borrower) by writes and control
// calls on Lender.Port while another command has the line.
var ErrLent = errors.New("the port is lent to another mos command")

// Borrower is a command that uses the line through the holder.
type Borrower struct {
	Who string // the command, e.g. "mos config set"
	PID int    // its process id
}

func (b Borrower) String() string {
	if b.PID > 0 {
		return fmt.Sprintf("%s (pid %d)", b.Who, b.PID)
	}
	return b.Who
}

// Summary is what a borrower did with the line.
type Summary struct {
	Borrower Borrower
	Start    time.Time
	Duration time.Duration
	Sent     int64 // bytes written to the device
	Received int64 // bytes from the device passed to the borrower
	// Bauds lists the rates the borrower set, in order (the first is the
	// rate it opened the port at).
	Bauds []int
	// Resets counts EN pulses (RTS asserted, then released);
	// BootloaderResets those of them with DTR (IO0) asserted at the release,
	// which start the ROM loader.
	Resets, BootloaderResets int
	// Err says why the session ended when the borrower did not simply
	// close the port (the port failed, the lender stopped).
	Err error
}

// String is a one-line account for the holder to show.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s used the port for %.1fs: %d bytes sent, %d received", s.Borrower, s.Duration.Seconds(), s.Sent, s.Received)
	if s.Resets > 0 {
		fmt.Fprintf(&b, ", %d reset(s)", s.Resets)
		if s.BootloaderResets > 0 {
			fmt.Fprintf(&b, " (%d into the bootloader)", s.BootloaderResets)
		}
	}
	if len(s.Bauds) > 1 {
		rates := make([]string, len(s.Bauds))
		for i, r := range s.Bauds {
			rates[i] = fmt.Sprint(r)
		}
		fmt.Fprintf(&b, ", baud %s", strings.Join(rates, " → "))
	}
	if s.Err != nil {
		fmt.Fprintf(&b, "; ended: %v", s.Err)
	}
	return b.String()
}

// Hooks tell the holder about borrowers. They are called from the
// lender's goroutines, one borrower at a time, and must return promptly
// (a terminal UI sends itself a message); they must not use Lender.Port
// or call Close, which waits for them.
type Hooks struct {
	// Name is how borrowers are told who holds the port; default
	// "mos console (pid N)".
	Name string
	// OnBorrow: a command has the line. The holder's reads in progress
	// have returned; no byte of the command has reached the port yet.
	OnBorrow func(b Borrower)
	// OnDeviceData, optional, receives what the device sends while the
	// line is lent (b is valid during the call only), for the holder to
	// show dimmed or drop.
	OnDeviceData func(b []byte)
	// OnReturn: the line is back, left at the holder's baud rate with DTR
	// and RTS released; s says what was done.
	OnReturn func(s Summary)
	// OnRefuse, optional: a command was turned away (the line was lent).
	OnRefuse func(b Borrower, reason string)
}

// Lender offers one port on its endpoint.
type Lender struct {
	p     port.Port
	hooks Hooks
	name  string
	path  string
	ln    net.Listener
	line  *line
	lp    *linePort

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	current *Borrower     // the borrower holding the line, nil when free
	since   time.Time     // when it got it
	left    chan struct{} // closed when its session is over
	conns   map[net.Conn]bool
}

// Offer lends p, which the caller has open, to other mos commands until
// ctx ends or Close. From now on the caller must use Lender.Port instead
// of p. It fails when the sharing directory cannot be used or another
// process already offers the same port.
func Offer(ctx context.Context, p port.Port, h Hooks) (*Lender, error) {
	path, err := endpoint.Path(p.Name(), true)
	if err != nil {
		return nil, fmt.Errorf("offer %s to other mos commands: %w", p.Name(), err)
	}
	if conn, live, _ := endpoint.Dial(path); live {
		conn.Close()
		return nil, fmt.Errorf("offer %s to other mos commands: another mos console offers it already (%s)", p.Name(), path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("offer %s to other mos commands: %w", p.Name(), err)
	}
	// The directory is private already; the socket is made the user's
	// alone as well, should the directory ever be opened up.
	os.Chmod(path, 0o600)
	if h.Name == "" {
		h.Name = fmt.Sprintf("mos console (pid %d)", os.Getpid())
	}
	l := &Lender{
		p:     p,
		hooks: h,
		name:  p.Name(),
		path:  path,
		ln:    ln,
		line:  newLine(),
		conns: map[net.Conn]bool{},
	}
	l.lp = &linePort{l: l}
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Add(1)
	go l.acceptLoop()
	context.AfterFunc(l.ctx, func() { ln.Close() })
	return l, nil
}

// Port is the port the holder uses while it lends it: reads time out and
// writes fail with ErrLent while a command has the line. Closing it
// closes the lender and the port.
func (l *Lender) Port() port.Port { return l.lp }

// Endpoint is the socket path, for messages.
func (l *Lender) Endpoint() string { return l.path }

// Close stops lending: the endpoint goes, a borrower in the middle of a
// command is cut off (its port reports that the console stopped) and the
// line returns to the holder. The port stays open.
func (l *Lender) Close() error {
	l.cancel()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

func (l *Lender) acceptLoop() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if !l.track(conn) {
			conn.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(conn)
			defer conn.Close()
			l.serve(conn)
		}()
	}
}

func (l *Lender) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return false
	}
	l.conns[c] = true
	return true
}

func (l *Lender) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// serve answers one connection: the greeting, then a session or a refusal.
func (l *Lender) serve(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(endpoint.HelloTimeout))
	br := bufio.NewReader(conn)
	hello, err := endpoint.ReadHello(br)
	if err != nil {
		return
	}
	if hello.Port != endpoint.Canonical(l.name) {
		conn.Write([]byte(endpoint.Reply(endpoint.ReplyOther, l.name)))
		return
	}
	b := Borrower{Who: hello.Who, PID: hello.PID}
	left, busy := l.claim(b)
	if busy != "" {
		if l.hooks.OnRefuse != nil {
			l.hooks.OnRefuse(b, busy)
		}
		conn.Write([]byte(endpoint.Reply(endpoint.ReplyBusy, busy)))
		return
	}
	defer func() {
		l.mu.Lock()
		l.current = nil
		l.mu.Unlock()
		close(left)
	}()
	if _, err := conn.Write([]byte(endpoint.Reply(endpoint.ReplyOK, l.hooks.Name))); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	l.session(&endpoint.BufferedConn{Conn: conn, R: br}, b)
}

// claim makes b the borrower once the line is free, waiting up to
// leaveGrace. It returns the channel to close when b is done, or why b is
// refused.
func (l *Lender) claim(b Borrower) (left chan struct{}, busy string) {
	timer := time.NewTimer(leaveGrace)
	defer timer.Stop()
	for {
		l.mu.Lock()
		if l.current == nil {
			l.current, l.since, l.left = &b, time.Now(), make(chan struct{})
			left := l.left
			l.mu.Unlock()
			return left, ""
		}
		cur, since, prev := *l.current, l.since, l.left
		l.mu.Unlock()
		select {
		case <-prev:
		case <-timer.C:
			return nil, fmt.Sprintf("%s holds %s and has lent it to %s for %s; try again when that has finished",
				l.hooks.Name, l.name, cur, time.Since(since).Round(time.Second))
		case <-l.ctx.Done():
			return nil, fmt.Sprintf("%s is stopping", l.hooks.Name)
		}
	}
}
