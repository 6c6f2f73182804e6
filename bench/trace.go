package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/slip"
)

// tracePort records when each command frame leaves and each reply frame
// arrives, so that a run's wall time can be split into phases without
// touching the flasher. flasher.Conn writes one whole SLIP frame per Write,
// so the opcode is the frame's third byte (no opcode needs escaping).
type tracePort struct {
	port.Port
	start time.Time

	mu     sync.Mutex
	dec    slip.Decoder
	events []traceEvent
}

type traceEvent struct {
	at  time.Duration // since start
	out bool          // command sent (else reply received)
	op  byte          // opOther for a frame that is not a reply (OHAI)
	n   int           // bytes written, SLIP framing included
}

const opOther = 0xFF

func newTracePort(p port.Port, start time.Time) *tracePort {
	t := &tracePort{Port: p, start: start}
	t.dec.MaxFrame = 0x4000 + 1024
	return t
}

func (t *tracePort) Write(b []byte) (int, error) {
	if len(b) >= 3 && b[0] == slip.End && b[1] == 0 {
		t.mu.Lock()
		t.events = append(t.events, traceEvent{at: time.Since(t.start), out: true, op: b[2], n: len(b)})
		t.mu.Unlock()
	}
	return t.Port.Write(b)
}

func (t *tracePort) Read(b []byte) (int, error) {
	n, err := t.Port.Read(b)
	t.mu.Lock()
	for _, c := range b[:n] {
		if r, _ := t.dec.Push(c); r == slip.Frame {
			f := t.dec.Frame()
			op := byte(opOther)
			if len(f) >= 8 && f[0] == 1 {
				op = f[1]
			}
			t.events = append(t.events, traceEvent{at: time.Since(t.start), op: op})
		}
	}
	t.mu.Unlock()
	return n, err
}

// ResetInputBuffer also forgets a half-decoded frame, as the flasher does.
func (t *tracePort) ResetInputBuffer() error {
	t.mu.Lock()
	t.dec.Reset()
	t.mu.Unlock()
	return t.Port.ResetInputBuffer()
}

// phase is a named share of a run's wall time.
type phase struct {
	name string
	d    time.Duration
	cmds int    // commands sent in it
	note string // extra detail
}

// Phase names, in the order a first flash goes through them.
const (
	phConnect = "connect"     // port open, reset, sync, detect
	phBaud    = "baud change" // CHANGE_BAUDRATE and the ping after it
	phStub    = "stub upload" // MEM_BEGIN/DATA/END and the OHAI greeting
	phAttach  = "attach"      // SPI_ATTACH, SPI_SET_PARAMS
	phDiff    = "diff MD5"    // comparing flash with the image first
	phZlib    = "zlib (host)" // compressing before FLASH_DEFL_BEGIN
	phBlocks  = "blocks"      // FLASH_DEFL_BEGIN and the data blocks
	phEnd     = "DEFL_END"    // waiting for the last block's flash write
	phVerify  = "verify MD5"  // the MD5 after writing
)

// phases splits [0, end) among the phases: each command's interval runs
// until the next command is sent and belongs to the command's phase. The
// host's pause between the last reply and FLASH_DEFL_BEGIN (compression)
// is moved to its own phase.
func (t *tracePort) phases(end time.Duration, baud int) []phase {
	t.mu.Lock()
	ev := append([]traceEvent(nil), t.events...)
	t.mu.Unlock()

	order := []string{phConnect, phBaud, phStub, phAttach, phDiff, phZlib, phBlocks, phEnd, phVerify}
	acc := map[string]*phase{}
	for _, n := range order {
		acc[n] = &phase{name: n}
	}
	cur := phConnect
	curFrom := time.Duration(0)
	wrote := false // a FLASH_DEFL_END was sent: MD5s now verify
	var lastIn time.Duration
	var blockBytes, blocks int
	// Per data block: how much longer than its own wire time the reply
	// took (turnaround latency, plus stalls while the stub's flash write
	// of the previous block is still running).
	var excess []time.Duration
	var inFlight *traceEvent
	for i, e := range ev {
		if !e.out {
			lastIn = e.at
			if inFlight != nil && (e.op == flasher.OpFlashDeflData || e.op == flasher.OpFlashData) {
				excess = append(excess, e.at-inFlight.at-wireTime(inFlight.n, baud))
				inFlight = nil
			}
			continue
		}
		next := cur
		switch e.op {
		case flasher.OpChangeBaud:
			next = phBaud
		case flasher.OpMemBegin, flasher.OpMemData, flasher.OpMemEnd:
			next = phStub
		case flasher.OpSPIAttach, flasher.OpSPISetParams:
			next = phAttach
		case flasher.OpSPIFlashMD5:
			next = phDiff
			if wrote {
				next = phVerify
			}
		case flasher.OpFlashDeflBegin, flasher.OpFlashBegin:
			next = phBlocks
			if gap := e.at - lastIn; lastIn > curFrom && gap > 0 {
				acc[cur].d += lastIn - curFrom
				acc[phZlib].d += gap
				curFrom = e.at
			}
		case flasher.OpFlashDeflData, flasher.OpFlashData:
			next = phBlocks
			blocks++
			blockBytes += e.n
			inFlight = &ev[i]
		case flasher.OpFlashDeflEnd, flasher.OpFlashEnd:
			next = phEnd
			wrote = true
		case flasher.OpReadReg:
			// a ping after a baud change stays in that phase
		}
		if next != cur {
			acc[cur].d += e.at - curFrom
			cur, curFrom = next, e.at
		}
		acc[next].cmds++
	}
	acc[cur].d += end - curFrom

	if p := acc[phBlocks]; blocks > 0 {
		p.note = fmt.Sprintf("%d blocks, %d B framed: line busy %.0f%%",
			blocks, blockBytes, 100*wireTime(blockBytes, baud).Seconds()/p.d.Seconds())
		if len(excess) > 0 {
			var sum time.Duration
			for _, x := range excess {
				sum += x
			}
			slices.Sort(excess)
			p.note += fmt.Sprintf("; reply beyond wire time: median %.1f ms, max %.1f ms, total %.2fs",
				ms(excess[len(excess)/2]), ms(excess[len(excess)-1]), sum.Seconds())
		}
	}
	var out []phase
	for _, n := range order {
		if p := acc[n]; p.d > 0 {
			out = append(out, *p)
		}
	}
	return out
}

// wireTime is how long n bytes take on the UART: 10 bit times each.
func wireTime(n, baud int) time.Duration { return seconds(float64(n) * 10 / float64(baud)) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// formatPhases renders phases on one line: "connect 0.41s, stub upload 0.12s (3), ...".
func formatPhases(ps []phase) string {
	var parts []string
	for _, p := range ps {
		s := fmt.Sprintf("%s %.2fs", p.name, p.d.Seconds())
		if p.cmds > 1 && p.name != phConnect && p.name != phBlocks {
			s += fmt.Sprintf(" (%d cmds)", p.cmds)
		}
		if p.note != "" {
			s += " (" + p.note + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
