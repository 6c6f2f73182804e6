package output

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ProgressEvent says how far a long operation (erase, write, verify,
// download) has got. Done and Total count bytes.
type ProgressEvent struct {
	// Stage is what is happening, as a lowercase -ing word ("erasing",
	// "writing", "verifying"), so it reads well both in JSON and as text.
	Stage string `json:"stage"`
	// Part is what it happens to ("bootloader", "app", "fs"), or "".
	Part  string `json:"part,omitempty"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"` // 0 when unknown
}

// Progress receives progress events. Libraries (flasher, provision) take
// one as a plain function value so they depend on no terminal code; the CLI
// passes Printer.Progress. A nil Progress is valid and discards events.
type Progress func(ProgressEvent)

// Report calls f, if there is one. Libraries call f.Report(ev) instead of
// checking for nil at every call site.
func (f Progress) Report(ev ProgressEvent) {
	if f != nil {
		f(ev)
	}
}

// How often an operation of unknown size is redrawn, and how coarse the
// plain-text (log file, CI) updates are: every 10%, not every block.
const (
	ttyRedrawEvery   = 100 * time.Millisecond
	plainUnknownStep = 2 * time.Second
	plainPctStep     = 10
	barWidth         = 24
)

// progressState is the phase (stage and part) being shown.
type progressState struct {
	stage, part string
	started     bool
	finished    bool // the 100% of this phase has been shown
	start       time.Time
	lastPct     int // last percentage shown, -1 for none
	lastShown   time.Time
	barShown    bool // a bar is on the terminal line, without its newline
}

// Progress returns the callback that renders events: one redrawn bar line
// on a terminal, a line per 10% otherwise, a {"progress": ...} JSON line
// per percent in JSON mode. All of it goes to stderr.
func (p *Printer) Progress() Progress { return p.progress }

func (p *Printer) progress(ev ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &p.prog
	now := p.now()
	finished := ev.Total > 0 && ev.Done >= ev.Total
	samePhase := st.started && ev.Stage == st.stage && ev.Part == st.part
	if samePhase && st.finished {
		if finished {
			return // a repeated final event: already shown
		}
		samePhase = false // the same phase again, e.g. a retry
	}
	if !samePhase {
		if st.barShown { // leave the previous phase's last state on screen
			io.WriteString(p.stderr, "\n")
		}
		*st = progressState{stage: ev.Stage, part: ev.Part, started: true, start: now, lastPct: -1}
	}
	pct := percent(ev)

	var show bool
	switch {
	case p.json:
		show = !samePhase || pct != st.lastPct || (pct < 0 && now.Sub(st.lastShown) >= time.Second)
	case p.tty:
		show = !samePhase || pct != st.lastPct || (pct < 0 && now.Sub(st.lastShown) >= ttyRedrawEvery)
	default:
		show = !samePhase || finished ||
			(pct >= 0 && pct/plainPctStep != st.lastPct/plainPctStep) ||
			(pct < 0 && now.Sub(st.lastShown) >= plainUnknownStep)
	}
	if !show {
		return
	}
	st.lastPct, st.lastShown, st.finished = pct, now, finished

	switch {
	case p.json:
		p.jsonLineLocked("progress", ev)
	case p.tty:
		fmt.Fprintf(p.stderr, "\r%s\x1b[K", p.barLine(ev, pct, now))
		st.barShown = !finished
		if finished {
			io.WriteString(p.stderr, "\n")
		}
	default:
		io.WriteString(p.stderr, p.plainLine(ev, pct, now)+"\n")
	}
}

// clearBarLocked erases a bar before other text is written to the
// terminal; the next event draws it again.
func (p *Printer) clearBarLocked() {
	if p.prog.barShown {
		io.WriteString(p.stderr, "\r\x1b[K")
		p.prog.barShown = false
		p.prog.lastPct = -1
	}
}

// barLine: "Writing app [##########..............]  42%  420.0 KiB / 1.0 MiB  91.2 KiB/s",
// shortened to fit the terminal: a redrawn line that wraps can no longer
// be redrawn, and each update would scroll a new line instead. The rate
// goes first, then the byte counts, then the bar narrows.
func (p *Printer) barLine(ev ProgressEvent, pct int, now time.Time) string {
	width := p.width()
	rate := p.rate(ev, now)
	fits := func(s string) bool { return width <= 0 || utf8.RuneCountInString(s) < width }
	if pct < 0 {
		s := label(ev) + "  " + humanBytes(ev.Done)
		if rate != "" && fits(s+"  "+rate) {
			return s + "  " + rate
		}
		return clip(s, width)
	}
	bar := func(w int) string {
		fill := pct * w / 100
		return fmt.Sprintf(" [%s%s] %3d%%", strings.Repeat("#", fill), strings.Repeat(".", w-fill), pct)
	}
	counts := fmt.Sprintf("  %s / %s", humanBytes(ev.Done), humanBytes(ev.Total))
	if rate != "" {
		rate = "  " + rate
	}
	for _, s := range []string{
		label(ev) + bar(barWidth) + counts + rate,
		label(ev) + bar(barWidth) + counts,
		label(ev) + bar(barWidth),
	} {
		if fits(s) {
			return s
		}
	}
	// Narrow the bar to what is left beside the label and the percentage.
	if w := width - 1 - utf8.RuneCountInString(label(ev)) - len(" [] 100%"); w >= 5 {
		return label(ev) + bar(w)
	}
	return clip(fmt.Sprintf("%s %3d%%", label(ev), pct), width)
}

// width is the terminal's width in columns, 0 when unknown.
func (p *Printer) width() int {
	if p.termWidth != nil {
		return p.termWidth()
	}
	return 0
}

// clip cuts s to fit width columns (0: no limit), keeping the last column
// free so that the cursor does not wrap.
func clip(s string, width int) string {
	if width <= 1 || utf8.RuneCountInString(s) < width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1])
}

// plainLine: "Writing app: 40% (420.0 KiB of 1.0 MiB)", and on completion
// "Writing app: 100% (1.0 MiB) in 11.2s, 91.2 KiB/s".
func (p *Printer) plainLine(ev ProgressEvent, pct int, now time.Time) string {
	switch {
	case pct < 0:
		return fmt.Sprintf("%s: %s", label(ev), humanBytes(ev.Done))
	case pct == 100:
		s := fmt.Sprintf("%s: 100%% (%s)", label(ev), humanBytes(ev.Total))
		if r := p.rate(ev, now); r != "" {
			s += fmt.Sprintf(" in %.1fs, %s", now.Sub(p.prog.start).Seconds(), r)
		}
		return s
	}
	return fmt.Sprintf("%s: %d%% (%s of %s)", label(ev), pct, humanBytes(ev.Done), humanBytes(ev.Total))
}

// rate is the average speed of the phase, once it has run long enough for
// the number to mean something.
func (p *Printer) rate(ev ProgressEvent, now time.Time) string {
	d := now.Sub(p.prog.start)
	if d < 500*time.Millisecond || ev.Done <= 0 {
		return ""
	}
	return humanBytes(int64(float64(ev.Done)/d.Seconds())) + "/s"
}

func percent(ev ProgressEvent) int {
	if ev.Total <= 0 {
		return -1
	}
	done := min(max(ev.Done, 0), ev.Total)
	return int(done * 100 / ev.Total)
}

// label is "Writing app" from stage "writing" and part "app".
func label(ev ProgressEvent) string {
	s := strings.TrimSpace(ev.Stage + " " + ev.Part)
	if s == "" {
		return "Working"
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

func humanBytes(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1024*1024))
	}
}
