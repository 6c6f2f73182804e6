package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/console/bootbaud"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
)

// LineAnnotator looks at each complete line a device prints and may have
// something to say about it: a crash decoder turns a backtrace's addresses
// into functions and source lines. It is called from one goroutine, in the
// order lines arrive, so it may keep state across lines (a register dump
// spans several). The annotation is shown under the line and may hold
// several lines.
type LineAnnotator interface {
	Decode(line string) (annotation string, ok bool)
}

// PortLender hands a device's port to someone else for a while: the
// console's reader stops reading it, fn gets the open port to itself, and
// the reader resumes when fn returns. The screen shows who holds the port.
// dev is the device's index in the session (Devices lists their addresses).
// Lend waits until the device is connected, or ctx ends.
//
// Note puts a line of the console's own into the log of device dev (shown
// dimmed, written to the log file, never sent to the device): what the
// borrower did, e.g. "mos config set wifi.sta.ssid: done".
type PortLender interface {
	Devices() []string
	Lend(ctx context.Context, dev int, who string, fn func(port.Port) error) error
	Note(dev int, text string)
}

// Opener opens a port; port.Open is the one used outside tests.
type Opener func(ctx context.Context, addr string, baud int) (port.Port, error)

// Config says what a Session reads.
type Config struct {
	Ports []string // port addresses, as port.Open takes them
	Baud  int      // 0: port.DefaultBaud
	Open  Opener   // nil: port.Open
	// LogFile, when set, gets every line with its date and time, whatever
	// the screen shows or filters.
	LogFile io.Writer
	// Annotator, when set, is asked about every line (see LineAnnotator).
	Annotator LineAnnotator
	// RetryEvery is how often a lost port is tried again (default 300 ms).
	RetryEvery time.Duration
	// Chip is the devices' chip key (package chips), "" when not known.
	// Where the chip's ROM prints its boot messages at another rate than
	// Baud (the ESP8266: 74880), the port follows it (console/bootbaud):
	// to the ROM's rate before the console resets the board, and between
	// the two rates when the bytes read say the other one is talking.
	// Each move is noted in the log.
	Chip string
}

// State is where a device's port stands.
type State int

const (
	StateConnecting   State = iota // opening for the first time
	StateConnected                 // reading
	StateReconnecting              // lost; opening again
	StateLent                      // handed over through Lend
	StateClosed                    // the session ended
)

func (s State) String() string {
	return [...]string{"connecting", "connected", "reconnecting", "lent", "closed"}[s]
}

// Status is a change of a device's state.
type Status struct {
	Dev     int
	State   State
	Err     error  // why it was lost or could not be opened
	Who     string // StateLent: who holds the port
	Attempt int    // StateReconnecting: opens tried so far
	Time    time.Time
}

// Batch is what arrived since the previous call to Next.
type Batch struct {
	Lines   []Line
	Status  []Status
	Partial []string // per device: text received after its last line ending
}

// Session reads the ports of Config.Ports until its context ends.
type Session struct {
	cfg   Config
	start time.Time
	devs  []*device

	mu      sync.Mutex
	queue   []chunk
	status  []Status
	notes   []Line
	notify  chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	seq     uint64
	logErr  error
	fatal   []error
	recvAll atomic.Int64
}

type chunk struct {
	dev  int
	t    time.Time
	data []byte
	note string // a console note at this point of the stream (no data)
}

type device struct {
	idx  int
	addr string
	name string

	mu     sync.Mutex
	port   port.Port // nil while not connected
	lentTo string    // who holds the port through Lend, if anyone
	lend   chan lendReq

	// follow moves the open port between the ROM's and the application's
	// rate (nil: the chip's ROM speaks at Baud, or the chip is unknown).
	// The reader observes with it, Reset calls it: fmu orders the two.
	fmu    sync.Mutex
	follow *bootbaud.Follower

	// consumer side (Next)
	pending  []byte
	pendingT time.Time
	// A blank line is held back until the next line: the newline that
	// opens an RPC frame belongs to the frame and is hidden with it.
	blank *Line
}

type lendReq struct {
	who  string
	fn   func(port.Port) error
	done chan error
}

// maxLine is where an endless line is cut into pieces, so that a device
// printing without newlines still shows up (4 KiB as provision's scanner).
const maxLine = 4 << 10

// NewSession starts reading the configured ports; it stops when ctx ends
// (Wait returns then).
func NewSession(ctx context.Context, cfg Config) (*Session, error) {
	if len(cfg.Ports) == 0 {
		return nil, errors.New("no port given")
	}
	if cfg.Open == nil {
		cfg.Open = port.Open
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = 300 * time.Millisecond
	}
	s := &Session{cfg: cfg, start: time.Now(), notify: make(chan struct{}, 1), done: make(chan struct{})}
	names := shortNames(cfg.Ports)
	for i, a := range cfg.Ports {
		d := &device{idx: i, addr: a, name: names[i], lend: make(chan lendReq)}
		s.devs = append(s.devs, d)
		s.wg.Add(1)
		go s.run(ctx, d)
	}
	go func() {
		s.wg.Wait()
		close(s.done)
		s.wake()
	}()
	return s, nil
}

// Start is when the session began (the origin of "since start" times).
func (s *Session) Start() time.Time { return s.start }

// Devices lists the port addresses in device order.
func (s *Session) Devices() []string {
	out := make([]string, len(s.devs))
	for i, d := range s.devs {
		out[i] = d.addr
	}
	return out
}

// Name is the short tag of device i shown on its lines.
func (s *Session) Name(i int) string { return s.devs[i].name }

// Received is the number of bytes read from all ports so far.
func (s *Session) Received() int64 { return s.recvAll.Load() }

// Wait blocks until every reader has stopped (after ctx ended).
func (s *Session) Wait() { <-s.done }

// Err reports the devices given up on (a bad address, no permission to
// open the port) once the session has stopped.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.fatal...)
}

// hopeless reports whether an open error will not go away by retrying.
func hopeless(err error) bool {
	var pe *port.Error
	if errors.As(err, &pe) {
		return pe.Kind == port.KindBadAddress || pe.Kind == port.KindPermission
	}
	return false
}

// LogErr is the first error writing the log file, if any.
func (s *Session) LogErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logErr
}

func (s *Session) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Session) push(c chunk) {
	s.recvAll.Add(int64(len(c.data)))
	s.mu.Lock()
	s.queue = append(s.queue, c)
	s.mu.Unlock()
	s.wake()
}

func (s *Session) setStatus(st Status) {
	st.Time = time.Now()
	s.mu.Lock()
	s.status = append(s.status, st)
	s.mu.Unlock()
	s.wake()
}

// run is one device's reader: open, read until the port fails, reopen.
func (s *Session) run(ctx context.Context, d *device) {
	defer s.wg.Done()
	defer s.setStatus(Status{Dev: d.idx, State: StateClosed})
	state, attempt := StateConnecting, 0
	var lastErr error
	for ctx.Err() == nil {
		p, err := s.cfg.Open(ctx, d.addr, s.cfg.Baud)
		if err != nil && state == StateConnecting && hopeless(err) {
			// Waiting will not fix a mistyped address or a missing
			// permission: the device is given up and the error reported.
			// Once it has been open, a refusal is waited out instead: a
			// re-enumerated USB device is briefly root's until udev gives
			// it back to its group.
			s.mu.Lock()
			s.fatal = append(s.fatal, err)
			s.mu.Unlock()
			return
		}
		if err != nil {
			attempt++
			// Report the first failure and every change of reason, not
			// every retry.
			if attempt == 1 || lastErr == nil || err.Error() != lastErr.Error() {
				s.setStatus(Status{Dev: d.idx, State: state, Err: err, Attempt: attempt})
			}
			lastErr = err
			select {
			case <-ctx.Done():
			case <-time.After(s.cfg.RetryEvery):
			}
			continue
		}
		attempt, lastErr = 0, nil
		d.fmu.Lock()
		d.follow = nil
		if s.cfg.Chip != "" {
			app := s.cfg.Baud
			if app <= 0 {
				app = p.BaudRate()
			}
			d.follow = bootbaud.New(p, app, bootbaud.ROMBaud(s.cfg.Chip))
		}
		d.fmu.Unlock()
		d.mu.Lock()
		d.port = p
		d.mu.Unlock()
		s.setStatus(Status{Dev: d.idx, State: StateConnected})
		err = s.read(ctx, d, p)
		d.mu.Lock()
		d.port = nil
		d.mu.Unlock()
		p.Close()
		if ctx.Err() != nil {
			return
		}
		state = StateReconnecting
		s.setStatus(Status{Dev: d.idx, State: state, Err: err})
	}
}

// read copies the port's bytes into the queue until it fails. The short
// read timeout lets it notice a Lend request and the end of ctx.
func (s *Session) read(ctx context.Context, d *device, p port.Port) error {
	if err := p.SetReadTimeout(100 * time.Millisecond); err != nil {
		return err
	}
	buf := make([]byte, 16<<10)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-d.lend:
			s.setStatus(Status{Dev: d.idx, State: StateLent, Who: r.who})
			d.mu.Lock()
			d.lentTo = r.who
			d.mu.Unlock()
			err := r.fn(p)
			d.mu.Lock()
			d.lentTo = ""
			d.mu.Unlock()
			r.done <- err
			s.setStatus(Status{Dev: d.idx, State: StateConnected})
			if err := p.SetReadTimeout(100 * time.Millisecond); err != nil {
				return err
			}
			continue
		default:
		}
		n, err := p.Read(buf)
		if n > 0 {
			s.push(chunk{dev: d.idx, t: time.Now(), data: append([]byte(nil), buf[:n]...)})
			s.observe(d, buf[:n])
		}
		if err != nil && !errors.Is(err, port.ErrTimeout) {
			if errors.Is(err, io.EOF) {
				err = errors.New("the port closed (device unplugged or server stopped)")
			}
			return err
		}
	}
}

// observe shows the bytes read to the boot-baud follower and notes its
// moves. A port that refuses the other rate is noted and no longer
// followed: the log goes on at the application's rate.
func (s *Session) observe(d *device, b []byte) {
	d.fmu.Lock()
	ch, err := d.follow.Observe(b)
	if err != nil {
		d.follow = nil
	}
	d.fmu.Unlock()
	switch {
	case err != nil:
		s.noteHere(d.idx, fmt.Sprintf("%v; boot messages at another rate are not followed any more", err))
	case ch != nil && ch.Lost:
		s.noteHere(d.idx, "following the "+ch.Reason+" (the bytes just before were read at the other rate)")
	case ch != nil:
		s.noteHere(d.idx, "following the "+ch.Reason)
	}
}

// noteHere puts a note into device dev's stream where it is now: the text
// received before it ends a line of its own, the bytes after come after
// it. (Note, for borrowers, adds its line at the end of what is queued.)
func (s *Session) noteHere(dev int, text string) {
	s.push(chunk{dev: dev, t: time.Now(), note: text})
}

// Lend implements PortLender.
func (s *Session) Lend(ctx context.Context, dev int, who string, fn func(port.Port) error) error {
	if dev < 0 || dev >= len(s.devs) {
		return fmt.Errorf("no device %d in this console", dev)
	}
	r := lendReq{who: who, fn: fn, done: make(chan error, 1)}
	select {
	case s.devs[dev].lend <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errors.New("the console has stopped")
	}
	return <-r.done
}

// Note implements PortLender.
func (s *Session) Note(dev int, text string) {
	if dev < 0 || dev >= len(s.devs) {
		return
	}
	s.mu.Lock()
	s.notes = append(s.notes, Line{Dev: dev, Time: time.Now(), Text: "--- " + text, Mark: true})
	s.mu.Unlock()
	s.wake()
}

// withPort runs fn with device dev's port, or says it is not connected.
func (s *Session) withPort(dev int, fn func(port.Port) error) error {
	if dev < 0 || dev >= len(s.devs) {
		return fmt.Errorf("no device %d", dev)
	}
	d := s.devs[dev]
	d.mu.Lock()
	p, who := d.port, d.lentTo
	d.mu.Unlock()
	switch {
	case p == nil:
		return fmt.Errorf("%s is not connected", d.addr)
	case who != "":
		return fmt.Errorf("%s is in use by %s; try again when it is done", d.addr, who)
	}
	return fn(p)
}

// Send writes bytes to device dev.
func (s *Session) Send(dev int, b []byte) error {
	return s.withPort(dev, func(p port.Port) error {
		_, err := p.Write(b)
		return err
	})
}

// Reset pulses the control lines of device dev: into its application, or
// with bootloader set into the ROM's download mode. The sequences are the
// flasher's (esptool's hard reset and classic reset).
// With Config.Chip set to a chip whose ROM speaks at another rate, the
// port is moved to the ROM's rate first, so its boot text is legible.
func (s *Session) Reset(ctx context.Context, dev int, bootloader bool) error {
	return s.withPort(dev, func(p port.Port) error {
		d := s.devs[dev]
		d.fmu.Lock()
		err := d.follow.Reset()
		rom := d.follow.InROM()
		d.fmu.Unlock()
		if err != nil {
			return err
		}
		if rom {
			s.noteHere(dev, fmt.Sprintf("reset: following the ROM boot messages at %d baud", p.BaudRate()))
		}
		return s.resetPort(ctx, p, bootloader)
	})
}

func (s *Session) resetPort(ctx context.Context, p port.Port, bootloader bool) error {
	seq := flasher.HardReset()
	if bootloader {
		seq = flasher.ClassicReset(50 * time.Millisecond)
	}
	err := seq.Run(ctx, p)
	if errors.Is(err, port.ErrNoControlLines) {
		return fmt.Errorf("%s has no DTR/RTS lines: press the board's reset button", p.Name())
	}
	return err
}

// Next waits until something arrived (or ctx ended) and returns it as
// lines. It must be called from one goroutine only. At the end it returns
// io.EOF once every reader has stopped and all was delivered.
func (s *Session) Next(ctx context.Context) (Batch, error) {
	for {
		s.mu.Lock()
		q, st, notes := s.queue, s.status, s.notes
		s.queue, s.status, s.notes = nil, nil, nil
		s.mu.Unlock()
		if len(q) > 0 || len(st) > 0 || len(notes) > 0 {
			b := s.process(q, st)
			for _, n := range notes {
				s.log(n)
				b.Lines = append(b.Lines, n)
			}
			return b, nil
		}
		select {
		case <-s.done:
			s.mu.Lock()
			empty := len(s.queue) == 0 && len(s.status) == 0
			s.mu.Unlock()
			if empty {
				return Batch{}, io.EOF
			}
		case <-s.notify:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		}
	}
}

// Flush returns what was received after the last line ending of each
// device as final lines (at the end of a session).
func (s *Session) Flush() []Line {
	var out []Line
	for _, d := range s.devs {
		if d.blank != nil {
			out = append(out, *d.blank)
			d.blank = nil
		}
		if len(d.pending) > 0 {
			out = append(out, s.finish(d, d.pending))
			d.pending = nil
		}
	}
	return out
}

func (s *Session) process(q []chunk, st []Status) Batch {
	var b Batch
	b.Status = st
	for _, c := range q {
		d := s.devs[c.dev]
		if c.note != "" {
			if d.blank != nil {
				b.Lines = append(b.Lines, *d.blank)
				d.blank = nil
			}
			if len(d.pending) > 0 {
				b.Lines = append(b.Lines, s.finish(d, d.pending))
				d.pending = d.pending[:0:0]
			}
			mark := Line{Dev: c.dev, Time: c.t, Text: "--- " + c.note, Mark: true}
			s.log(mark)
			b.Lines = append(b.Lines, mark)
			continue
		}
		for _, by := range c.data {
			if len(d.pending) == 0 {
				d.pendingT = c.t
			}
			d.pending = append(d.pending, by)
			if by == '\n' || len(d.pending) >= maxLine {
				l := s.finish(d, d.pending)
				d.pending = d.pending[:0:0]
				switch {
				case l.Text == "" && !l.RPC:
					if d.blank != nil {
						b.Lines = append(b.Lines, *d.blank)
					}
					d.blank = &l
					continue
				case d.blank != nil && !l.RPC:
					b.Lines = append(b.Lines, *d.blank)
				}
				d.blank = nil
				b.Lines = append(b.Lines, l)
			}
		}
	}
	b.Partial = make([]string, len(s.devs))
	for i, d := range s.devs {
		b.Partial[i] = string(d.pending)
	}
	return b
}

// finish makes a Line of raw, annotates it and logs it.
func (s *Session) finish(d *device, raw []byte) Line {
	s.seq++
	text := strings.TrimRight(string(raw), "\r\n")
	l := Line{Dev: d.idx, Time: d.pendingT, Raw: raw, Text: text, Seq: s.seq}
	if js, ok := parseRPC(text); ok {
		l.RPC, l.Text = true, js
	} else {
		l.Level = levelOf(text)
		if s.cfg.Annotator != nil {
			if a, ok := s.cfg.Annotator.Decode(stripANSI(text)); ok {
				l.Annot = a
			}
		}
	}
	s.log(l)
	return l
}

// log appends l to Config.LogFile, when there is one.
func (s *Session) log(l Line) {
	if s.cfg.LogFile == nil {
		return
	}
	var b strings.Builder
	b.WriteString(l.Time.Format("2006-01-02T15:04:05.000Z07:00"))
	if len(s.devs) > 1 {
		b.WriteString(" [" + s.devs[l.Dev].name + "]")
	}
	b.WriteByte(' ')
	if l.RPC {
		b.WriteString(`rpc: `)
	}
	b.WriteString(safeText(l.Text, false))
	b.WriteByte('\n')
	for _, a := range splitLines(l.Annot) {
		b.WriteString("    " + a + "\n")
	}
	if _, err := io.WriteString(s.cfg.LogFile, b.String()); err != nil {
		s.mu.Lock()
		if s.logErr == nil {
			s.logErr = err
		}
		s.mu.Unlock()
	}
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// shortNames gives each port a short tag: the device file's name, the
// server's host:port, the virtual chip; numbered when two are the same.
func shortNames(addrs []string) []string {
	out := make([]string, len(addrs))
	seen := map[string]int{}
	for i, a := range addrs {
		n := a
		if u, err := url.Parse(a); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
			switch {
			case u.Host != "":
				n = u.Host
			case u.Opaque != "":
				n = strings.TrimPrefix(u.Opaque, "//")
			case u.Path != "":
				n = path.Base(u.Path)
			}
		} else {
			n = path.Base(strings.ReplaceAll(a, `\`, "/"))
		}
		seen[n]++
		out[i] = n
	}
	count := map[string]int{}
	for i, n := range out {
		if seen[n] > 1 {
			count[n]++
			out[i] = fmt.Sprintf("%s#%d", n, count[n])
		}
	}
	return out
}
