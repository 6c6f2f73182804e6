package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/console"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/sim"
)

const (
	consoleDuration      = 60 * time.Second
	consoleQuickDuration = 15 * time.Second
	goalConsoleRSSMiB    = 64
	// smallScrollback is the scrollback of the row that shows the bound:
	// at 2 Mbaud the stream fills it in under a second.
	smallScrollback = 1000
)

// consoleChildMode is a way the child process shows the stream.
type consoleChildMode struct {
	name       string
	scrollback int // console.Options.Scrollback (0: the default)
	run        func(ctx context.Context, s *console.Session, opts console.Options, c *streamCounter) error
}

var consoleModes = []consoleChildMode{
	{name: "pipe", run: runPipe},
	{name: "tui", run: runTUI},
	{name: fmt.Sprintf("tui-scrollback-%d", smallScrollback), scrollback: smallScrollback, run: runTUI},
}

// runPipe: console.Plain into a writer that counts the lines it is given.
func runPipe(ctx context.Context, s *console.Session, opts console.Options, c *streamCounter) error {
	return console.Plain(ctx, s, opts, &countingWriter{c: c}, io.Discard)
}

// runTUI: the terminal UI with no terminal, a 120x40 window rendered into
// io.Discard; the backend counts the lines the model is given.
func runTUI(ctx context.Context, s *console.Session, opts console.Options, c *streamCounter) error {
	return console.RunHeadless(ctx, countingBackend{s, c}, opts, io.Discard, 120, 40)
}

type consoleRow struct {
	mode       string
	scrollback int
	baud       int
	d          time.Duration
	sent       int64 // bytes the device sent (between the markers)
	res        childResult
	cpu        time.Duration
	hwm        int64
}

func measureConsole(ctx context.Context, quick bool) ([]consoleRow, error) {
	d := consoleDuration
	if quick {
		d = consoleQuickDuration
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var rows []consoleRow
	for _, m := range consoleModes {
		bauds := []int{921600, 2000000}
		if m.scrollback != 0 {
			bauds = []int{2000000} // the bound shows at the highest rate
		}
		for _, baud := range bauds {
			fmt.Fprintf(os.Stderr, "bench: console %s at %d baud for %s...", m.name, baud, d)
			r, err := consoleRun(ctx, exe, m, baud, d)
			if err != nil {
				fmt.Fprintln(os.Stderr)
				return nil, fmt.Errorf("console %s at %d baud: %w", m.name, baud, err)
			}
			fmt.Fprintf(os.Stderr, " %d of %d bytes\n", r.res.Bytes, r.sent)
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// consoleRun streams one row: a device served here, the console a child.
func consoleRun(ctx context.Context, exe string, m consoleChildMode, baud int, d time.Duration) (consoleRow, error) {
	row := consoleRow{mode: m.name, scrollback: m.scrollback, baud: baud, d: d}
	if row.scrollback == 0 {
		row.scrollback = console.DefaultScrollback
	}
	fw := &streamFirmware{baud: baud, d: d}
	chip, err := chips.ByKey(chipKey)
	if err != nil {
		return row, err
	}
	dev, err := sim.New(sim.Config{Chip: chip, FlashSize: 4 << 20, Firmware: fw})
	if err != nil {
		return row, err
	}
	defer dev.Close()
	if err := dev.ProgramBundle(demoBundlePath); err != nil {
		return row, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return row, err
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := dev.ServeRFC2217(sctx, ln); err != nil && sctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "bench: RFC 2217 server:", err)
		}
	}()
	defer func() { stop(); wg.Wait() }()

	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-console-child", m.name, "-port", "rfc2217://"+ln.Addr().String(), "-baud", fmt.Sprint(baud), "-duration", d.String())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		return row, err
	}
	hwm := watchHWM(cmd.Process.Pid)
	err = cmd.Wait()
	row.hwm = hwm.Stop()
	if err != nil {
		return row, fmt.Errorf("%v\n%s", err, tail(errOut.String(), 20))
	}
	if err := json.Unmarshal(out.Bytes(), &row.res); err != nil {
		return row, fmt.Errorf("child's result %q: %w", out.String(), err)
	}
	row.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	row.sent = fw.sent.Load()
	if row.res.EndSent != row.sent {
		return row, fmt.Errorf("the device's end line says %d bytes, it counted %d", row.res.EndSent, row.sent)
	}
	return row, nil
}

// streamFirmware is the device's side: once the host sends a byte, it
// logs numbered lines at the UART's full rate for d, between a start and
// an end line; sent counts the bytes of the numbered lines.
type streamFirmware struct {
	baud int
	d    time.Duration
	sent atomic.Int64
}

func (f *streamFirmware) Recognises(*fwimage.Image) bool { return true }

func (f *streamFirmware) Run(m *sim.Machine, _ sim.App) error {
	m.SetUARTBaud(f.baud)
	m.DiscardRX()
	var b [1]byte
	if _, err := m.Recv(m.Context(), b[:], time.Time{}); err != nil {
		return err
	}
	if err := m.Send([]byte("\r\nBENCH START\r\n")); err != nil {
		return err
	}
	start := time.Now()
	var sent int64
	var batch []byte
	for n := 0; time.Since(start) < f.d; {
		// ESP-IDF-style log lines of varied length (40..120 bytes)
		batch = batch[:0]
		for range 32 {
			pad := 20 + n*7%80
			batch = fmt.Appendf(batch, "I (%d) bench: line %08d %s\r\n", time.Since(start).Milliseconds(), n, strings.Repeat("x", pad))
			n++
		}
		if err := m.Send(batch); err != nil {
			return err
		}
		sent += int64(len(batch))
		// pace as the UART does: keep at most 20 ms queued
		if ahead := time.Until(start.Add(sim.WireTime(int(sent), f.baud))); ahead > 20*time.Millisecond {
			if err := m.Sleep(ahead - 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	// the end line says how many bytes came between it and the start line
	f.sent.Store(sent)
	end := fmt.Sprintf("BENCH END %d\r\n", sent)
	if err := m.Send([]byte(end)); err != nil {
		return err
	}
	<-m.Context().Done()
	return m.Context().Err()
}

// childResult is what the console process reports.
type childResult struct {
	Bytes   int64 `json:"bytes"`    // delivered between the start and the end line
	Lines   int64 `json:"lines"`    // numbered lines
	Gaps    int64 `json:"gaps"`     // numbers missing
	EndSent int64 `json:"end_sent"` // what the end line says was sent
	// Port is what the session read from the port in all (start and end
	// lines, boot text included): a cross-check of Bytes.
	Port int64 `json:"port"`
	// RSSEarly and RSSLate are the highest VmRSS sampled in the first and
	// the last rssWindow of the stream (0: not available).
	RSSEarly  int64         `json:"rss_early"`
	RSSLate   int64         `json:"rss_late"`
	RSSWindow time.Duration `json:"rss_window"`
}

// streamCounter follows the stream as the console delivers it: lines,
// gaps in their numbering, bytes between the start and the end line. At
// the end line it cancels the console.
type streamCounter struct {
	started atomic.Bool
	startAt atomic.Int64 // unix ns of the start line
	end     context.CancelFunc
	next    int64
	res     childResult
	done    bool
}

// line takes one line as the console delivers it: its text without the
// line ending, and how many bytes it had on the wire.
func (c *streamCounter) line(text string, wire int) {
	if c.done {
		return
	}
	if !c.started.Load() {
		if strings.HasSuffix(text, "BENCH START") {
			c.startAt.Store(time.Now().UnixNano())
			c.started.Store(true)
		}
		return
	}
	if end, ok := strings.CutPrefix(text, "BENCH END "); ok {
		c.res.EndSent, _ = strconv.ParseInt(end, 10, 64)
		c.done = true
		c.end()
		return
	}
	c.res.Bytes += int64(wire)
	if _, num, ok := strings.Cut(text, " bench: line "); ok && len(num) >= 8 {
		v, _ := strconv.ParseInt(num[:8], 10, 64)
		if v > c.next {
			c.res.Gaps += v - c.next
		}
		c.next = v + 1
		c.res.Lines++
	}
}

// countingWriter takes console.Plain's output. Plain writes each line as
// its text and "\n" (the device's "\r" is dropped on purpose), so a line
// had its length plus one byte on the wire.
type countingWriter struct {
	c       *streamCounter
	partial []byte
}

func (w *countingWriter) Write(p []byte) (int, error) {
	data := p
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			w.partial = append(w.partial, data...)
			break
		}
		line := data[:i]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		w.c.line(string(line), len(line)+2)
		data = data[i+1:]
	}
	return len(p), nil
}

// countingBackend is the session as the terminal UI's model sees it; it
// counts the raw bytes of each line handed to the model.
type countingBackend struct {
	*console.Session
	c *streamCounter
}

func (b countingBackend) Next(ctx context.Context) (console.Batch, error) {
	batch, err := b.Session.Next(ctx)
	for _, l := range batch.Lines {
		if !l.Mark {
			b.c.line(l.Text, len(l.Raw))
		}
	}
	return batch, err
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// rssSample is this process's resident set at a moment.
type rssSample struct {
	t   time.Time
	rss int64
}

// sampleRSS reads VmRSS every 250 ms until ctx ends.
func sampleRSS(ctx context.Context) <-chan []rssSample {
	out := make(chan []rssSample, 1)
	go func() {
		var s []rssSample
		for ctx.Err() == nil {
			if v, ok := readStatusBytes("self", "VmRSS:"); ok {
				s = append(s, rssSample{time.Now(), v})
			}
			sleepCtx(ctx, 250*time.Millisecond)
		}
		out <- s
	}()
	return out
}

// peakIn is the highest sample in [from, to].
func peakIn(s []rssSample, from, to time.Time) int64 {
	var p int64
	for _, x := range s {
		if !x.t.Before(from) && !x.t.After(to) && x.rss > p {
			p = x.rss
		}
	}
	return p
}

// runConsoleChild is the console process: a console.Session on the port
// at baud, shown in the mode's way; the device is asked to start, and the
// console runs until the device's end line.
func runConsoleChild(ctx context.Context, mode, portAddr string, baud int, d time.Duration) error {
	var m *consoleChildMode
	for i := range consoleModes {
		if consoleModes[i].name == mode {
			m = &consoleModes[i]
		}
	}
	if m == nil {
		return fmt.Errorf("console mode %q: not known", mode)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sctx, stopSampling := context.WithCancel(context.Background())
	defer stopSampling()
	samples := sampleRSS(sctx)
	s, err := console.NewSession(ctx, console.Config{Ports: []string{portAddr}, Baud: baud})
	if err != nil {
		return err
	}
	c := &streamCounter{end: cancel}
	// Opening the port may reset the board (the server plays the reset),
	// and the firmware empties its FIFO when it starts: ask until it
	// answers. Sends fail while the port is not open yet.
	go func() {
		for ctx.Err() == nil && !c.started.Load() {
			s.Send(0, []byte{'g'})
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}()
	err = m.run(ctx, s, console.Options{Scrollback: m.scrollback}, c)
	ended := time.Now()
	cancel()
	s.Wait()
	stopSampling()
	if err != nil {
		return err
	}
	if !c.done {
		return fmt.Errorf("the console stopped before the device's end line (%d bytes, %d lines so far)", c.res.Bytes, c.res.Lines)
	}
	if err := s.Err(); err != nil {
		return err
	}
	c.res.Port = s.Received()
	// The windows: the first and last 10 s of the stream (a third of it
	// when shorter than 30 s).
	w := min(10*time.Second, d/3)
	start := time.Unix(0, c.startAt.Load())
	rs := <-samples
	c.res.RSSWindow = w
	c.res.RSSEarly = peakIn(rs, start, start.Add(w))
	c.res.RSSLate = peakIn(rs, ended.Add(-w), ended)
	return json.NewEncoder(os.Stdout).Encode(c.res)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func printConsole(rows []consoleRow, quick bool) {
	d := consoleDuration
	if quick {
		d = consoleQuickDuration
	}
	fmt.Printf("\n5. Console: a virtual ESP32 logging without pause for %s into `mos console`'s pipeline in a separate process, over RFC 2217\n", d)
	fmt.Printf("   (goal: no byte lost; resident set flat: late <= early x 1.25, or bounded by the scrollback; peak < %d MiB)\n\n", goalConsoleRSSMiB)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "   mode\tscrollback\tbaud\tsent\treceived\tlost\tlines (gaps)\tCPU s/MB\tRSS early\tRSS late\tpeak RSS\t\n")
	var window time.Duration
	for _, r := range rows {
		mb := float64(r.res.Bytes) / 1e6
		cpuPerMB := 0.0
		if mb > 0 {
			cpuPerMB = r.cpu.Seconds() / mb
		}
		lost := r.sent - r.res.Bytes
		window = r.res.RSSWindow
		flat := r.res.RSSLate > 0 && float64(r.res.RSSLate) <= float64(r.res.RSSEarly)*1.25
		fmt.Fprintf(w, "   %s\t%d\t%d\t%d\t%d\t%d %s\t%d (%d)\t%.3f\t%.1f MiB\t%.1f MiB %s\t%.1f MiB %s\t\n",
			r.mode, r.scrollback, r.baud, r.sent, r.res.Bytes, lost, mark(lost == 0 && r.res.Gaps == 0), r.res.Lines, r.res.Gaps,
			cpuPerMB, mib(r.res.RSSEarly), mib(r.res.RSSLate), mark(flat), mib(r.hwm), mark(mib(r.hwm) < goalConsoleRSSMiB))
	}
	w.Flush()
	fmt.Printf("\n   RSS early/late: the highest VmRSS sampled every 250 ms in the first and the last %s of the stream.\n", window)
	fmt.Println("   A scrollback that the stream has not filled by the end grows with it: that is the scrollback, not a leak;")
	fmt.Printf("   the %d-line row shows the resident set once the bound is reached.\n", smallScrollback)
}
