package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Level is the severity a log line announces, for its colour.
type Level int

const (
	LevelNone Level = iota
	LevelError
	LevelWarn
	LevelInfo
	LevelDebug
	LevelBoot // the ROM's and bootloader's reset messages
)

// Line is one line received from a device.
type Line struct {
	Dev  int       // index of the device in the session
	Time time.Time // when its first byte arrived
	Raw  []byte    // the bytes as received, line ending included
	// Text is Raw without the line ending; for an RPC frame, the frame's
	// JSON without the delimiters and checksum.
	Text  string
	RPC   bool   // a Mongoose OS RPC frame, not log text
	Level Level  // from the log format
	Annot string // what a LineAnnotator said about it (may hold newlines)
	Seq   uint64 // position in the session's stream of lines
	Mark  bool   // not from the device: the console's note (port lost, back)

	filterGen uint32 // the model's filter generation filterOK belongs to
	filterOK  bool
}

// TimeMode says how a line's time is shown.
type TimeMode int

const (
	TimeOff   TimeMode = iota
	TimeAbs            // wall clock
	TimeStart          // since the console started
	TimeDelta          // since the previous line
)

func (m TimeMode) String() string {
	return [...]string{"off", "absolute", "since start", "delta"}[m]
}

// ParseTimeMode reads a --timestamps value.
func ParseTimeMode(s string) (TimeMode, error) {
	switch strings.ToLower(s) {
	case "", "off", "none":
		return TimeOff, nil
	case "abs", "absolute", "wall":
		return TimeAbs, nil
	case "start", "rel", "relative", "since-start":
		return TimeStart, nil
	case "delta":
		return TimeDelta, nil
	}
	return TimeOff, fmt.Errorf("unknown timestamp mode %q (want off, absolute, start or delta)", s)
}

// stamp formats t for mode; prev is the previous shown line's time.
func stamp(mode TimeMode, t, start, prev time.Time) string {
	switch mode {
	case TimeAbs:
		return t.Format("15:04:05.000")
	case TimeStart:
		d := t.Sub(start)
		return fmt.Sprintf("%9.3f", d.Seconds())
	case TimeDelta:
		if prev.IsZero() {
			prev = t
		}
		return fmt.Sprintf("+%8.3f", t.Sub(prev).Seconds())
	}
	return ""
}

// LineEnding is what Enter adds to text sent to the device.
type LineEnding int

const (
	EndCRLF LineEnding = iota
	EndLF
	EndCR
	EndNone
)

func (e LineEnding) String() string { return [...]string{"CRLF", "LF", "CR", "none"}[e] }

func (e LineEnding) bytes() []byte {
	return [][]byte{[]byte("\r\n"), []byte("\n"), []byte("\r"), nil}[e]
}

// ParseLineEnding reads a --line-ending value.
func ParseLineEnding(s string) (LineEnding, error) {
	switch strings.ToLower(s) {
	case "crlf":
		return EndCRLF, nil
	case "lf", "nl":
		return EndLF, nil
	case "cr":
		return EndCR, nil
	case "none", "":
		return EndNone, nil
	}
	return EndCRLF, fmt.Errorf("unknown line ending %q (want crlf, lf, cr or none)", s)
}

// ParseHex reads bytes written as hex pairs, with or without spaces,
// commas or 0x prefixes: "de ad", "0xde,0xad", "dead".
func ParseHex(s string) ([]byte, error) {
	s = strings.NewReplacer("0x", "", "0X", "", ",", " ", ":", " ").Replace(s)
	var out []byte
	for _, f := range strings.Fields(s) {
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("%q: hex bytes come in pairs of digits", f)
		}
		for i := 0; i < len(f); i += 2 {
			var b byte
			if _, err := fmt.Sscanf(f[i:i+2], "%02x", &b); err != nil {
				return nil, fmt.Errorf("%q is not a hex byte", f[i:i+2])
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no bytes given")
	}
	return out, nil
}

// Filter selects lines by text or regular expression. The zero value lets
// everything through.
type Filter struct {
	text string
	re   *regexp.Regexp
}

// NewFilter builds a filter; regex selects a regular expression, else the
// text is matched literally (case-insensitively when it is all lower case).
func NewFilter(expr string, regex bool) (Filter, error) {
	if expr == "" {
		return Filter{}, nil
	}
	if regex {
		re, err := regexp.Compile(expr)
		if err != nil {
			return Filter{}, fmt.Errorf("bad filter regular expression: %v", err)
		}
		return Filter{text: expr, re: re}, nil
	}
	return Filter{text: expr}, nil
}

// Active reports whether the filter selects anything.
func (f Filter) Active() bool { return f.text != "" }

// String is the filter as the user typed it.
func (f Filter) String() string {
	if f.re != nil {
		return "/" + f.text + "/"
	}
	return f.text
}

// Match reports whether s passes.
func (f Filter) Match(s string) bool {
	switch {
	case f.text == "":
		return true
	case f.re != nil:
		return f.re.MatchString(s)
	case f.text == strings.ToLower(f.text):
		return strings.Contains(strings.ToLower(s), f.text)
	}
	return strings.Contains(s, f.text)
}

// matches returns the byte ranges of s the filter or search matches, for
// highlighting.
func (f Filter) matches(s string) [][]int {
	switch {
	case f.text == "":
		return nil
	case f.re != nil:
		return f.re.FindAllStringIndex(s, -1)
	}
	hay, needle := s, f.text
	if needle == strings.ToLower(needle) {
		hay = strings.ToLower(s) // ASCII-safe lengths for the usual text
		if len(hay) != len(s) {
			hay = s
		}
	}
	var out [][]int
	for i := 0; ; {
		j := strings.Index(hay[i:], needle)
		if j < 0 {
			return out
		}
		out = append(out, []int{i + j, i + j + len(needle)})
		i += j + len(needle)
	}
}

// Mongoose OS RPC frames share the UART with the log, each on a line of
// its own: `"""` JSON, CRC-32 as 8 hex digits, `"""` (the delimiters and
// the CRC only once the host has used them: mgos_rpc_channel_uart.c, and
// sim/demofw's frame), or the handshake `"""` 0x04 `"""`.
var rpcFrame = regexp.MustCompile(`^(""")?(\{.*\}|\x04)([0-9a-fA-F]{8})?(""")?$`)

// parseRPC reports whether text is an RPC frame and returns its JSON.
func parseRPC(text string) (string, bool) {
	m := rpcFrame.FindStringSubmatch(strings.TrimSpace(text))
	if m == nil || (m[1] == "") != (m[4] == "") {
		return "", false
	}
	if m[2] == "\x04" {
		return "EOT (RPC channel handshake)", true
	}
	// A log line may start with '{' too: only a JSON object with an id or
	// a method is a frame.
	var f struct {
		ID     any `json:"id"`
		Method any `json:"method"`
	}
	if json.Unmarshal([]byte(m[2]), &f) != nil || (f.ID == nil && f.Method == nil) {
		return "", false
	}
	return m[2], true
}

// prettyJSON indents an RPC frame's JSON; a body that does not parse is
// returned as it is.
func prettyJSON(s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		return s
	}
	return b.String()
}

// ESP-IDF log lines start with the level letter and the time in ms:
// "E (123) tag: ..." (esp_log.h, LOG_FORMAT), often wrapped in colour
// escapes, which have been stripped before this runs.
var idfLevel = regexp.MustCompile(`^([EWIDV]) \(\d+\) `)

// levelOf classifies a log line by the formats of ESP-IDF, Mongoose OS and
// the ROM.
func levelOf(text string) Level {
	t := stripANSI(text)
	if m := idfLevel.FindStringSubmatch(t); m != nil {
		switch m[1] {
		case "E":
			return LevelError
		case "W":
			return LevelWarn
		case "I":
			return LevelInfo
		}
		return LevelDebug
	}
	// Mongoose OS: "[Dec  7 02:00:00.123] mgos_init.c:33  text" (the
	// timestamp only with debug.stdout_timestamps) or "mgos_init.c:33  text".
	if strings.HasPrefix(t, "[") {
		if i := strings.IndexByte(t, ']'); i > 0 {
			t = strings.TrimLeft(t[i+1:], " ")
		}
	}
	low := strings.ToLower(t)
	switch {
	case strings.HasPrefix(t, "Guru Meditation"), strings.HasPrefix(t, "Backtrace:"),
		strings.HasPrefix(t, "abort()"), strings.HasPrefix(t, "Fatal exception"),
		strings.HasPrefix(t, "panic"):
		return LevelError
	case strings.HasPrefix(t, "rst:"), strings.HasPrefix(t, "ets "), strings.HasPrefix(t, "ESP-ROM:"),
		strings.HasPrefix(t, "boot:"), strings.HasPrefix(t, "load:"), strings.HasPrefix(t, "entry 0x"):
		return LevelBoot
	case strings.Contains(low, " error") || strings.Contains(low, "failed") || strings.Contains(low, ": error"):
		if isMgosLine(t) {
			return LevelError
		}
	case strings.Contains(low, "warning"):
		if isMgosLine(t) {
			return LevelWarn
		}
	}
	return LevelNone
}

// isMgosLine: "file.c:LINE" then spaces, the Mongoose OS log prefix.
var mgosPrefix = regexp.MustCompile(`^[\w.-]+\.(c|cpp|h|js):\d+\s`)

func isMgosLine(t string) bool { return mgosPrefix.MatchString(t) }

// ansiSeq matches the terminal escape sequences firmware prints (CSI, as
// ESP-IDF's coloured log uses, and two-byte escapes).
var ansiSeq = regexp.MustCompile("\x1b(\\[[0-9;?]*[ -/]*[@-~]|[@-Z\\\\-_])")

func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	return ansiSeq.ReplaceAllString(s, "")
}

// safeText makes device text fit to print: escape sequences are removed,
// tabs expanded, other control characters dropped (or shown as ^X when
// visible is set, escape sequences then shown rather than removed), and
// invalid UTF-8 shown as U+FFFD.
func safeText(s string, visible bool) string {
	if !visible {
		s = stripANSI(s)
	}
	var b strings.Builder
	col := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune('\uFFFD')
		case r == '\t' && !visible:
			pad := 8 - col%8
			b.WriteString(strings.Repeat(" ", pad))
			col += pad
			continue
		case r < 0x20 || r == 0x7f:
			if visible {
				b.WriteString(caret(byte(r)))
				col += 2
			}
			continue
		case r >= 0x80 && r < 0xa0:
			if visible {
				fmt.Fprintf(&b, "<%02X>", r)
			}
			continue
		default:
			b.WriteRune(r)
		}
		col++
	}
	return b.String()
}

// caret writes a control byte in caret notation: ^M for CR, ^[ for ESC.
func caret(c byte) string {
	if c == 0x7f {
		return "^?"
	}
	return "^" + string(rune(c+'@'))
}

// visibleRaw shows the whole raw line, line ending included, with its
// control characters in caret notation.
func visibleRaw(raw []byte) string { return safeText(string(raw), true) }

// hexDump writes raw as hex pairs followed by the printable characters.
func hexDump(raw []byte) string {
	var b strings.Builder
	for i, c := range raw {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02x", c)
	}
	b.WriteString("  ")
	writePrintable(&b, raw)
	return b.String()
}

// writePrintable writes raw's printable ASCII between bars, a dot for
// every other byte: the text column of both hex views.
func writePrintable(b *strings.Builder, raw []byte) {
	b.WriteByte('|')
	for _, c := range raw {
		if c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		} else {
			b.WriteByte('.')
		}
	}
	b.WriteByte('|')
}

// hexRows dumps raw per bytes a row: hex pairs, then the printable
// characters, as hexdump -C does.
func hexRows(raw []byte, per int) []string {
	var rows []string
	for i := 0; i < len(raw); i += per {
		chunk := raw[i:min(i+per, len(raw))]
		var b strings.Builder
		for j := range per {
			if j < len(chunk) {
				fmt.Fprintf(&b, "%02x ", chunk[j])
			} else {
				b.WriteString("   ")
			}
		}
		b.WriteByte(' ')
		writePrintable(&b, chunk)
		rows = append(rows, b.String())
	}
	if len(rows) == 0 {
		rows = []string{""}
	}
	return rows
}
