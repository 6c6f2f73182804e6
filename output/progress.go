package output

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
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

// progressLine is the JSON form of a progress event on stderr (--json):
// the event and the timing the text display shows, so a GUI or a script
// can draw its own bar.
type progressLine struct {
	ProgressEvent
	ElapsedS float64 `json:"elapsed_s"`
	// RateBps is the average rate of the phase in bytes per second, and
	// ETAS the estimated seconds left; both absent until they mean something.
	RateBps *int64   `json:"rate_bps,omitempty"`
	ETAS    *float64 `json:"eta_s,omitempty"`
	// Finished marks the last event of a phase.
	Finished bool `json:"finished,omitempty"`
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

// How often a running display is redrawn, and how coarse the plain-text
// (log file, CI) updates are: every 10%, not every block.
const (
	ttyRedrawEvery   = 100 * time.Millisecond
	plainUnknownStep = 5 * time.Second
	jsonUnknownStep  = time.Second
	plainPctStep     = 10
	barMax           = 30 // columns of bar at most
	barWide          = 20 // fields go before the bar gets narrower
	barMin           = 10 // narrower than this the bar says nothing
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
	task        int  // the Task shown (Printer.taskSeq), 0 for byte progress
	announced   bool // a Task's first line has been printed (plain text)
	// starts holds when each stage of the current part began.
	starts map[string]time.Time
}

// Progress returns the callback that renders events: one redrawn line on a
// terminal (a bar drawn by bubbles' progress component, percent, bytes,
// rate, elapsed time and ETA, cut to the terminal's width), a line per 10%
// otherwise, and a {"progress": ...} JSON line per percent in JSON mode.
// Each phase ends with a summary line. All of it goes to stderr.
func (p *Printer) Progress() Progress { return p.progress }

func (p *Printer) progress(ev ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &p.prog
	now := p.now()
	finished := ev.Total > 0 && ev.Done >= ev.Total
	samePhase := st.started && st.task == 0 && ev.Stage == st.stage && ev.Part == st.part
	if samePhase && st.finished {
		if finished {
			return // a repeated final event: already shown
		}
		samePhase = false // the same phase again, e.g. a retry
	}
	// A region written in several spans alternates writing and verifying:
	// those share one line, redrawn in place, each stage timed from its
	// first event.
	_, seen := st.starts[ev.Stage]
	switch {
	case samePhase:
	case st.started && st.task == 0 && ev.Part == st.part && st.starts != nil && (!st.finished || seen):
		if !seen {
			st.starts[ev.Stage] = now
		}
		st.stage, st.start, st.lastPct, st.finished = ev.Stage, st.starts[ev.Stage], -1, false
		samePhase = false
	default:
		p.endLineLocked()
		*st = progressState{stage: ev.Stage, part: ev.Part, started: true, start: now, lastPct: -1,
			starts: map[string]time.Time{ev.Stage: now}}
		seen = false
	}
	pct := percent(ev)

	var show bool
	switch {
	case p.json:
		show = !samePhase || pct != st.lastPct || (pct < 0 && now.Sub(st.lastShown) >= jsonUnknownStep)
	case p.tty:
		show = !samePhase || pct != st.lastPct || now.Sub(st.lastShown) >= ttyRedrawEvery
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
		p.jsonLineLocked("progress", p.progressJSON(ev, pct, now, finished))
	case p.tty:
		if finished && !samePhase && !seen && st.start.Equal(now) {
			// Done at once (a region found unchanged): nothing was timed.
			p.settleLocked(fmt.Sprintf("%s: %s", label(ev), humanBytes(ev.Total)))
			return
		}
		if finished {
			p.settleLocked(p.summaryLine(ev, now))
			return
		}
		p.redrawLocked(p.barLine(ev, pct, now))
		st.barShown = true
	default:
		io.WriteString(p.stderr, p.plainLine(ev, pct, now)+"\n")
	}
}

// Task shows an operation whose progress the device does not report (a
// chip erase: one command that takes seconds; connecting: a few steps)
// while run runs: a spinner and the elapsed time on a terminal, a line at
// the start and every few seconds otherwise, JSON events each second with
// --json; then a summary line "Erasing flash: done in 5.2s". run may call
// step to end the current step and start the next (connecting, uploading
// the stub, changing baud), each with its own summary. It returns run's
// error; a failed step's line is removed, as the error says what happened.
func (p *Printer) Task(stage, part string, run func(step func(stage, part string)) error) error {
	p.mu.Lock()
	p.taskSeq++
	id := p.taskSeq
	p.startTaskLocked(ProgressEvent{Stage: stage, Part: part}, id)
	p.mu.Unlock()

	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		every := ttyRedrawEvery
		if !p.tty || p.json {
			every = jsonUnknownStep
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				if p.prog.task == id {
					p.taskTickLocked(false)
				}
				p.mu.Unlock()
			}
		}
	}()
	err := run(func(stage, part string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.prog.task == id {
			p.endTaskLocked(nil)
		}
		p.startTaskLocked(ProgressEvent{Stage: stage, Part: part}, id)
	})
	close(stop)
	<-ticked

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.prog.task == id {
		p.endTaskLocked(err)
	}
	return err
}

func (p *Printer) startTaskLocked(ev ProgressEvent, id int) {
	p.endLineLocked()
	p.prog = progressState{stage: ev.Stage, part: ev.Part, started: true, start: p.now(), lastPct: -1, task: id}
	p.taskTickLocked(true)
}

// endTaskLocked shows the summary of the current Task step.
func (p *Printer) endTaskLocked(err error) {
	ev := ProgressEvent{Stage: p.prog.stage, Part: p.prog.part}
	d := p.now().Sub(p.prog.start)
	switch {
	case p.json:
		p.jsonLineLocked("progress", progressLine{ProgressEvent: ev, ElapsedS: round1(d.Seconds()), Finished: err == nil})
	case err != nil:
		p.clearBarLocked()
	case p.tty:
		p.settleLocked(fmt.Sprintf("%s: done in %s", label(ev), seconds(d)))
	default:
		io.WriteString(p.stderr, fmt.Sprintf("%s: done in %s\n", label(ev), seconds(d)))
	}
	p.prog = progressState{}
}

// taskTickLocked shows a running Task's state.
func (p *Printer) taskTickLocked(first bool) {
	st := &p.prog
	ev := ProgressEvent{Stage: st.stage, Part: st.part}
	now := p.now()
	d := now.Sub(st.start)
	switch {
	case p.json:
		p.jsonLineLocked("progress", progressLine{ProgressEvent: ev, ElapsedS: round1(d.Seconds())})
	case p.tty:
		frames := spinner.Line.Frames
		frame := frames[int(d/spinner.Line.FPS)%len(frames)]
		p.redrawLocked(clip(fmt.Sprintf("%s %s  %s", label(ev), frame, seconds(d)), p.width()))
		st.barShown = true
	case first:
		// In a log, a step that ends within a second gets only its
		// summary line; a longer one is announced when it has run a second.
		return
	case !st.announced:
		io.WriteString(p.stderr, label(ev)+"...\n")
		st.announced = true
	case now.Sub(st.lastShown) >= plainUnknownStep:
		io.WriteString(p.stderr, fmt.Sprintf("%s: %s\n", label(ev), seconds(d)))
	default:
		return
	}
	st.lastShown = now
}

// redrawLocked replaces the terminal's current line by s.
func (p *Printer) redrawLocked(s string) {
	io.WriteString(p.stderr, "\r"+s+ansi.EraseLineRight)
}

// settleLocked replaces the terminal's current line by s, cut to its
// width, and ends the line: a phase's last word stays on screen.
func (p *Printer) settleLocked(s string) {
	p.redrawLocked(clip(s, p.width()))
	io.WriteString(p.stderr, "\n")
	p.prog.barShown = false
}

// endLineLocked leaves a previous phase's last state on screen and moves
// to a fresh line.
func (p *Printer) endLineLocked() {
	if p.prog.barShown {
		io.WriteString(p.stderr, "\n")
		p.prog.barShown = false
	}
}

// clearBarLocked erases a bar before other text is written to the
// terminal; the next event draws it again.
func (p *Printer) clearBarLocked() {
	if p.prog.barShown {
		io.WriteString(p.stderr, "\r"+ansi.EraseEntireLine)
		p.prog.barShown = false
		p.prog.lastPct = -1
	}
}

func (p *Printer) progressJSON(ev ProgressEvent, pct int, now time.Time, finished bool) progressLine {
	d := now.Sub(p.prog.start)
	l := progressLine{ProgressEvent: ev, ElapsedS: round1(d.Seconds()), Finished: finished}
	if r, ok := p.rateOf(ev, now); ok {
		bps := int64(r)
		l.RateBps = &bps
		if eta, ok := p.eta(ev, now); ok && !finished {
			s := round1(eta.Seconds())
			l.ETAS = &s
		}
	}
	return l
}

// barLine is one redrawn terminal line:
//
//	Writing app ███████████░░░░░░░░░░░  42%  420.0 KiB / 1.0 MiB  91.2 KiB/s  4.6s  ETA 6s
//
// never as wide as the terminal: a redrawn line that wraps can no longer be
// redrawn, and each update would scroll a new line instead. What does not
// fit goes, least useful first: elapsed time, rate, byte counts, ETA; then
// the bar narrows, then it goes.
func (p *Printer) barLine(ev ProgressEvent, pct int, now time.Time) string {
	width := p.width()
	d := now.Sub(p.prog.start)
	rate := ""
	if r, ok := p.rateOf(ev, now); ok {
		rate = humanBytes(int64(r)) + "/s"
	}
	if pct < 0 {
		fields := []string{label(ev), humanBytes(ev.Done), rate, seconds(d)}
		return fitFields(fields, width)
	}
	eta := ""
	if e, ok := p.eta(ev, now); ok {
		eta = "ETA " + seconds(e)
	}
	counts := humanBytes(ev.Done) + " / " + humanBytes(ev.Total)
	pctText := fmt.Sprintf("%3d%%", pct)
	// Optional fields by priority; shown in reading order.
	type field struct {
		text string
		pos  int
	}
	optional := []field{{eta, 4}, {counts, 1}, {rate, 2}, {seconds(d), 3}}
	// A field is dropped before the bar gets shorter than barWide; only
	// when none is left does the bar narrow down to barMin.
	for n := len(optional); n >= 0; n-- {
		shown := make([]string, 5)
		for _, f := range optional[:n] {
			shown[f.pos] = f.text
		}
		tail := pctText
		for _, s := range shown[1:] {
			if s != "" {
				tail += "  " + s
			}
		}
		fixed := utf8.RuneCountInString(label(ev)) + 1 + 1 + utf8.RuneCountInString(tail)
		barW := barMax
		if width > 0 {
			barW = min(barMax, width-1-fixed)
		}
		if barW >= barWide || (n == 0 && barW >= barMin) {
			return label(ev) + " " + p.bar(barW, pct) + " " + tail
		}
	}
	return clip(label(ev)+" "+pctText, width)
}

// bar draws w columns of bar with bubbles' progress component.
func (p *Printer) bar(w, pct int) string {
	m := progress.New(progress.WithDefaultGradient(), progress.WithoutPercentage(),
		progress.WithWidth(w), progress.WithColorProfile(p.colors))
	return m.ViewAs(float64(pct) / 100)
}

// summaryLine ends a phase: "Writing app: 1.0 MiB in 11.2s (91.2 KiB/s)".
func (p *Printer) summaryLine(ev ProgressEvent, now time.Time) string {
	s := fmt.Sprintf("%s: %s in %s", label(ev), humanBytes(ev.Total), seconds(now.Sub(p.prog.start)))
	if r, ok := p.rateOf(ev, now); ok {
		s += " (" + humanBytes(int64(r)) + "/s)"
	}
	return s
}

// fitFields joins the non-empty fields with two spaces, dropping them from
// the end until the line fits.
func fitFields(fields []string, width int) string {
	for n := len(fields); n > 1; n-- {
		var parts []string
		for _, f := range fields[:n] {
			if f != "" {
				parts = append(parts, f)
			}
		}
		s := strings.Join(parts, "  ")
		if width <= 0 || lipgloss.Width(s) < width {
			return s
		}
	}
	return clip(fields[0], width)
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
	if width <= 1 || lipgloss.Width(s) < width {
		return s
	}
	return ansi.Truncate(s, width-1, "")
}

// plainLine: "Writing app: 40% (420.0 KiB of 1.0 MiB, ETA 6s)", and on
// completion "Writing app: 100% (1.0 MiB) in 11.2s, 91.2 KiB/s".
func (p *Printer) plainLine(ev ProgressEvent, pct int, now time.Time) string {
	switch {
	case pct < 0:
		return fmt.Sprintf("%s: %s", label(ev), humanBytes(ev.Done))
	case pct == 100:
		s := fmt.Sprintf("%s: 100%% (%s)", label(ev), humanBytes(ev.Total))
		if r, ok := p.rateOf(ev, now); ok {
			s += fmt.Sprintf(" in %s, %s/s", seconds(now.Sub(p.prog.start)), humanBytes(int64(r)))
		}
		return s
	}
	s := fmt.Sprintf("%s: %d%% (%s of %s", label(ev), pct, humanBytes(ev.Done), humanBytes(ev.Total))
	if e, ok := p.eta(ev, now); ok {
		s += ", ETA " + seconds(e)
	}
	return s + ")"
}

// rateOf is the average speed of the phase in bytes per second, once it
// has run long enough for the number to mean something.
func (p *Printer) rateOf(ev ProgressEvent, now time.Time) (float64, bool) {
	d := now.Sub(p.prog.start)
	if d < 500*time.Millisecond || ev.Done <= 0 {
		return 0, false
	}
	return float64(ev.Done) / d.Seconds(), true
}

// eta is the time left at the phase's average rate.
func (p *Printer) eta(ev ProgressEvent, now time.Time) (time.Duration, bool) {
	r, ok := p.rateOf(ev, now)
	if !ok || ev.Total <= 0 || ev.Done >= ev.Total {
		return 0, false
	}
	return time.Duration(float64(ev.Total-ev.Done) / r * float64(time.Second)), true
}

// seconds renders a duration the way people read it: "0.4s", "12s", "3m05s".
func seconds(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

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

// colorProfile is what the terminal on stderr can show; Ascii (no colour)
// when it is not one.
func colorProfile(w io.Writer, tty bool) termenv.Profile {
	if !tty {
		return termenv.Ascii
	}
	return termenv.NewOutput(w).EnvColorProfile()
}
