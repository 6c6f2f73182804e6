package console

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// Backend is what the model needs of a Session (tests give it a fake).
type Backend interface {
	Next(ctx context.Context) (Batch, error)
	Send(dev int, b []byte) error
	Reset(ctx context.Context, dev int, bootloader bool) error
	Devices() []string
	Name(dev int) string
	Start() time.Time
}

// Options are the view settings; the keys change them at run time.
type Options struct {
	Scrollback int             // lines kept (DefaultScrollback when 0)
	Time       TimeMode        // timestamps
	Filter     Filter          // only lines that match
	ShowRPC    bool            // RPC frames pretty-printed instead of hidden
	Hex        bool            // raw bytes in hex
	Control    bool            // control characters visible
	Ending     LineEnding      // added to a line sent with i
	Profile    termenv.Profile // colours the terminal takes
	NoColor    bool            // NO_COLOR: no colours, reverse video and bold only
}

// DefaultScrollback is generous (five times a terminal emulator's usual
// 10000 lines) yet bounded: the screen keeps about 1 KiB per line of 90
// bytes (measured by make bench), so a full scrollback stays near 50 MiB.
const DefaultScrollback = 50000

type mode int

const (
	modeLog mode = iota
	modeHelp
	modeSearch
	modeFilter
	modeFilterRe
	modeSend
	modeSendHex
)

// Model is the bubbletea model of the console.
type Model struct {
	ctx  context.Context
	be   Backend
	opts Options
	st   styles

	lines   []Line // lines[start:] is the scrollback
	start   int
	partial []string
	status  []Status
	names   []string
	sel     int // device that keys act on

	width, height int
	offset        int // visible lines hidden below the view (0: following)
	unseen        int // lines that arrived while not following
	hiddenRPC     int

	filterGen uint32 // changes with the filter (Line.filterGen)

	search    Filter
	searchSeq uint64 // the match n/N moved to

	mode    mode
	input   textinput.Model
	note    string // last action's outcome, shown in the status bar
	helpTop int    // first help row shown on a short window
	ended   bool
}

// NewModel builds the model over a backend.
func NewModel(ctx context.Context, be Backend, opts Options) *Model {
	if opts.Scrollback <= 0 {
		opts.Scrollback = DefaultScrollback
	}
	ti := textinput.New()
	ti.Prompt = ""
	ti.CharLimit = 4096
	n := len(be.Devices())
	m := &Model{
		ctx: ctx, be: be, opts: opts, st: newStyles(opts.Profile, opts.NoColor),
		partial: make([]string, n), status: make([]Status, n), input: ti,
		width: 80, height: 24,
		filterGen: 1, // lines start at 0: not yet asked
	}
	for i := range n {
		m.names = append(m.names, be.Name(i))
		m.status[i] = Status{Dev: i, State: StateConnecting}
	}
	return m
}

type batchMsg struct {
	b   Batch
	err error
}

type noteMsg string

// frameTime is the least time between two batches: bytes arriving faster
// are taken in together, so a fast stream costs one update and one view
// per frame, not one per read. An idle port's first byte is not delayed.
const frameTime = time.Second / 60

func (m *Model) next(wait bool) tea.Cmd {
	return func() tea.Msg {
		if wait {
			select {
			case <-m.ctx.Done():
			case <-time.After(frameTime):
			}
		}
		b, err := m.be.Next(m.ctx)
		return batchMsg{b, err}
	}
}

// Init starts waiting for the device.
func (m *Model) Init() tea.Cmd { return m.next(false) }

// Update handles port data, window size and keys.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.input.Width = max(msg.Width-20, 10)
		return m, nil
	case batchMsg:
		if msg.err != nil {
			m.ended = true
			if msg.err == io.EOF || m.ctx.Err() != nil {
				return m, tea.Quit
			}
			m.note = msg.err.Error()
			return m, tea.Quit
		}
		m.add(msg.b)
		return m, m.next(true)
	case noteMsg:
		m.note = string(msg)
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// markText is the line put into the log when a device's state changes, so
// the scrollback shows where the stream was interrupted.
func markText(prev State, s Status) string {
	switch {
	case s.State == StateReconnecting && prev == StateConnected:
		return fmt.Sprintf("--- %v; waiting for the port to come back", s.Err)
	case s.State == StateConnected && prev == StateReconnecting:
		return "--- reconnected"
	case s.State == StateLent:
		return "--- port lent to " + s.Who
	case s.State == StateConnected && prev == StateLent:
		return "--- port back from the other command"
	}
	return ""
}

// add takes in a batch: statuses, new lines (the view stays where it is
// when not following), the scrollback bound.
func (m *Model) add(b Batch) {
	for _, s := range b.Status {
		prev := m.status[s.Dev].State
		m.status[s.Dev] = s
		if txt := markText(prev, s); txt != "" {
			// In time order among the batch's lines: a loss after the
			// last bytes of the old connection, a reconnection before
			// the first of the new one.
			mark := Line{Dev: s.Dev, Time: s.Time, Text: txt, Mark: true}
			i := len(b.Lines)
			for i > 0 && b.Lines[i-1].Time.After(mark.Time) {
				i--
			}
			b.Lines = append(b.Lines[:i], append([]Line{mark}, b.Lines[i:]...)...)
		}
	}
	if b.Partial != nil {
		m.partial = b.Partial
	}
	for _, l := range b.Lines {
		if l.RPC {
			m.hiddenRPC++
		}
		if m.offset > 0 && m.visible(&l) {
			m.offset++
			m.unseen++
		}
	}
	m.lines = append(m.lines, b.Lines...)
	if over := len(m.lines) - m.start - m.opts.Scrollback; over > 0 {
		m.start += over
		// Keep the memory bounded: move the kept lines down once the
		// dropped ones are a quarter of the bound.
		if m.start > m.opts.Scrollback/4 {
			m.lines = append([]Line(nil), m.lines[m.start:]...)
			m.start = 0
		}
		if m.offset > 0 {
			if top := m.topOffset(); m.offset > top {
				m.offset = top
			}
		}
	}
}

func (m *Model) visible(l *Line) bool {
	if l.RPC && !m.opts.ShowRPC {
		return false
	}
	if !m.opts.Filter.Active() {
		return true
	}
	// The answer is kept per line until the filter changes: the view asks
	// about the same lines every frame.
	if l.filterGen != m.filterGen {
		l.filterGen, l.filterOK = m.filterGen, m.opts.Filter.Match(l.Text)
	}
	return l.filterOK
}

func (m *Model) setFilter(f Filter) {
	m.opts.Filter = f
	m.filterGen++
}

func (m *Model) visibleCount() int {
	n := 0
	for i := m.start; i < len(m.lines); i++ {
		if m.visible(&m.lines[i]) {
			n++
		}
	}
	return n
}

// topOffset is the offset at which the oldest line is the top row: the
// farthest one can scroll back.
func (m *Model) topOffset() int {
	n := m.visibleCount()
	rows, k := 0, 0
	for i := m.start; i < len(m.lines) && k < n; i++ {
		if !m.visible(&m.lines[i]) {
			continue
		}
		rows += len(m.renderLine(&m.lines[i], i))
		if rows > m.logHeight() {
			break
		}
		k++
	}
	return max(n-k, 0)
}

// visibleBack returns the index in m.lines of the k-th visible line from
// the newest (k = 0), or -1.
func (m *Model) visibleBack(k int) int {
	for i := len(m.lines) - 1; i >= m.start; i-- {
		if m.visible(&m.lines[i]) {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return -1
}

func (m *Model) logHeight() int {
	h := m.height - 1
	if m.mode >= modeSearch {
		h--
	}
	return max(h, 1)
}

func (m *Model) scroll(d int) {
	m.offset += d
	if top := m.topOffset(); m.offset > top {
		m.offset = top
	}
	if m.offset <= 0 {
		m.offset, m.unseen = 0, 0
	}
}

func (m *Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	switch m.mode {
	case modeHelp:
		switch k.String() {
		case "down", "j":
			m.helpTop++
		case "up", "k":
			m.helpTop = max(m.helpTop-1, 0)
		default:
			m.mode, m.helpTop = modeLog, 0
		}
		return m, nil
	case modeSearch, modeFilter, modeFilterRe, modeSend, modeSendHex:
		return m.inputKey(k)
	}
	m.note = ""
	switch k.String() {
	case "q":
		return m, tea.Quit
	case "?":
		m.mode = modeHelp
	case "up", "k":
		m.scroll(1)
	case "down", "j":
		m.scroll(-1)
	case "pgup", "ctrl+u":
		m.scroll(m.logHeight() - 1)
	case "pgdown", "ctrl+d", " ":
		m.scroll(-(m.logHeight() - 1))
	case "home", "g":
		m.scroll(m.visibleCount())
	case "end", "G":
		m.offset, m.unseen = 0, 0
	case "/":
		m.prompt(modeSearch, m.search.text)
	case "f":
		m.prompt(modeFilter, "")
	case "F":
		m.prompt(modeFilterRe, "")
	case "esc":
		m.search, m.searchSeq = Filter{}, 0
		m.setFilter(Filter{})
		m.offset, m.unseen = 0, 0
	case "n":
		m.findMatch(+1)
	case "N":
		m.findMatch(-1)
	case "t":
		m.opts.Time = (m.opts.Time + 1) % 4
	case "x":
		m.opts.Hex = !m.opts.Hex
	case "c":
		m.opts.Control = !m.opts.Control
	case "p":
		m.opts.ShowRPC = !m.opts.ShowRPC
		m.offset, m.unseen = 0, 0
	case "i":
		m.prompt(modeSend, "")
	case "h":
		m.prompt(modeSendHex, "")
	case "e":
		m.opts.Ending = (m.opts.Ending + 1) % 4
		m.note = "line ending: " + m.opts.Ending.String()
	case "R", "ctrl+r":
		return m, m.reset(false)
	case "B":
		return m, m.reset(true)
	case "C", "ctrl+l":
		m.lines, m.start, m.offset, m.unseen, m.hiddenRPC = nil, 0, 0, 0, 0
	case "tab":
		m.sel = (m.sel + 1) % len(m.names)
		m.note = "keys act on " + m.names[m.sel]
	}
	return m, nil
}

func (m *Model) prompt(md mode, val string) {
	m.mode = md
	m.input.SetValue(val)
	m.input.CursorEnd()
	m.input.Focus()
}

func (m *Model) inputKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEsc:
		m.mode = modeLog
		m.input.Blur()
		return m, nil
	case tea.KeyEnter:
		md, val := m.mode, m.input.Value()
		m.mode = modeLog
		m.input.Blur()
		return m, m.submit(md, val)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return m, cmd
}

func (m *Model) submit(md mode, val string) tea.Cmd {
	switch md {
	case modeSearch:
		m.search, _ = NewFilter(val, false)
		m.searchSeq = 0
		if val != "" {
			// From the newest line upwards, as a log is read.
			m.offset = -1
			m.findMatch(+1)
		}
	case modeFilter, modeFilterRe:
		f, err := NewFilter(val, md == modeFilterRe)
		if err != nil {
			m.note = err.Error()
			return nil
		}
		m.setFilter(f)
		m.offset, m.unseen = 0, 0
	case modeSend:
		b := append([]byte(val), m.opts.Ending.bytes()...)
		return m.send(b)
	case modeSendHex:
		b, err := ParseHex(val)
		if err != nil {
			m.note = err.Error()
			return nil
		}
		return m.send(b)
	}
	return nil
}

// findMatch moves to the next search match: dir +1 goes to older lines,
// -1 to newer ones. The match becomes the bottom line of the view.
func (m *Model) findMatch(dir int) {
	if !m.search.Active() {
		m.note = "no search: press / first"
		return
	}
	// The visible lines, newest first, gathered once: visibleBack per step
	// would rescan the scrollback each time (seconds for a search without
	// a match in a full default scrollback).
	var vis []int
	for i := len(m.lines) - 1; i >= m.start; i-- {
		if m.visible(&m.lines[i]) {
			vis = append(vis, i)
		}
	}
	for k := m.offset + dir; k >= 0 && k < len(vis); k += dir {
		i := vis[k]
		if m.search.Match(m.lines[i].Text) {
			m.offset, m.searchSeq = k, m.lines[i].Seq
			if k == 0 {
				m.unseen = 0
			}
			return
		}
	}
	if m.offset < 0 {
		m.offset = 0
	}
	if dir > 0 {
		m.note = fmt.Sprintf("%q: no older match", m.search.text)
	} else {
		m.note = fmt.Sprintf("%q: no newer match", m.search.text)
	}
}

func (m *Model) send(b []byte) tea.Cmd {
	be, dev := m.be, m.sel
	return func() tea.Msg {
		if err := be.Send(dev, b); err != nil {
			return noteMsg("send failed: " + err.Error())
		}
		return noteMsg(fmt.Sprintf("sent %d bytes", len(b)))
	}
}

func (m *Model) reset(boot bool) tea.Cmd {
	be, dev, ctx := m.be, m.sel, m.ctx
	what := "reset"
	if boot {
		what = "reset into the bootloader"
	}
	return func() tea.Msg {
		if err := be.Reset(ctx, dev, boot); err != nil {
			return noteMsg(what + " failed: " + err.Error())
		}
		return noteMsg(what + " done")
	}
}

// View draws the log, the input line when one is open, and the status bar.
func (m *Model) View() string {
	if m.mode == modeHelp {
		return m.helpView()
	}
	h := m.logHeight()
	rows := m.logRows(h)
	var b strings.Builder
	for i := len(rows); i < h; i++ {
		b.WriteByte('\n')
	}
	for _, r := range rows {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	if m.mode >= modeSearch {
		p := m.promptText()
		m.input.Width = max(m.width-ansi.StringWidth(p)-2, 1)
		b.WriteString(p + m.input.View())
		b.WriteByte('\n')
	}
	b.WriteString(m.statusBar())
	return b.String()
}

func (m *Model) promptText() string {
	switch m.mode {
	case modeSearch:
		return "search: "
	case modeFilter:
		return "filter: "
	case modeFilterRe:
		return "filter (regexp): "
	case modeSend:
		return fmt.Sprintf("send to %s (+%s): ", m.names[m.sel], m.opts.Ending)
	case modeSendHex:
		return fmt.Sprintf("send hex to %s: ", m.names[m.sel])
	}
	return ""
}

// logRows renders the h rows above the status bar, newest at the bottom.
func (m *Model) logRows(h int) []string {
	var rows []string
	if m.offset == 0 {
		for dev, p := range m.partial {
			if p != "" && !m.opts.Hex && m.opts.Filter.Match(p) {
				l := Line{Dev: dev, Raw: []byte(p), Text: p}
				rows = append(m.renderLine(&l, -1), rows...)
			}
		}
	}
	skip := m.offset
	for i := len(m.lines) - 1; i >= m.start && len(rows) < h; i-- {
		if !m.visible(&m.lines[i]) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		rows = append(m.renderLine(&m.lines[i], i), rows...)
	}
	if len(rows) > h {
		rows = rows[len(rows)-h:]
	}
	return rows
}

// renderLine gives the screen rows of one line (wrapped to the width).
func (m *Model) renderLine(l *Line, idx int) []string {
	var prefix string
	if m.opts.Time != TimeOff && idx >= 0 {
		var prev time.Time
		if idx > m.start {
			prev = m.lines[idx-1].Time
		}
		prefix += m.st.dim.Render(stamp(m.opts.Time, l.Time, m.be.Start(), prev)) + " "
	}
	if len(m.names) > 1 {
		prefix += m.st.tag[l.Dev%len(m.st.tag)].Render(m.names[l.Dev]) + " "
	}
	var body []string
	switch {
	case l.Mark:
		body = []string{m.st.dim.Render(safeText(l.Text, false))}
	case m.opts.Hex:
		per := 16
		if m.width > 0 && m.width-ansi.StringWidth(prefix) < 16*4+4 {
			per = 8
		}
		body = hexRows(l.Raw, per)
	case l.RPC:
		for _, r := range strings.Split(prettyJSON(l.Text), "\n") {
			body = append(body, m.st.rpc.Render(r))
		}
		body[0] = m.st.rpc.Render("RPC ") + body[0]
	default:
		text := safeText(l.Text, false)
		if m.opts.Control {
			text = visibleRaw(l.Raw)
		}
		body = []string{m.highlight(text, l)}
	}
	pw := ansi.StringWidth(prefix)
	avail := m.width - pw
	if m.width <= 0 || avail < 20 {
		// Too narrow to keep a column for the text: wrap whole rows.
		var out []string
		for i, b := range body {
			if i == 0 {
				b = prefix + b
			}
			out = append(out, m.wrap(b, m.width)...)
		}
		for _, a := range splitLines(l.Annot) {
			out = append(out, m.wrap(m.st.annot.Render("  ↳ "+safeText(a, false)), m.width)...)
		}
		return out
	}
	// Continuation rows start under the text, not under the timestamp.
	indent := strings.Repeat(" ", pw)
	var out []string
	for _, b := range body {
		for _, r := range m.wrap(b, avail) {
			if len(out) == 0 {
				out = append(out, prefix+r)
			} else {
				out = append(out, indent+r)
			}
		}
	}
	for _, a := range splitLines(l.Annot) {
		for _, r := range m.wrap(m.st.annot.Render("↳ "+safeText(a, false)), avail) {
			out = append(out, indent+r)
		}
	}
	return out
}

// highlight colours text by level and marks search matches.
func (m *Model) highlight(text string, l *Line) string {
	lvl, ok := m.st.level[l.Level]
	spans := m.search.matches(text)
	if len(spans) == 0 {
		if ok {
			return lvl.Render(text)
		}
		return text
	}
	mark := m.st.match
	if l.Seq != 0 && l.Seq == m.searchSeq {
		mark = m.st.current
	}
	var b strings.Builder
	plain := func(s string) {
		if s == "" {
			return
		}
		if ok {
			s = lvl.Render(s)
		}
		b.WriteString(s)
	}
	at := 0
	for _, sp := range spans {
		plain(text[at:sp[0]])
		b.WriteString(mark.Render(text[sp[0]:sp[1]]))
		at = sp[1]
	}
	plain(text[at:])
	return b.String()
}

func (m *Model) wrap(s string, w int) []string {
	if w <= 0 || ansi.StringWidth(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Hardwrap(s, w, true), "\n")
}

// statusBar: the devices' states, follow or paused, the view settings.
func (m *Model) statusBar() string {
	var parts []string
	for i, s := range m.status {
		name := m.names[i]
		if len(m.names) > 1 && i == m.sel {
			name = "*" + name
		}
		var st = m.st.ok
		text := name
		switch s.State {
		case StateConnecting:
			st, text = m.st.warn, name+" connecting"
		case StateReconnecting:
			st, text = m.st.bad, name+" reconnecting"
		case StateLent:
			st, text = m.st.warn, name+" lent to "+s.Who
		case StateClosed:
			st, text = m.st.bad, name+" closed"
		}
		parts = append(parts, st.Render(" "+text+" "))
	}
	// Settings by priority: on a narrow terminal the least useful go first.
	type item struct {
		text string
		prio int
	}
	var info []item
	if m.note != "" {
		info = append(info, item{m.note, 1})
	}
	switch {
	case m.offset == 0:
		info = append(info, item{"FOLLOW", 1})
	case m.unseen > 0:
		info = append(info, item{fmt.Sprintf("PAUSED +%d (End)", m.unseen), 1})
	default:
		info = append(info, item{"PAUSED (End)", 1})
	}
	if m.opts.Filter.Active() {
		info = append(info, item{"filter " + m.opts.Filter.String(), 2})
	}
	if m.search.Active() {
		info = append(info, item{"/" + m.search.text, 2})
	}
	if m.opts.Time != TimeOff {
		info = append(info, item{"t:" + m.opts.Time.String(), 3})
	}
	if m.opts.Hex {
		info = append(info, item{"hex", 3})
	}
	if m.opts.Control {
		info = append(info, item{"ctrl", 3})
	}
	if !m.opts.ShowRPC && m.hiddenRPC > 0 {
		info = append(info, item{fmt.Sprintf("%d RPC hidden", m.hiddenRPC), 4})
	}
	info = append(info, item{"? help", 5})
	left := strings.Join(parts, "")
	w := m.width - ansi.StringWidth(left)
	if w < 0 {
		return ansi.Truncate(left, m.width, "…")
	}
	var rest string
	for drop := 6; drop >= 1; drop-- {
		var keep []string
		for _, it := range info {
			if it.prio < drop {
				keep = append(keep, it.text)
			}
		}
		rest = " " + strings.Join(keep, " · ") + " "
		if ansi.StringWidth(rest) <= w {
			break
		}
	}
	rest = ansi.Truncate(rest, w, "…")
	if pad := w - ansi.StringWidth(rest); pad > 0 {
		rest += strings.Repeat(" ", pad)
	}
	return left + m.st.bar.Render(rest)
}

func (m *Model) helpView() string {
	kw := 0
	for _, k := range helpKeys {
		kw = max(kw, ansi.StringWidth(k.keys))
	}
	w := min(m.width, 84) - 4 // inside the border and padding
	var rows []string
	rows = append(rows, "mos console keys", "")
	for _, k := range helpKeys {
		key := m.st.helpKey.Render(k.keys + strings.Repeat(" ", kw-ansi.StringWidth(k.keys)))
		for i, r := range m.wrapTo(k.what, w-kw-2) {
			if i == 0 {
				rows = append(rows, key+"  "+r)
			} else {
				rows = append(rows, strings.Repeat(" ", kw+2)+r)
			}
		}
	}
	rows = append(rows, "")
	rows = append(rows, m.wrapTo(fmt.Sprintf("line ending %s · scrollback %d lines", m.opts.Ending, m.opts.Scrollback), w)...)
	// A short window shows a part: ↑/↓ move it, other keys close.
	if fit := m.height - 2; fit > 1 && len(rows) > fit {
		total := len(rows)
		top := min(m.helpTop, total-fit)
		m.helpTop = top
		rows = rows[top : top+fit]
		if top+fit < total {
			rows[fit-1] = m.st.dim.Render("↓ more · any other key closes")
		}
	}
	return m.st.help.Width(w + 4 - 2).Render(strings.Join(rows, "\n"))
}

func (m *Model) wrapTo(s string, w int) []string {
	if w <= 0 || ansi.StringWidth(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Wrap(s, w, " "), "\n")
}
