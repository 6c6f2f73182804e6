package serve

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
)

// linePort is a port.Port that records what is done to its lines.
type linePort struct {
	mu     sync.Mutex
	ops    []string
	at     []time.Time
	baud   int
	closed chan struct{}
}

func newLinePort() *linePort { return &linePort{baud: 115200, closed: make(chan struct{})} }

func (p *linePort) record(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops = append(p.ops, op)
	p.at = append(p.at, time.Now())
}

func (p *linePort) log() ([]string, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ops), slices.Clone(p.at)
}

func (p *linePort) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops, p.at = nil, nil
}

func (p *linePort) Read(b []byte) (int, error) {
	select {
	case <-time.After(pollInterval):
		return 0, port.ErrTimeout
	case <-p.closed:
		return 0, port.ErrClosed
	}
}
func (p *linePort) Write(b []byte) (int, error)        { return len(b), nil }
func (p *linePort) Close() error                       { close(p.closed); return nil }
func (p *linePort) SetReadTimeout(time.Duration) error { return nil }
func (p *linePort) SetBaudRate(baud int) error {
	p.mu.Lock()
	p.baud = baud
	p.mu.Unlock()
	p.record(fmt.Sprint("B", baud))
	return nil
}
func (p *linePort) BaudRate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.baud
}
func (p *linePort) SetDTR(on bool) error    { p.record(fmt.Sprint("D", b2i(on))); return nil }
func (p *linePort) SetRTS(on bool) error    { p.record(fmt.Sprint("R", b2i(on))); return nil }
func (p *linePort) ResetInputBuffer() error { p.record("P"); return nil }
func (p *linePort) Drain() error            { return nil }
func (p *linePort) Name() string            { return "test-port" }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The download-mode reset as played on the port: EN low (R1 with D0), then
// EN released with IO0 low (D1 R0), then IO0 released (D0).
var downloadSeq = []string{"D0", "R1", "D1", "R0", "D0"}

// hardSeq is the EN pulse with IO0 released.
var hardSeq = []string{"D0", "R1", "R0"}

// TestESPLines feeds the line changes real clients send, with their
// timing, and checks what reaches the port.
func TestESPLines(t *testing.T) {
	tests := []struct {
		name   string
		client string // D/R changes and W<ms> waits, as the client sends them
		want   []string
		io0Low time.Duration // at least this long after EN's release (0: DefaultResetDelay)
	}{
		// mos --reset classic (flasher.ClassicReset(50ms)).
		{"mos classic", "D0|R1|W100|D1|R0|W50|D0", append([]string{"D0"}, downloadSeq...), 0},
		// esptool-js 0.7 ClassicReset: setSignals(false, true), 100 ms,
		// setSignals(true, false), 50 ms, setSignals(false, false); a
		// bridge sends DTR before RTS.
		{"esptool-js classic", "D0|R1|W100|D1|R0|W50|D0|R0", append([]string{"D0"}, downloadSeq...), 0},
		// esptool ClassicReset: _setRTS re-sends DTR (esptool/reset.py).
		{"esptool classic", "D0|R1|D0|W100|D1|R0|D1|W50|D0", append([]string{"D0", "D0"}, downloadSeq...), 0},
		// A long reset delay (esptool's and mos's second attempt, for a
		// slow EN circuit): IO0 is held until the client releases DTR.
		{"classic, long delay", "D0|R1|W100|D1|R0|W550|D0", append([]string{"D0"}, downloadSeq...), 400 * time.Millisecond},
		// mos's flasher.HardReset.
		{"mos hard reset", "D0|R1|W100|R0", append([]string{"D0"}, hardSeq...), 0},
		// esptool HardReset: RTS pulse, DTR re-sent after each RTS change.
		{"esptool hard reset", "R1|D0|W100|R0|D0", append([]string{"D0"}, hardSeq...), 0},
		// RTS asserted alone holds nothing: EN is driven only by sequences.
		{"RTS asserted alone", "R1|W50", nil, 0},
		// RTS released without having been asserted is no reset request.
		{"RTS released alone", "R0|W50", nil, 0},
		// Two download requests: each DTR assertion after a release.
		{"two classic resets", "D0|R1|W100|D1|R0|W50|D0|W200|D0|R1|W100|D1|R0|W50|D0",
			slices.Concat([]string{"D0"}, downloadSeq, []string{"D0"}, downloadSeq), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newLinePort()
			s, err := New(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p.reset()
			l := newESPLines(s)
			for _, step := range splitSeq(tt.client) {
				var err error
				switch step[0] {
				case 'D':
					err = l.SetDTR(step[1] == '1')
				case 'R':
					err = l.SetRTS(step[1] == '1')
				case 'W':
					var ms int
					fmt.Sscan(step[1:], &ms)
					time.Sleep(time.Duration(ms) * time.Millisecond)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			l.finish()
			ops, at := p.log()
			if !slices.Equal(ops, tt.want) {
				t.Fatalf("port saw %v, want %v", ops, tt.want)
			}
			checkTiming(t, ops, at, max(tt.io0Low, DefaultResetDelay))
		})
	}
}

func splitSeq(s string) []string {
	var out []string
	for start, i := 0, 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '|' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// checkTiming checks every played sequence's waits: EN low (R1 to the
// release) at least 100 ms, and IO0 low after EN's release for at least
// io0Low.
func checkTiming(t *testing.T, ops []string, at []time.Time, io0Low time.Duration) {
	t.Helper()
	for i := range ops {
		if ops[i] != "R1" {
			continue
		}
		j := slices.Index(ops[i:], "R0") + i
		if j < i {
			t.Errorf("EN never released after op %d: %v", i, ops)
			continue
		}
		if d := at[j].Sub(at[i]); d < 100*time.Millisecond {
			t.Errorf("EN low for %v, want >= 100ms", d)
		}
		if ops[j-1] == "D1" { // download: IO0 held low while EN rises
			k := slices.Index(ops[j:], "D0") + j
			if k < j {
				t.Errorf("IO0 never released: %v", ops)
			} else if d := at[k].Sub(at[j]); d < io0Low {
				t.Errorf("IO0 released %v after EN, want >= %v", d, io0Low)
			}
		}
	}
}
