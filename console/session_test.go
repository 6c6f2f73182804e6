package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
)

// collect runs Next until cond holds for what arrived, or fails the test.
func collect(t *testing.T, s *Session, timeout time.Duration, what string, cond func(lines []Line, st []Status) bool) ([]Line, []Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lines []Line
	var sts []Status
	for !cond(lines, sts) {
		b, err := s.Next(ctx)
		if err != nil {
			var texts []string
			for _, l := range lines {
				texts = append(texts, l.Text)
			}
			t.Fatalf("waiting for %s: %v; got lines %q and states %v", what, err, texts, sts)
		}
		lines = append(lines, b.Lines...)
		sts = append(sts, b.Status...)
	}
	return lines, sts
}

func hasLine(lines []Line, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l.Text, sub) {
			return true
		}
	}
	return false
}

func hasState(sts []Status, st State) bool {
	for _, s := range sts {
		if s.State == st {
			return true
		}
	}
	return false
}

// The console survives the board being unplugged and plugged back in: it
// reports the loss, reopens the port when it is back and shows the new
// boot.
func TestSessionReconnectsAfterUnplug(t *testing.T) {
	addr := "sim://esp32?fast=1&id=" + t.Name()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var devMu sync.Mutex
	var opened []port.Port
	open := func(ctx context.Context, a string, baud int) (port.Port, error) {
		p, err := port.Open(ctx, a, baud)
		if err == nil {
			devMu.Lock()
			opened = append(opened, p)
			devMu.Unlock()
		}
		return p, err
	}
	s, err := NewSession(ctx, Config{Ports: []string{addr}, Open: open, RetryEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, s, 5*time.Second, "the power-on banner", func(l []Line, _ []Status) bool { return hasLine(l, "rst:0x1") })
	devMu.Lock()
	dev := port.SimDevice(opened[0])
	devMu.Unlock()
	dev.Unplug()
	collect(t, s, 5*time.Second, "the loss to be noticed", func(_ []Line, st []Status) bool { return hasState(st, StateReconnecting) })
	time.Sleep(100 * time.Millisecond) // a few failed reopens
	dev.Replug()
	// What the ROM prints in its first milliseconds may be gone before the
	// port is open again, as with a real USB bridge that enumerates late;
	// any line read after reconnecting proves the reader is back.
	collect(t, s, 5*time.Second, "reconnection and output", func(l []Line, st []Status) bool {
		return hasState(st, StateConnected) && len(l) > 0
	})
	cancel()
	s.Wait()
	dev.Close()
}

// fastPort produces a deterministic stream as fast as it is read, to check
// that nothing is lost while the consumer is slow.
type fastPort struct {
	mu     sync.Mutex
	n, max int
	closed bool
	port.Port
}

func (p *fastPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n >= p.max {
		time.Sleep(time.Millisecond)
		return 0, port.ErrTimeout
	}
	i := 0
	for i < len(b) && p.n < p.max {
		// lines "000123\n": 7 bytes each
		line := fmt.Sprintf("%06d\n", p.n/7)
		b[i] = line[p.n%7]
		i++
		p.n++
	}
	return i, nil
}
func (p *fastPort) SetReadTimeout(time.Duration) error { return nil }
func (p *fastPort) Close() error                       { return nil }
func (p *fastPort) Name() string                       { return "fast" }
func (p *fastPort) Write(b []byte) (int, error)        { return len(b), nil }

func TestNoBytesLostWhileTheConsumerIsSlow(t *testing.T) {
	const lines = 200000
	fp := &fastPort{max: lines * 7}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := NewSession(ctx, Config{Ports: []string{"fast"}, Open: func(context.Context, string, int) (port.Port, error) { return fp, nil }})
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for next < lines {
		time.Sleep(2 * time.Millisecond) // a slow screen
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range b.Lines {
			if want := fmt.Sprintf("%06d", next); l.Text != want {
				t.Fatalf("line %q, want %q: bytes lost or reordered", l.Text, want)
			}
			next++
		}
	}
	if got := s.Received(); got != lines*7 {
		t.Fatalf("received %d bytes, want %d", got, lines*7)
	}
}

// Lend gives the port to another user and the reader keeps off it until
// that user is done.
func TestLendPausesTheReader(t *testing.T) {
	addr := "sim://esp32?fast=1&id=" + t.Name()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := NewSession(ctx, Config{Ports: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, s, 5*time.Second, "connection", func(_ []Line, st []Status) bool { return hasState(st, StateConnected) })
	var seen bytes.Buffer
	err = s.Lend(ctx, 0, "mos test", func(p port.Port) error {
		// The console's own keys keep off the port meanwhile.
		if err := s.Send(0, []byte("x")); err == nil || !strings.Contains(err.Error(), "in use by mos test") {
			t.Errorf("Send while lent: %v, want it refused", err)
		}
		// Reset the board: its banner must come to us, not to the console.
		if err := s.resetPort(ctx, p, false); err != nil {
			return err
		}
		p.SetReadTimeout(100 * time.Millisecond)
		buf := make([]byte, 4096)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(seen.String(), "rst:0x1") {
			n, _ := p.Read(buf)
			seen.Write(buf[:n])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(seen.String(), "rst:0x1") {
		t.Fatalf("the borrower did not get the device's output: %q", seen.String())
	}
	_, sts := collect(t, s, 5*time.Second, "the port back", func(_ []Line, st []Status) bool {
		return hasState(st, StateLent) && hasState(st, StateConnected)
	})
	for _, st := range sts {
		if st.State == StateLent && st.Who != "mos test" {
			t.Errorf("lent to %q, want mos test", st.Who)
		}
	}
	// The borrower's error comes back to it.
	boom := errors.New("boom")
	if err := s.Lend(ctx, 0, "x", func(port.Port) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Lend returned %v, want the borrower's error", err)
	}
	cancel()
	s.Wait()
}

func TestSessionGivesUpOnABadAddress(t *testing.T) {
	ctx := context.Background()
	s, err := NewSession(ctx, Config{Ports: []string{"nosuch://x"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := s.Next(ctx); err != nil {
			break
		}
	}
	var pe *port.Error
	if err := s.Err(); !errors.As(err, &pe) || pe.Kind != port.KindBadAddress {
		t.Fatalf("Err() = %v, want the bad address", err)
	}
}

func TestLogFileAndRPC(t *testing.T) {
	var log bytes.Buffer
	s := &Session{cfg: Config{LogFile: &log}, devs: []*device{{name: "a"}}}
	d := s.devs[0]
	d.pendingT = t0
	l := s.finish(d, []byte(`"""{"id":1,"result":true}0a0b0c0d"""`+"\n"))
	if !l.RPC || l.Text != `{"id":1,"result":true}` {
		t.Fatalf("frame not recognised: %+v", l)
	}
	s.finish(d, []byte("\x1b[0;32mI (5) app: ok\x1b[0m\r\n"))
	want := "2026-12-07T02:00:00.000Z rpc: {\"id\":1,\"result\":true}\n2026-12-07T02:00:00.000Z I (5) app: ok\n"
	if log.String() != want {
		t.Fatalf("log file:\n%q\nwant\n%q", log.String(), want)
	}
}

type annot struct{ seen []string }

func (a *annot) Decode(line string) (string, bool) {
	a.seen = append(a.seen, line)
	if strings.HasPrefix(line, "Backtrace:") {
		return "0x400d1234: app_main at main.c:12", true
	}
	return "", false
}

func TestAnnotatorSeesEveryLine(t *testing.T) {
	a := &annot{}
	s := &Session{cfg: Config{Annotator: a}, devs: []*device{{}}}
	b := s.process([]chunk{{data: []byte("Guru Meditation Error\r\nBacktrace: 0x400d1234:0x3ffb0000\r\nRebooting...\r\npart")}}, nil)
	if len(a.seen) != 3 || a.seen[1] != "Backtrace: 0x400d1234:0x3ffb0000" {
		t.Fatalf("annotator saw %q", a.seen)
	}
	if b.Lines[1].Annot == "" || b.Lines[0].Annot != "" {
		t.Fatalf("annotations on the wrong lines: %+v", b.Lines)
	}
	if b.Partial[0] != "part" {
		t.Fatalf("partial %q, want part", b.Partial[0])
	}
}

func TestNoteReachesTheLog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log bytes.Buffer
	s, err := NewSession(ctx, Config{Ports: []string{"x"}, LogFile: &log, Open: func(context.Context, string, int) (port.Port, error) {
		return &scriptPort{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	var _ PortLender = s
	s.Note(0, "mos config set: done")
	lines, _ := collect(t, s, 2*time.Second, "the note", func(l []Line, _ []Status) bool { return hasLine(l, "config set") })
	for _, l := range lines {
		if strings.Contains(l.Text, "config set") && !l.Mark {
			t.Fatalf("note not marked as the console's own: %+v", l)
		}
	}
	if !strings.Contains(log.String(), "--- mos config set: done") {
		t.Fatalf("log file: %q", log.String())
	}
}

func TestRPCFramesRecognised(t *testing.T) {
	tests := []struct {
		text string
		rpc  bool
	}{
		{`"""{"id":1,"result":true}0a0b0c0d"""`, true},
		{`"""{"id":1,"result":true}"""`, true},
		{`{"id":1,"result":true}0a0b0c0d`, true},
		{`{"id":1,"result":true}`, true},
		{`{"method":"Sys.GetInfo","id":3}`, true},
		{"\"\"\"\x04\"\"\"", true},
		{`{"temperature": 21.5}`, false}, // a firmware's own JSON log line
		{`"""{"id":1}`, false},           // unbalanced delimiters
		{`{not json}`, false},
		{`mgos_init.c:33  {"id":1}`, false},
	}
	for _, tc := range tests {
		if _, ok := parseRPC(tc.text); ok != tc.rpc {
			t.Errorf("parseRPC(%q) = %v, want %v", tc.text, ok, tc.rpc)
		}
	}
	// The newline the device writes before each frame is hidden with it;
	// other blank lines stay.
	s := &Session{devs: []*device{{}}}
	b := s.process([]chunk{{data: []byte("ets Jun  8 2016\r\n\r\nrst:0x1\nok\n\n\"\"\"{\"id\":1,\"result\":1}\"\"\"\nnext\n")}}, nil)
	var got []string
	for _, l := range b.Lines {
		if l.RPC {
			got = append(got, "<rpc>")
		} else {
			got = append(got, l.Text)
		}
	}
	if want := []string{"ets Jun  8 2016", "", "rst:0x1", "ok", "<rpc>", "next"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}
